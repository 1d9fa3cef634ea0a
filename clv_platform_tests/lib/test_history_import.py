"""`clv import-history`: one export of many days split into daily landing files that the loader takes as they
are; every row written or set aside with its line and reason."""

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from clv_platform.cli import cli
from clv_platform.lib import generator, history_import, ingest, warehouse
from clv_platform.lib.schema import LANDING_COLUMNS

HEADER = ",".join(LANDING_COLUMNS)


def _concat(files: list[Path], target: Path) -> Path:
    lines = [HEADER]
    for f in files:
        lines += f.read_text().splitlines()[1:]
    target.write_text("\n".join(lines) + "\n")
    return target


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Daily files of 300 customers over 40 days (some days without orders)."""
    out = tmp_path_factory.mktemp("demo")
    generator.generate(out, customers=300, start="2024-01-01", days=40, seed=7, progress=False)
    return sorted(out.glob("transactions_*.csv"))


def test_export_of_the_daily_files_splits_back_into_the_same_files(demo, tmp_path):
    export = _concat(demo, tmp_path / "export.csv")
    s = history_import.import_history(export, tmp_path / "landing")
    n_rows = sum(len(f.read_text().splitlines()) - 1 for f in demo)
    assert (s.rows_read, s.rows_written, s.rows_unassigned) == (n_rows, n_rows, 0)
    assert s.files == 40 and str(s.start) == "2024-01-01" and str(s.end) == "2024-02-09"
    written = sorted((tmp_path / "landing").glob("transactions_*"))
    assert [f.name for f in written] == [f.name for f in demo]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(demo, written, strict=True))  # order kept


def test_parquet_export_gives_parquet_days_with_the_same_rows(demo, tmp_path):
    export = tmp_path / "export.parquet"
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * REPLACE (CAST(order_ts AS TIMESTAMP) AS order_ts, CAST(quantity AS INTEGER) "
                    f"AS quantity) FROM read_csv({[str(f) for f in demo]}, all_varchar = true)) "
                    f"TO '{export}' (FORMAT parquet)")
        s = history_import.import_history(export, tmp_path / "landing")
        assert s.rows_written == s.rows_read > 0 and s.files == 40
    wh = warehouse.connect(tmp_path / "w.duckdb")
    for f in demo[:5]:      # the loader takes the typed daily Parquet files as they are
        result = ingest.load_partition(wh, f.name[13:23], tmp_path / "landing")
        assert result.source_file.endswith(".parquet")
        assert result.rows_read == result.rows_loaded == len(f.read_text().splitlines()) - 1
    wh.close()


def test_columns_in_any_order_come_out_in_the_landing_order(tmp_path):
    export = tmp_path / "export.csv"
    cols = list(reversed(LANDING_COLUMNS))
    row = dict(zip(LANDING_COLUMNS, "O1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,".split(","), strict=True))
    export.write_text(",".join(cols) + "\n" + ",".join(row[c] for c in cols) + "\n")
    history_import.import_history(export, tmp_path / "landing")
    assert (tmp_path / "landing" / "transactions_2024-03-01.csv").read_text() == (
        HEADER + "\nO1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,\n")


def test_column_names_in_any_case_are_matched_and_other_columns_ignored(tmp_path):
    export = tmp_path / "export.csv"
    header = ["Email"] + [f" {c.upper()} " if c == "customer_id" else c.title() for c in LANDING_COLUMNS] + ["notes"]
    export.write_text(",".join(header) + "\nx@y.z,O1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,,call back\n")
    s = history_import.import_history(export, tmp_path / "landing")
    assert s.ignored_columns == ["Email", "notes"] and s.rows_written == 1 and not s.warnings
    assert (tmp_path / "landing" / "transactions_2024-03-01.csv").read_text() == (
        HEADER + "\nO1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,\n")


def test_unambiguous_timestamp_and_price_forms_are_rewritten_and_load(tmp_path):
    """What a shop's tools write (pandas' to_csv, SQL clients, a date-only column, total / quantity) is written
    as the loader reads it, so those rows load instead of being quarantined."""
    export = tmp_path / "export.csv"
    export.write_text("\n".join([
        HEADER,
        "O1,1,C1,2024-03-01 09:00:00,books,3,8.8633333333,web,US,",       # space for the T; 10 decimals
        "O2,1,C2,2024-03-01T10:00:00.250,books,1,12.5,web,US,",          # a fraction of a second
        "O3,1,C3,2024-03-01,books,1,-0.33333333,web,US,",                # a date alone; (still negative)
        "O4,1,C4,2024-03-01T11:00:00,books,1,12.5,web,US,",              # as the loader wants it
        "O5,1,C5,2024-03-01 12:30,books,1,12.5,web,US,",                 # no seconds (a spreadsheet's)
    ]) + "\n")
    s = history_import.import_history(export, tmp_path / "landing")
    assert s.rewritten == {"order_ts as YYYY-MM-DDTHH:MM:SS": 4, "unit_price rounded to 6 decimals": 2}
    assert not s.warnings
    rows = list(csv.DictReader((tmp_path / "landing" / "transactions_2024-03-01.csv").open()))
    assert [(r["order_ts"], r["unit_price"]) for r in rows] == [
        ("2024-03-01T09:00:00", "8.863333"), ("2024-03-01T10:00:00", "12.5"), ("2024-03-01T00:00:00", "-0.333333"),
        ("2024-03-01T11:00:00", "12.5"), ("2024-03-01T12:30:00", "12.5")]
    wh = warehouse.connect(tmp_path / "w.duckdb")
    result = ingest.load_partition(wh, "2024-03-01", tmp_path / "landing")
    assert (result.rows_loaded, result.reason_counts) == (4, {"negative_unit_price": 1})
    wh.close()


def test_values_the_loader_will_quarantine_are_named_with_the_likely_fix_and_the_days_they_fail(tmp_path):
    export = tmp_path / "export.csv"
    rows = [f"O{i},1,C{i},2024-03-01T09:{i:02d}:00,books,1,12.5,web,US," for i in range(30)]
    rows[3] = "O3,1,C3,2024-03-01T09:03:00+02:00,books,1,12.5,web,US,"          # line 5: an offset
    rows[4] = 'O4,1,C4,2024-03-01T09:04:00,books,1,"12,50",web,US,'               # line 6: a decimal comma
    rows[5] = 'O5,1,C5,2024-03-01T09:05:00,books,1,"7,25",web,US,'
    rows.append("O99,1,C99,2024-03-02T09:00:00,books,1,12.5,web,US,")              # a clean day
    export.write_text("\n".join([HEADER, *rows]) + "\n")
    s = history_import.import_history(export, tmp_path / "landing", max_quarantine_share=0.05)
    assert len(s.warnings) == 3
    assert s.warnings[0].startswith("1 row(s) whose order_ts the loader will quarantine (bad_timestamp)")
    assert "time zone offset" in s.warnings[0] and "line 5: '2024-03-01T09:03:00+02:00'" in s.warnings[0]
    assert s.warnings[1].startswith("2 row(s) whose unit_price the loader will quarantine (bad_unit_price)")
    assert "decimal comma" in s.warnings[1] and "line 6: '12,50'" in s.warnings[1]
    assert s.warnings[2].startswith("on 1 day(s) (2024-03-01) these rows alone are more than 5%")   # 3 of 30
    wh = warehouse.connect(tmp_path / "w.duckdb")     # the loader agrees, row for row
    result = ingest.load_partition(wh, "2024-03-01", tmp_path / "landing")
    assert result.reason_counts == {"bad_timestamp": 1, "bad_unit_price": 2}
    wh.close()
    quiet = history_import.import_history(export, tmp_path / "other", max_quarantine_share=0.2)
    assert len(quiet.warnings) == 2                      # no day over 20 %


def test_a_typed_parquet_export_with_a_date_column_and_float_prices_loads(tmp_path):
    import pandas as pd

    export = tmp_path / "export.parquet"
    pd.DataFrame({
        "Order_Id": ["O1", "O2"], "line_number": [1, 1], "customer_id": ["C1", "C2"],
        "ORDER_TS": pd.to_datetime(["2024-03-01", "2024-03-01"]).date, "category": "books", "quantity": [3, 1],
        "unit_price": [26.59 / 3, 12.5], "channel": "web", "country": "US", "original_order_id": None,
        "email": ["a@b.c", "d@e.f"],
    }).to_parquet(export, index=False)
    s = history_import.import_history(export, tmp_path / "landing")
    assert s.ignored_columns == ["email"] and s.rewritten == {
        "order_ts as YYYY-MM-DDTHH:MM:SS": 2, "unit_price rounded to 6 decimals": 1}
    wh = warehouse.connect(tmp_path / "w.duckdb")
    assert ingest.load_partition(wh, "2024-03-01", tmp_path / "landing").rows_loaded == 2
    assert wh.execute("SELECT min(order_ts), max(unit_price) FROM staging.transactions").fetchone() == (
        datetime(2024, 3, 1), Decimal("12.5"))
    wh.close()


def test_rows_without_a_day_are_set_aside_with_line_and_reason_and_the_rest_loads(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("\n".join([
        HEADER,
        "O1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,",
        'O1,2,C1,2024-03-01T09:00:00,"music",1,3.333333,web,US,',
        "O2,1,C2,,toys,1,5,web,US,",                                # line 4: no timestamp
        "O3,1,C3,03/02/2024 10:00,toys,1,5,web,US,",                # line 5: not YYYY-MM-DD...
        "O4,1,C4,2024-03-03T23:00:00,toys,1,5,store,DE,",
    ]) + "\n")
    landing = tmp_path / "landing"
    s = history_import.import_history(export, landing)
    assert (s.rows_read, s.rows_written, s.rows_unassigned, s.files, s.empty_days) == (5, 3, 2, 3, 1)
    rows = list(csv.DictReader(s.unassigned_file.open()))
    assert [(r["source_line"], r["reason"], r["order_id"]) for r in rows] == [
        ("4", "missing_timestamp", "O2"), ("5", "bad_timestamp", "O3")]
    assert (landing / "transactions_2024-03-02.csv").read_text() == HEADER + "\n"   # a day without orders
    con = warehouse.connect(tmp_path / "w.duckdb")
    loaded = [ingest.load_partition(con, f"2024-03-0{d}", landing) for d in (1, 2, 3)]
    assert [(r.rows_read, r.rows_loaded) for r in loaded] == [(2, 2), (0, 0), (1, 1)]
    con.close()


def test_unassigned_rows_keep_their_file_line_after_blank_lines_and_quoted_line_breaks(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("\n".join([
        HEADER,
        "O1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,",
        "",                                                          # line 3: blank (the reader skips it)
        'O2,1,C2,2024-03-01T10:00:00,"home',                         # lines 4-5: one row, a quoted line break
        'garden",1,5,web,US,',
        "O3,1,C3,,toys,1,5,web,US,",                                 # line 6: no timestamp
    ]) + "\n")
    s = history_import.import_history(export, tmp_path / "landing")
    assert (s.rows_read, s.rows_unassigned) == (3, 1)
    rows = list(csv.DictReader(s.unassigned_file.open()))
    assert [(r["source_line"], r["reason"], r["order_id"]) for r in rows] == [("6", "missing_timestamp", "O3")]


def test_a_row_with_more_fields_than_the_header_stops_the_import_naming_its_line(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "\nO1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,\nO2,1,C2,2024-03-01T09:00:00,"
                      "books,2,12.5,web,US,,\n")
    with pytest.raises(history_import.HistoryImportError, match="line 3 has 11 fields, expected 10"):
        history_import.import_history(export, tmp_path / "landing")
    assert not list((tmp_path / "landing").glob("transactions_*"))


def test_existing_days_are_kept_unless_replaced(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "transactions_2024-03-01.parquet").write_bytes(b"old")
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "\nO1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,\n")
    with pytest.raises(history_import.HistoryImportError, match="exist already .*transactions_2024-03-01.parquet"):
        history_import.import_history(export, landing)
    assert sorted(p.name for p in landing.iterdir()) == ["transactions_2024-03-01.parquet"]   # nothing written
    history_import.import_history(export, landing, replace=True)
    assert sorted(p.name for p in landing.glob("transactions_*")) == ["transactions_2024-03-01.csv"]  # one a day
    assert [p.name for p in landing.glob("import_replaced/*/*")] == ["transactions_2024-03-01.parquet"]  # kept


def test_following_the_advice_for_set_aside_rows_loses_nothing(tmp_path, monkeypatch):
    """An export with one unreadable date: its row is set aside; importing only the corrected row with --replace
    replaced that day's file whole (its other row was gone, silently). The replaced file is now kept, the command
    says the day has fewer rows, and a later import that places every row clears the set-aside file."""
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "data"))
    landing = tmp_path / "data" / "landing"
    export = tmp_path / "may.csv"
    export.write_text(HEADER + "\nM1,1,C1,2024-05-12T09:00:00,books,2,12.5,web,US,\nM2,1,C2,12/05/2024,books,1,5,web,US,\n")
    assert CliRunner().invoke(cli, ["import-history", str(export)]).exit_code == 1     # M2 set aside
    assert (landing / "import_rejects" / "may.csv.unassigned.csv").exists()
    fix = tmp_path / "fix.csv"
    fix.write_text(HEADER + "\nM2,1,C2,2024-05-12T10:00:00,books,1,5,web,US,\n")
    out = CliRunner().invoke(cli, ["import-history", "--replace", str(fix)])
    assert out.exit_code == 0, out.output
    assert "transactions_2024-05-12.csv 1 -> 1" not in out.output and "fewer rows" not in out.output
    kept = list((landing / history_import.REPLACED_DIR).glob("*/transactions_2024-05-12.csv"))
    assert len(kept) == 1 and "M1" in kept[0].read_text()                           # the old day is kept
    # the corrected export, whole: both rows placed, the set-aside file of may.csv is cleared
    export.write_text(HEADER + "\nM1,1,C1,2024-05-12T09:00:00,books,2,12.5,web,US,\nM2,1,C2,2024-05-12T10:00:00,books,1,5,web,US,\n")
    out = CliRunner().invoke(cli, ["import-history", "--replace", str(export)])
    assert out.exit_code == 0 and "replaced 1 daily file(s)" in out.output
    assert (landing / "transactions_2024-05-12.csv").read_text().count("\n") == 3
    assert not (landing / "import_rejects" / "may.csv.unassigned.csv").exists()
    # a replacement with fewer rows than the day had is named
    out = CliRunner().invoke(cli, ["import-history", "--replace", str(fix)])
    assert "transactions_2024-05-12.csv 2 -> 1" in out.output and "fewer rows than before" in out.output


@pytest.mark.parametrize("name, text, message", [
    ("e.csv", "order_id,customer_id\nO1,C1\n", "missing column(s) line_number, order_ts"),
    ("e.csv", HEADER + ",Order_ID\n" + "O1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,,x\n",
     "'order_id' and 'Order_ID' name the same landing column"),
    ("e.txt", HEADER + "\n", "not a .csv, .csv.gz or .parquet file"),
    ("e.csv", HEADER.replace(",", ";") + "\n", "the header is semicolon-separated"),
    # a malformed row is named by its line (the reader's sniffer said "Error when sniffing file")
    ("e.csv", HEADER + "\nO1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,\nO2,1,C1,2024-03-01T09:00:00,books\n",
     "line 3 has 5 fields, expected 10"),
    ("e.csv", HEADER + "\nO1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,,x\n", "line 2 has 11 fields, expected 10"),
    ("e.csv", HEADER + '\nO1,1,"C1,2024-03-01T09:00:00,books,2,12.5,web,US,\n', "value with an unterminated quote"),
    # a spreadsheet's export: a preamble line, CR-only line endings, or nothing at all
    ("e.csv", "Sales export generated 2024-03-02\n" + HEADER + "\n", "the first line must be the header"),
    ("e.csv", HEADER + "\rO1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,\r", "line endings are CR only"),
    ("e.csv", "", "empty file (0 bytes)"),
])
def test_an_export_that_cannot_be_split_names_file_and_problem(tmp_path, name, text, message):
    export = tmp_path / name
    export.write_bytes(text.encode())
    with pytest.raises(history_import.HistoryImportError) as err:
        history_import.import_history(export, tmp_path / "landing")
    assert str(err.value).startswith(str(export)) and message in str(err.value)
    assert not list((tmp_path / "landing").glob("transactions_*"))


def test_cli_reports_counts_and_the_partition_start(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLV_PARTITIONS_START", "2024-01-01")
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "\nO1,1,C1,2023-12-30T09:00:00,books,2,12.5,web,US,\nO2,1,C1,,books,2,12.5,web,US,\n")
    out = CliRunner().invoke(cli, ["import-history", str(export)])
    assert out.exit_code == 1                                  # a row could not be placed
    assert "2 rows read = 1 written to daily files + 1 set aside (order_ts without a readable day" in out.output
    assert f"in {tmp_path / 'data' / 'landing'}" in out.output
    assert "set CLV_PARTITIONS_START=2023-12-30" in out.output
    assert f"next: `clv validate {tmp_path / 'data' / 'landing'}` says what the loader will quarantine" in out.output
    again = CliRunner().invoke(cli, ["import-history", str(export)])
    assert again.exit_code == 1 and "exist already" in again.output and "--replace" in again.output


def test_gzipped_export_splits_like_the_plain_one(demo, tmp_path):
    import gzip

    plain = _concat(demo[:5], tmp_path / "export.csv")
    packed = tmp_path / "export.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    history_import.import_history(packed, tmp_path / "landing")
    assert [f.read_bytes() for f in sorted((tmp_path / "landing").glob("transactions_*"))] == [
        f.read_bytes() for f in demo[:5]]


def test_rows_dated_after_today_are_unassigned_and_get_no_daily_files(tmp_path, monkeypatch):
    """A mistyped year (2034) made a daily file for every day up to it; now the row is set aside."""
    from datetime import date

    export = tmp_path / "export.csv"
    export.write_text("\n".join([
        HEADER,
        "O1,1,C1,2024-04-01T09:00:00,books,2,12.5,web,US,",
        "O2,1,C2,2034-04-02T10:00:00,toys,1,5,web,US,",             # line 3: in the future
        "O3,1,C3,2024-04-02T23:59:59,toys,1,5,web,US,",             # today: kept
        "O4,1,C4,,toys,1,5,web,US,",                                # line 5: no timestamp
    ]) + "\n")
    landing = tmp_path / "landing"
    s = history_import.import_history(export, landing, today=date(2024, 4, 2))
    assert (s.rows_read, s.rows_written, s.rows_unassigned, s.files) == (4, 2, 2, 2)
    assert (str(s.start), str(s.end)) == ("2024-04-01", "2024-04-02")
    assert sorted(p.name for p in landing.glob("transactions_*")) == [
        "transactions_2024-04-01.csv", "transactions_2024-04-02.csv"]
    rows = list(csv.DictReader(s.unassigned_file.open()))
    assert [(r["source_line"], r["reason"], r["order_id"], r["order_ts"]) for r in rows] == [
        ("3", "ts_in_future", "O2", "2034-04-02T10:00:00"), ("5", "missing_timestamp", "O4", "")]

    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "data"))       # the command: today's date, exit 1
    out = CliRunner().invoke(cli, ["import-history", str(export)])
    assert out.exit_code == 1 and "4 rows read = 2 written to daily files + 2 set aside" in out.output
    assert len(list((tmp_path / "data" / "landing").glob("transactions_*"))) == 2


@pytest.mark.parametrize("replace, message", [
    ("CAST(1 AS BIGINT) AS customer_id", "column customer_id has type BIGINT"),
    ("TIMESTAMPTZ '2024-03-01 23:30:00+00' AS order_ts", "column order_ts has type TIMESTAMP WITH TIME ZONE"),
])
def test_a_parquet_export_with_types_the_loader_refuses_is_refused_before_splitting(tmp_path, replace, message):
    export = tmp_path / "export.parquet"
    cols = ", ".join(f"'{v}' AS {k}" for k, v in zip(
        LANDING_COLUMNS, "O1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,".split(","), strict=True))
    duckdb.execute(f"COPY (SELECT * REPLACE ({replace}) FROM (SELECT {cols})) TO '{export}' (FORMAT parquet)")
    with pytest.raises(history_import.HistoryImportError, match=f"{message}.*nothing written"):
        history_import.import_history(export, tmp_path / "landing")
    assert not list((tmp_path / "landing").glob("transactions_*"))


def test_a_parquet_export_without_returns_loads_its_empty_original_order_column(tmp_path):
    import pandas as pd

    export = tmp_path / "export.parquet"
    pd.DataFrame([dict(zip(LANDING_COLUMNS, "O1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,".split(","),
                           strict=True))]).assign(original_order_id=None).to_parquet(export, index=False)
    history_import.import_history(export, tmp_path / "landing")
    con = warehouse.connect(tmp_path / "w.duckdb")
    result = ingest.load_partition(con, "2024-03-01", tmp_path / "landing")
    assert (result.rows_read, result.rows_loaded) == (1, 1)
    con.close()


def test_a_row_with_a_mistyped_year_stops_the_import_instead_of_writing_a_century_of_files(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("\n".join([HEADER, "O1,1,C1,1926-11-20T10:00:00,books,1,5,web,US,",
                                 "O2,1,C1,2026-11-19T10:00:00,books,1,5,web,US,",
                                 "O3,1,C2,2026-11-20T10:00:00,books,1,5,web,US,"]) + "\n")
    with pytest.raises(history_import.HistoryImportError,
                       match=r"no row between 1926-11-20 and 2026-11-19 \(36,523 days\).* 1 row\(s\) on one side of "
                             r"the gap \(line\(s\) 2\): a mistyped year\? Fix or remove them; nothing written"):
        history_import.import_history(export, tmp_path / "out")
    assert not list((tmp_path / "out").glob("transactions_*"))
