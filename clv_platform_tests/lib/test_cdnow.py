import datetime as dt
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pytest

from clv_platform.lib import cdnow
from clv_platform.lib.schema import LANDING_COLUMNS, LANDING_FILE_RE

HEADER = ",".join(LANDING_COLUMNS) + "\n"


def _read_all(d: Path) -> pd.DataFrame:
    frames = []
    for p in sorted(d.glob("transactions_*.csv")):
        assert p.read_text(encoding="utf-8").startswith(HEADER)
        f = pd.read_csv(p, dtype=str, keep_default_na=False)
        f["file_date"] = LANDING_FILE_RE.match(p.name).group(1)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def _source_records(sample: bool) -> Counter:
    """Independent parse of the raw file: Counter of (customer_id, yyyymmdd, cds, dollars as Decimal)."""
    path = cdnow.datasets_dir() / ("CDNOW_sample.txt" if sample else "CDNOW_master.txt")
    out = Counter()
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts or parts[0] == "customer_id":
            continue
        cust, day, cds, dollars = (parts[0], parts[2], parts[3], parts[4]) if sample else parts
        out[(cust, day, int(cds), Decimal(dollars))] += 1
    return out


def _landed_records(f: pd.DataFrame) -> Counter:
    amounts = [(Decimal(q) * Decimal(p)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
               for q, p in zip(f["quantity"], f["unit_price"], strict=True)]
    days = f["order_ts"].str[:10].str.replace("-", "")
    return Counter(zip(f["customer_id"], days, f["quantity"].astype(int), amounts, strict=True))


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    out = tmp_path_factory.mktemp("cdnow_master")
    return cdnow.import_cdnow(out), _read_all(out)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("cdnow_sample")
    return cdnow.import_cdnow(out, sample=True), _read_all(out)


def test_master_counts(master):
    summary, f = master
    assert len(f) == summary.records == 69_659
    assert f["customer_id"].nunique() == summary.customers == 23_570
    assert summary.files == 546 and f["file_date"].nunique() == 546
    assert summary.zero_dollar_records == 80 and summary.zero_cd_records == 0
    assert (f["unit_price"] == "0").sum() == 80
    assert summary.total_dollars == "2500315.63"


def test_sample_counts(sample, master):
    summary, f = sample
    assert len(f) == summary.records == 6_919
    assert f["customer_id"].nunique() == summary.customers == 2_357
    # the sample keeps the master ids (5 digits), so its customers are a subset of the master's
    assert f["customer_id"].str.fullmatch(r"\d{5}").all()
    assert set(f["customer_id"]) <= set(master[1]["customer_id"])


@pytest.mark.parametrize("which", ["master", "sample"])
def test_every_record_reconstructs_to_the_cent(which, master, sample):
    _, f = master if which == "master" else sample
    assert _landed_records(f) == _source_records(sample=which == "sample")


def test_mapping_follows_the_contract(master):
    _, f = master
    assert f["order_id"].is_unique
    assert (f["order_id"] == "CDNOW-" + f["customer_id"] + "-" + f["order_ts"].str[:10].str.replace("-", "")
            + "-" + f["order_id"].str.rsplit("-", n=1).str[1]).all()
    assert (f["order_ts"] == f["file_date"] + "T12:00:00").all()
    assert (f["line_number"] == "1").all() and (f["category"] == "music").all()
    assert (f["channel"] == "web").all() and (f["country"] == "US").all()
    assert (f["original_order_id"] == "").all()
    assert (f["quantity"].astype(int) >= 1).all()
    assert f["unit_price"].str.fullmatch(r"\d+(\.\d{1,6})?").all()
    # n counts a customer's records on one day: 1..k without gaps
    n = f["order_id"].str.rsplit("-", n=1).str[1].astype(int)
    g = n.groupby([f["customer_id"], f["file_date"]])
    assert (g.max() == g.size()).all()
    assert (f["file_date"].min(), f["file_date"].max()) == ("1997-01-01", "1998-06-30")


def test_unit_price_text():
    assert cdnow.unit_price_text(1177, 1) == "11.77"
    assert cdnow.unit_price_text(2933, 2) == "14.665"
    assert cdnow.unit_price_text(4147, 3) == "13.823333"
    assert cdnow.unit_price_text(0, 1) == "0"
    assert cdnow.unit_price_text(2000, 2) == "10"
    for cents in range(0, 3000, 7):
        for q in (1, 3, 7, 99):
            amount = (q * Decimal(cdnow.unit_price_text(cents, q))).quantize(Decimal("0.01"), ROUND_HALF_UP)
            assert amount == Decimal(cents) / 100


def test_zero_cd_record_gets_quantity_one(tmp_path, monkeypatch):
    src = tmp_path / "CDNOW_master.txt"
    src.write_text(" customer_id  date number_of_cds  dollar_value\n 00007 19970105  0   9.99\n")
    monkeypatch.setattr(cdnow, "datasets_dir", lambda: tmp_path)
    s = cdnow.import_cdnow(tmp_path / "out")
    assert s.zero_cd_records == 1 and s.records == 1
    lines = (tmp_path / "out" / "transactions_1997-01-05.csv").read_text().splitlines()
    assert lines[1] == f"CDNOW-00007-19970105-1,1,00007,{dt.date(1997, 1, 5)}T12:00:00,music,1,9.99,web,US,"


def test_clv_import_cdnow_command(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from clv_platform.cli import cli

    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "data"))
    res = CliRunner().invoke(cli, ["import-cdnow", "--sample"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "data" / "landing").glob("transactions_*.csv"))) == 546
    assert "2,357 customers" in res.output and "CLV_PARTITIONS_START=1997-01-01" in res.output
    monkeypatch.setenv("CLV_PARTITIONS_START", "1997-01-01")         # set already: no hint to set it
    res = CliRunner().invoke(cli, ["import-cdnow", "--sample", "--out", str(tmp_path / "again")])
    assert res.exit_code == 0 and "CLV_PARTITIONS_START" not in res.output, res.output
