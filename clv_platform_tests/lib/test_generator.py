import csv
import datetime as dt
import hashlib
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clv_platform.lib import generator
from clv_platform.lib.schema import CATEGORIES, CHANNELS, COUNTRIES, LANDING_COLUMNS, LANDING_FILE_RE

HEADER = ",".join(LANDING_COLUMNS) + "\n"
TS_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")
PRICE_RE = re.compile(r"^\d+(\.\d{1,6})?$")
START = dt.date(2023, 3, 1)
DAYS = 90


def _digest(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def _read_all(d: Path) -> pd.DataFrame:
    frames = []
    for p in sorted(d.glob("transactions_*.csv")):
        f = pd.read_csv(p, dtype=str, keep_default_na=False)
        f["file_date"] = LANDING_FILE_RE.match(p.name).group(1)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen_a")
    summary = generator.generate(out, customers=3000, start=START, days=DAYS, seed=7, progress=False)
    return out, summary


@pytest.fixture(scope="module")
def small_lines(small):
    return _read_all(small[0])


def test_same_seed_same_bytes_different_seed_differs(small, tmp_path):
    out, _ = small
    again = generator.generate(tmp_path / "b", customers=3000, start=START, days=DAYS, seed=7, progress=False)
    other = generator.generate(tmp_path / "c", customers=3000, start=START, days=DAYS, seed=8, progress=False)
    assert _digest(out) == _digest(Path(again.out_dir))
    da, dc = _digest(out), _digest(Path(other.out_dir))
    assert da.keys() == dc.keys()
    assert sum(da[k] != dc[k] for k in da) > DAYS // 2


def test_one_file_per_day_with_exact_header(small):
    out, summary = small
    files = sorted(p.name for p in out.glob("transactions_*"))
    expected = [f"transactions_{START + dt.timedelta(days=i)}.csv" for i in range(DAYS)]
    assert files == expected
    assert summary.files == DAYS and summary.end == (START + dt.timedelta(days=DAYS - 1)).isoformat()
    for name in files:
        with open(out / name, encoding="utf-8") as f:
            assert f.readline() == HEADER


def test_header_only_file_on_a_day_without_orders(tmp_path):
    s = generator.generate(tmp_path, customers=3, start=START, days=60, seed=1, progress=False)
    assert s.empty_days > 0
    empty = [p for p in tmp_path.glob("transactions_*.csv") if p.read_text() == HEADER]
    assert len(empty) == s.empty_days


def test_rows_follow_the_landing_contract(small, small_lines):
    _, summary = small
    f = small_lines
    assert len(f) == summary.lines and f["order_id"].str.startswith("R").sum() == summary.return_lines
    assert set(f["category"]) <= set(CATEGORIES)
    assert set(f["channel"]) <= set(CHANNELS)
    assert set(f["country"]) <= set(COUNTRIES)
    ts = f["order_ts"].str.extract(TS_RE)
    assert ts[0].notna().all()
    assert (ts[0] == f["file_date"]).all(), "order_ts must lie inside the file's day"
    assert f["quantity"].str.fullmatch(r"-?[1-9]\d*").all()
    assert f["unit_price"].str.fullmatch(PRICE_RE).all()
    assert f["customer_id"].str.fullmatch(r"C\d{7}").all()
    assert f["order_id"].str.fullmatch(r"[OR]\d{9}").all()
    # an order's lines are numbered 1..n and share customer, timestamp, channel
    orders = f[f["order_id"].str.startswith("O")].copy()
    orders["line_number"] = orders["line_number"].astype(int)
    g = orders.groupby("order_id")
    assert (g["line_number"].max() == g.size()).all() and (g["line_number"].min() == 1).all()
    assert (g[["customer_id", "order_ts", "channel", "country"]].nunique() == 1).all().all()
    assert g.size().between(1, 4).all()
    assert (orders["quantity"].astype(int) > 0).all() and (orders["original_order_id"] == "").all()
    # a customer always has the same home country
    assert (f.groupby("customer_id")["country"].nunique() == 1).all()
    # business hours weighted: more orders 10-20h than 0-6h
    hours = f["order_ts"].str[11:13].astype(int)
    assert (hours.between(10, 19)).mean() > 3 * (hours.between(0, 5)).mean()


def test_returns_refer_to_an_earlier_order_of_the_same_customer(small_lines):
    f = small_lines
    f = f.assign(amount=[Decimal(q) * Decimal(p) for q, p in zip(f["quantity"], f["unit_price"], strict=True)])
    rets = f[f["order_id"].str.startswith("R")]
    assert 0.015 < rets["order_id"].nunique() / f["order_id"].str.startswith("O").pipe(
        lambda m: f.loc[m, "order_id"].nunique()) < 0.045
    orders = f[f["order_id"].str.startswith("O")]
    head = orders.groupby("order_id").agg(customer_id=("customer_id", "first"), order_ts=("order_ts", "first"),
                                          amount=("amount", "sum"))
    assert (rets["quantity"].astype(int) < 0).all() and (rets["line_number"] == "1").all()
    assert rets["original_order_id"].isin(head.index).all()
    orig = head.loc[rets["original_order_id"]]
    assert (orig["customer_id"].to_numpy() == rets["customer_id"].to_numpy()).all()
    assert (orig["order_ts"].to_numpy() < rets["order_ts"].to_numpy()).all()
    assert (orig["order_ts"].str[:10].to_numpy() < rets["file_date"].to_numpy()).all()
    assert ((-rets["amount"]).to_numpy() <= orig["amount"].to_numpy()).all()
    # the returned line exists in the original order with the same price and at least that quantity
    lines = orders.set_index(["order_id", "category", "unit_price"])["quantity"].astype(int).sort_index()
    for _, r in rets.iterrows():
        q = lines.loc[(r["original_order_id"], r["category"], r["unit_price"])]
        assert int(np.max(q)) >= -int(r["quantity"])


def test_ground_truth_file(small, small_lines):
    out, summary = small
    doc, cust = generator.read_ground_truth(out)
    p = generator.PopulationParams()
    assert doc["population_params"] == {k: getattr(p, k) for k in doc["population_params"]}
    assert doc["time_unit"] == "days" and doc["seed"] == 7 and doc["customers"] == 3000
    assert doc["bgnbd"] == {"r": p.r, "alpha": p.alpha, "a": p.a, "b": p.b}
    assert doc["gamma_gamma"]["mean_order_value"] == pytest.approx(70.0)
    assert list(doc["customer_columns"]) == list(cust.columns)
    assert doc["customers_file"] is None  # small population: inline
    assert len(cust) == 3000 and cust["customer_id"].is_unique
    assert (cust["lambda"] > 0).all() and cust["p"].between(0, 1).all() and (cust["nu"] > 0).all()
    assert np.allclose(cust["mean_order_value"], p.p / cust["nu"])
    # every customer orders first on the acquisition date; repeat_orders matches the files
    f = small_lines[small_lines["order_id"].str.startswith("O")]
    per = f.groupby("customer_id").agg(first=("order_ts", "min"), orders=("order_id", "nunique"))
    cust = cust.set_index("customer_id").loc[per.index]
    assert len(per) == 3000
    assert (per["first"].str[:10] == cust["acquisition_date"]).all()
    assert (per["orders"] - 1 == cust["repeat_orders"]).all()
    assert summary.orders == per["orders"].sum()


def test_big_population_ground_truth_goes_to_parquet(tmp_path, monkeypatch):
    monkeypatch.setattr(generator, "INLINE_GROUND_TRUTH_MAX", 10)
    generator.generate(tmp_path, customers=50, start=START, days=20, seed=2, progress=False)
    doc, cust = generator.read_ground_truth(tmp_path)
    assert doc["customers_file"] == "ground_truth_customers.parquet"
    assert (tmp_path / "ground_truth_customers.parquet").exists()
    assert "customer_latents" not in doc and len(cust) == 50


def test_parquet_format_has_the_same_rows(small_lines, tmp_path):
    generator.generate(tmp_path, customers=3000, start=START, days=DAYS, seed=7, fmt="parquet", progress=False)
    files = sorted(tmp_path.glob("transactions_*.parquet"))
    assert len(files) == DAYS
    pq = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    assert list(pq.columns) == list(LANDING_COLUMNS)
    assert (pq["order_id"].to_numpy() == small_lines["order_id"].to_numpy()).all()
    assert (pq["quantity"].astype(str).to_numpy() == small_lines["quantity"].to_numpy()).all()


def test_default_start_is_today_minus_days(tmp_path):
    s = generator.generate(tmp_path, customers=5, days=3, seed=1, progress=False)
    assert s.start == (dt.date.today() - dt.timedelta(days=3)).isoformat()


def test_expected_repeat_purchases_formula_matches_lifetimes():
    from lifetimes import BetaGeoFitter

    p = generator.PopulationParams()
    bg = BetaGeoFitter()
    bg.params_ = pd.Series({"r": p.r, "alpha": p.alpha, "a": p.a, "b": p.b})
    for t in (30, 180, 365):
        assert generator.bgnbd_expected_repeat_purchases(t, p.r, p.alpha, p.a, p.b) == pytest.approx(
            float(bg.expected_number_of_purchases_up_to_time(t)), rel=1e-9)


def test_counts_follow_the_model(tmp_path):
    """One cohort of 50,000 customers acquired on day 0: mean repeat orders by day t ~ BG/NBD E[X(t)]."""
    p = generator.PopulationParams()
    days = 240
    generator.generate(tmp_path, customers=50_000, start=START, days=days, seed=11, progress=False,
                       acquisition_days=1)
    counts = {}
    for t in (60, 240):
        per_customer = []
        for i in range(t):
            path = tmp_path / f"transactions_{START + dt.timedelta(days=i)}.csv"
            with open(path, encoding="utf-8") as f:
                per_customer.extend((r[2], r[0]) for r in csv.reader(f) if r[0].startswith("O"))
        orders = pd.DataFrame(per_customer, columns=["c", "o"]).drop_duplicates()
        n_cust = orders["c"].nunique()
        assert n_cust == 50_000
        counts[t] = (len(orders) - n_cust) / n_cust
        # acquisition time is uniform within day 0, so the mean exposure is t - 0.5 days
        expected = generator.bgnbd_expected_repeat_purchases(t - 0.5, p.r, p.alpha, p.a, p.b)
        assert counts[t] == pytest.approx(float(expected), rel=0.04), (t, counts[t], expected)


def test_order_values_follow_gamma_gamma():
    """Each order value / the customer's true mean (p/nu) ~ Gamma(p, rate p): mean 1, variance 1/p."""
    sim = generator.simulate(20_000, 365, seed=5)
    p = generator.PopulationParams()
    value = np.bincount(sim["l_order"], weights=sim["l_qty"] * sim["l_price_cents"] / 100.0)
    ratio = value / (p.p / sim["nu"][sim["o_cust"]])
    assert ratio.mean() == pytest.approx(1.0, abs=0.01)
    assert ratio.var() == pytest.approx(1 / p.p, rel=0.05)
    # population mean order value p * gamma / (q - 1) = $70 (order-weighted, so only roughly)
    assert 55 < value.mean() < 90


def test_lifetimes_recovers_the_population_params():
    """Day-level summaries of 20,000 simulated customers: lifetimes' fitters find the params we simulated."""
    import warnings

    from lifetimes import BetaGeoFitter, GammaGammaFitter

    p = generator.PopulationParams()
    days = 730
    sim = generator.simulate(20_000, days, seed=42)
    value = np.bincount(sim["l_order"], weights=sim["l_qty"] * sim["l_price_cents"] / 100.0)
    daily = (pd.DataFrame({"c": sim["o_cust"], "d": sim["o_day"], "v": value})
             .groupby(["c", "d"], as_index=False)["v"].sum())
    first = daily.groupby("c")["d"].transform("min")
    per = daily.groupby("c").agg(first=("d", "min"), last=("d", "max"), n=("d", "size"))
    frequency, recency, age = per["n"] - 1, (per["last"] - per["first"]).astype(float), days - 1.0 - per["first"]
    repeat = daily[daily["d"] > first].groupby("c")["v"].agg(["size", "mean"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg = BetaGeoFitter().fit(frequency, recency, age)
        gg = GammaGammaFitter().fit(repeat["size"], repeat["mean"])
    for name, true in (("r", p.r), ("alpha", p.alpha), ("a", p.a), ("b", p.b)):
        assert bg.params_[name] == pytest.approx(true, rel=0.15), (name, bg.params_[name])
    for name, true in (("p", p.p), ("q", p.q), ("v", p.gamma)):
        assert gg.params_[name] == pytest.approx(true, rel=0.15), (name, gg.params_[name])


def test_clv_generate_command_writes_into_the_landing_dir(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from clv_platform.cli import cli

    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "data"))
    res = CliRunner().invoke(cli, ["generate", "--customers", "200", "--start", "2024-02-01", "--days", "10",
                                   "--seed", "3"])
    assert res.exit_code == 0, res.output
    landing = tmp_path / "data" / "landing"
    assert len(list(landing.glob("transactions_2024-02-*.csv"))) == 10
    assert (landing / "ground_truth.json").exists() and "200 customers" in res.output
    res = CliRunner().invoke(cli, ["generate", "--customers", "50", "--start", "2024-03-01", "--days", "5",
                                   "--out", str(tmp_path / "pq"), "--format", "parquet"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "pq").glob("transactions_*.parquet"))) == 5
