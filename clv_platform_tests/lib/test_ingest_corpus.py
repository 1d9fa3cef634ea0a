"""The bad-input corpus (bad_inputs/cases.py): exact outcome of every row-level and file-level case."""

import csv
import io
from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from clv_platform.lib import ingest, schema, validation, warehouse
from clv_platform_tests.lib.bad_inputs.cases import (
    DAY,
    FILE_CASES,
    GOOD,
    GOOD_TEXT,
    HEADER,
    ROW_CASES,
    csv_text,
)

NOW = datetime.fromisoformat(f"{DAY}T12:00:00")


@pytest.fixture
def con(tmp_path):
    c = warehouse.connect(tmp_path / "warehouse.duckdb")
    yield c
    c.close()


def _counts(con, day=DAY):
    return {t: con.execute(f"SELECT count(*) FROM {t} WHERE partition_date = ?", [date.fromisoformat(day)]).fetchone()[0]
            for t in ("raw.transactions", "raw.rejected_transactions", "staging.transactions", "raw.load_audit")}


def test_corpus_is_large_enough():
    assert len({c.name for c in ROW_CASES}) + len({c.name for c in FILE_CASES}) >= 25
    assert len(ROW_CASES) >= 20 and len(FILE_CASES) >= 20


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c.name)
def test_row_case(case, con, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    if case.prior:
        (landing / f"transactions_{case.prior_day}.csv").write_text("\n".join([HEADER, *case.prior]) + "\n")
        ingest.load_partition(con, case.prior_day, landing, now=NOW)
    text = csv_text(*case.bad_rows)
    (landing / f"transactions_{DAY}.csv").write_text(text)

    result = ingest.load_partition(con, DAY, landing, now=NOW)

    rejected = dict(con.execute(
        "SELECT source_line, reasons FROM raw.rejected_transactions WHERE partition_date = ? ORDER BY 1",
        [date.fromisoformat(DAY)]).fetchall())
    assert rejected == case.rejected
    n_rows = len(GOOD) + len(case.bad_rows)
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (
        n_rows, n_rows - len(case.rejected), len(case.rejected))
    assert result.rows_read == result.rows_loaded + result.rows_rejected
    # the good rows of the same file are loaded, typed, with the amount rule
    staged = con.execute(
        "SELECT source_line, order_id, quantity, unit_price, amount FROM staging.transactions "
        "WHERE partition_date = ? ORDER BY source_line", [date.fromisoformat(DAY)]).fetchall()
    assert [r[0] for r in staged] == [line for line in range(2, n_rows + 2) if line not in case.rejected]
    # quarantined rows keep their raw text, exactly as in the file at that line
    file_rows = list(csv.reader(io.StringIO(text)))
    kept = con.execute(f"SELECT source_line, {', '.join(schema.LANDING_COLUMNS)} FROM raw.rejected_transactions "
                       "ORDER BY 1").fetchall()
    for line, *values in kept:
        assert [v or "" for v in values] == file_rows[line - 1]
    assert [r[1] for r in staged] == [file_rows[line - 1][0] for line, *_ in staged]
    for _, _, q, p, amount in staged:
        assert float(amount) == round(q * float(p), 2)
    assert validation.reconcile(con, [DAY])["passed"]
    assert _counts(con) == {"raw.transactions": n_rows, "raw.rejected_transactions": len(case.rejected),
                            "staging.transactions": n_rows - len(case.rejected), "raw.load_audit": 1}
    # reason codes are documented
    for reasons in case.rejected.values():
        assert set(reasons.split(",")) <= set(ingest.REASONS)


def _write_file_case(case, landing):
    path = landing / case.file_name
    if case.setup == "both":
        (landing / f"transactions_{DAY}.csv").write_text(GOOD_TEXT)
        pd.read_csv(landing / f"transactions_{DAY}.csv", dtype=str).to_parquet(landing / f"transactions_{DAY}.parquet")
        return landing / f"transactions_{DAY}.csv"
    if case.setup == "directory":
        path.mkdir()
        return path
    if case.setup in ("parquet_missing_column", "parquet_wrong_type", "parquet_timestamptz"):
        c = duckdb.connect()
        cols = ", ".join(f"'{v}' AS {k}" for k, v in zip(schema.LANDING_COLUMNS, GOOD[0].split(","), strict=True))
        drop = " EXCLUDE (channel)" if case.setup == "parquet_missing_column" else ""
        sql = f"SELECT *{drop} FROM (SELECT {cols})"
        if case.setup == "parquet_wrong_type":
            sql = f"SELECT * REPLACE (CAST(42 AS INTEGER) AS order_ts) FROM (SELECT {cols})"
        if case.setup == "parquet_timestamptz":
            sql = f"SELECT * REPLACE (TIMESTAMPTZ '{DAY} 09:00:00+00' AS order_ts) FROM (SELECT {cols})"
        c.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
        c.close()
        return path
    path.write_bytes(case.content)
    return path


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda c: c.name)
def test_file_case(case, con, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    # an earlier good delivery of the same day is in the warehouse: a bad re-delivery must leave it intact
    good_dir = tmp_path / "good"
    good_dir.mkdir()
    (good_dir / f"transactions_{DAY}.csv").write_text(GOOD_TEXT)
    ingest.load_partition(con, DAY, good_dir, now=NOW)
    before = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
              for t in ("raw.transactions", "raw.rejected_transactions", "staging.transactions", "raw.load_audit")}

    path = _write_file_case(case, landing)
    with pytest.raises(ingest.LandingFileError) as err:
        ingest.load_partition(con, DAY, landing, now=NOW)
    message = str(err.value)
    assert case.error in message, message
    assert path.name in message, message          # the message names the file
    after = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in before}
    assert after == before                        # nothing of it was written
    assert path.exists()                          # the file is kept
    # the same verdict without a warehouse (clv validate) for files with a proper name
    if case.setup not in ("both", "directory") and case.file_name.startswith("transactions_2"):
        report = ingest.check_file(path)
        assert not report.ok and case.error in report.error


def test_missing_file_is_its_own_error(con, tmp_path):
    with pytest.raises(ingest.MissingLandingFileError, match="file not found"):
        ingest.load_partition(con, DAY, tmp_path)
    assert _counts(con)["raw.load_audit"] == 0


def test_header_only_file_is_an_empty_day(con, tmp_path):
    (tmp_path / f"transactions_{DAY}.csv").write_text(HEADER + "\n")
    result = ingest.load_partition(con, DAY, tmp_path, now=NOW)
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (0, 0, 0)
    assert _counts(con)["raw.load_audit"] == 1


def test_crlf_and_missing_final_newline_are_accepted(con, tmp_path):
    (tmp_path / f"transactions_{DAY}.csv").write_bytes(GOOD_TEXT.rstrip("\n").replace("\n", "\r\n").encode())
    result = ingest.load_partition(con, DAY, tmp_path, now=NOW)
    assert (result.rows_read, result.rows_rejected) == (3, 0)
    assert con.execute("SELECT max(length(original_order_id)) FROM raw.transactions").fetchone()[0] is None


@pytest.mark.parametrize("quoted", [False, True], ids=["unquoted", "value_with_line_break"])
def test_source_lines_are_the_file_lines_despite_blank_lines(con, tmp_path, quoted):
    # a blank line (and a quoted value spanning two lines) must not shift the line numbers of later rows
    spanning = f'"Q1",1,"C\n1",{DAY}T10:00:00,books,1,5,web,US,' if quoted else f"Q1,1,C1,{DAY}T10:00:00,books,1,5,web,US,"
    text = "\n".join([HEADER, GOOD[0], spanning, "", GOOD[1], f"Q2,1,C1,{DAY}T10:00:00,bookz,1,5,web,US,", "", ""])
    (tmp_path / f"transactions_{DAY}.csv").write_bytes(text.replace("\n", "\r\n").encode())
    bad_line = 7 if quoted else 6                 # header 1, O1 2, Q1 3(-4), blank, O1/2, Q2
    result = ingest.load_partition(con, DAY, tmp_path, now=NOW)
    # (the id with a line break is quarantined itself, as bad_id, at the line its row starts on)
    spanning_bad = [(3, "Q1")] if quoted else []
    assert (result.rows_read, result.rows_rejected) == (4, 1 + len(spanning_bad))
    assert con.execute("SELECT source_line, order_id FROM raw.rejected_transactions ORDER BY 1").fetchall() == [
        *spanning_bad, (bad_line, "Q2")]
    staged = con.execute("SELECT source_line, order_id FROM staging.transactions ORDER BY 1").fetchall()
    assert staged == [(2, "O1"), *([] if quoted else [(3, "Q1")]), (bad_line - 1, "O1")]
    report = ingest.check_file(tmp_path / f"transactions_{DAY}.csv")
    assert [e["source_line"] for e in report.examples] == [line for line, _ in spanning_bad] + [bad_line]


def test_parquet_decimal_with_wide_scale_is_read_as_its_value(con, tmp_path):
    c = duckdb.connect()
    src = tmp_path / "src.csv"
    src.write_text(csv_text())
    c.execute(f"""COPY (SELECT * REPLACE (CAST(order_ts AS TIMESTAMP) AS order_ts,
                  CAST(unit_price AS DECIMAL(20, 10)) AS unit_price)
                  FROM read_csv('{src}', all_varchar = true))
                  TO '{tmp_path / f"transactions_{DAY}.parquet"}' (FORMAT parquet)""")
    result = ingest.load_partition(con, DAY, tmp_path, now=NOW)
    assert (result.rows_read, result.rows_rejected) == (3, 0), result.reason_counts
    assert con.execute("SELECT unit_price FROM raw.transactions ORDER BY source_line").fetchall() == [
        ("12.5",), ("3.333333",), ("0",)]


def test_parquet_file_loads_like_csv(con, tmp_path):
    c = duckdb.connect()
    src = tmp_path / "src.csv"
    src.write_text(csv_text(f"O3,1,C3,{DAY}T11:00:00,books,0,5,web,US,"))
    c.execute(f"""COPY (SELECT * REPLACE (CAST(order_ts AS TIMESTAMP) AS order_ts, CAST(quantity AS INTEGER) AS quantity,
                  CAST(unit_price AS DECIMAL(18, 6)) AS unit_price)
                  FROM read_csv('{src}', all_varchar = true))
                  TO '{tmp_path / f"transactions_{DAY}.parquet"}' (FORMAT parquet)""")
    result = ingest.load_partition(con, DAY, tmp_path, now=NOW)
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (4, 3, 1)
    assert result.reason_counts == {"zero_quantity": 1}
    assert con.execute("SELECT source_line FROM raw.rejected_transactions").fetchall() == [(4,)]
    assert float(con.execute("SELECT sum(amount) FROM staging.transactions").fetchone()[0]) == pytest.approx(25 + 3.33)


def test_line_in_two_days_files_is_counted_once_whichever_loads_first(con, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    early, late = "2024-03-09", DAY
    (landing / f"transactions_{early}.csv").write_text(
        "\n".join([HEADER, "P1,1,C9,2024-03-09T08:00:00,books,2,7,app,FR,"]) + "\n")
    (landing / f"transactions_{late}.csv").write_text(csv_text("P1,1,C9,2024-03-10T08:00:00,books,2,7,app,FR,"))
    later_first = ingest.load_partition(con, late, landing, now=NOW)     # a backfill out of date order
    earlier = ingest.load_partition(con, early, landing, now=NOW)
    assert later_first.rows_rejected == 0
    assert (earlier.rows_read, earlier.rows_rejected) == (1, 1)
    assert earlier.reason_counts == {"duplicate_line_other_file": 1}
    again = ingest.load_partition(con, late, landing, now=NOW)          # re-delivery keeps the loaded copy
    assert again.rows_rejected == 0
    staged = con.execute("SELECT count(*) FROM staging.transactions WHERE order_id = 'P1'").fetchone()[0]
    assert staged == 1
    assert validation.reconcile(con, [early, late])["passed"]


def _pandas_parquet(tmp_path, **replace) -> None:
    """The good rows written by pandas (its own types: nanosecond timestamps, float prices, ...), columns
    replaced by `replace`."""
    frame = pd.read_csv(io.StringIO(csv_text()), dtype=str, keep_default_na=False)
    for column, values in replace.items():
        frame[column] = values
    frame.to_parquet(tmp_path / f"transactions_{DAY}.parquet", index=False)


def test_parquet_time_zone_timestamps_of_any_precision_are_refused(con, tmp_path):
    # pandas writes datetime64[ns, tz]: DuckDB calls it TIMESTAMPTZ_NS, not TIMESTAMP WITH TIME ZONE
    ts = pd.to_datetime([f"{DAY} 09:00:00"] * 3).tz_localize("America/New_York")
    _pandas_parquet(tmp_path, order_ts=ts)
    with pytest.raises(ingest.LandingFileError, match="column order_ts has type TIMESTAMP.*without time zone"):
        ingest.load_partition(con, DAY, tmp_path, now=NOW)


def test_parquet_all_missing_column_and_float_prices_load(con, tmp_path):
    # pandas writes an all-None column as type NULL; 0.1 * 3 is 0.30000000000000004 as a float
    _pandas_parquet(tmp_path, original_order_id=[None] * 3, unit_price=[0.1 * 3, 19.99 * 0.9, 5.0],
                    order_ts=pd.to_datetime([f"{DAY} 09:00:00.750"] * 3))
    result = ingest.load_partition(con, DAY, tmp_path, now=NOW)
    assert (result.rows_read, result.rows_rejected) == (3, 0), result.reason_counts
    assert con.execute("SELECT unit_price, order_ts FROM raw.transactions ORDER BY source_line").fetchall() == [
        ("0.3", f"{DAY}T09:00:00"), ("17.991", f"{DAY}T09:00:00"), ("5.0", f"{DAY}T09:00:00")]


def test_parquet_float_price_with_more_than_six_decimals_is_still_quarantined(con, tmp_path):
    _pandas_parquet(tmp_path, unit_price=[1.2345678, 2.0, 3.0])
    result = ingest.load_partition(con, DAY, tmp_path, now=NOW)
    assert result.reason_counts == {"bad_unit_price": 1}


@pytest.mark.parametrize("where", ["last", "middle"])
def test_a_line_too_long_for_the_reader_fails_the_file_and_is_never_dropped(con, tmp_path, where):
    """DuckDB's reader silently dropped a last line of tens of MB (the file "loaded" without that row), and said
    "Parallel CSV Reader ... not implemented" for one in the middle: the file is refused, naming the line."""
    long_line = f"X1,1,{'C' * 40_000_000},{DAY}T10:00:00,books,1,5,web,US,"
    lines = [GOOD[0], GOOD[1], long_line] if where == "last" else [GOOD[0], long_line, GOOD[1]]
    (tmp_path / f"transactions_{DAY}.csv").write_text("\n".join([HEADER, *lines]) + "\n")
    with pytest.raises(ingest.LandingFileError) as refused:
        ingest.load_partition(con, DAY, tmp_path, now=NOW)
    message = str(refused.value)
    if where == "last":
        assert "malformed CSV: 2 rows read from 3 data lines; line 4 (40,000,0" in message, message
        assert message.endswith(" bytes) could not be read")
    else:
        assert "longer than the reader's limit of" in message and "Not implemented" not in message, message
    assert _counts(con)["raw.load_audit"] == 0 and _counts(con)["raw.transactions"] == 0


def test_a_quoted_value_longer_than_the_csv_modules_default_limit_is_read(con, tmp_path):
    long_id = "C" * 150_000                      # legal, under the reader's 2 MB line limit
    text = "\n".join([HEADER, f'"Q1",1,"{long_id}",{DAY}T10:00:00,books,1,5,web,US,']) + "\n"
    (tmp_path / f"transactions_{DAY}.csv").write_text(text)
    result = ingest.load_partition(con, DAY, tmp_path, now=NOW)
    assert result.rows_read == 1


@pytest.mark.parametrize("column, sql", [
    ("customer_id", "['C1', 'C2']"),                  # a list: read as '[C1, C2]' before
    ("quantity", "INTERVAL 1 DAY"),                   # INTERVAL passed the "INT" prefix
    ("country", "{'code': 'US'}"),
])
def test_parquet_nested_and_interval_types_are_refused(con, tmp_path, column, sql):
    values = {c: "NULL" for c in schema.LANDING_COLUMNS} | {
        "order_id": "'O1'", "line_number": "1", "customer_id": "'C1'", "order_ts": f"TIMESTAMP '{DAY} 10:00:00'",
        "category": "'books'", "quantity": "1", "unit_price": "5.0", "channel": "'web'", "country": "'US'"}
    values[column] = sql
    path = tmp_path / f"transactions_{DAY}.parquet"
    select = ", ".join(f"{v} AS {c}" for c, v in values.items())
    duckdb.sql(f"COPY (SELECT {select}) TO '{path}' (FORMAT parquet)")
    with pytest.raises(ingest.LandingFileError, match=f"Parquet schema mismatch: column {column} has type"):
        ingest.load_partition(con, DAY, tmp_path, now=NOW)


@pytest.mark.parametrize("change, hint", [
    ({"line_number": [1.0, None]}, "fill it, or use dtype Int64"),          # pandas: an int column with a NaN
    ({"customer_id": [7, 8]}, "write it as strings (pandas: astype(str)), keeping any leading zeros"),
    ("index", "__index_level_* is a pandas index: write the file with index=False"),
])
def test_parquet_written_by_pandas_is_refused_with_the_fix(con, tmp_path, change, hint):
    import pandas as pd

    frame = pd.DataFrame({"order_id": ["O1", "O2"], "line_number": [1, 1], "customer_id": ["C1", "C2"],
                          "order_ts": pd.to_datetime([f"{DAY} 10:00"] * 2), "category": "books", "quantity": 1,
                          "unit_price": 5.0, "channel": "web", "country": "US", "original_order_id": None})
    path = tmp_path / f"transactions_{DAY}.parquet"
    if change == "index":
        frame.set_index(pd.Index([3, 4])).to_parquet(path)
    else:
        frame.assign(**change).to_parquet(path, index=False)
    with pytest.raises(ingest.LandingFileError, match="Parquet schema mismatch") as refused:
        ingest.load_partition(con, DAY, tmp_path, now=NOW)
    assert hint in str(refused.value)


def test_a_file_larger_than_one_days_file_is_refused_before_it_is_read(con, tmp_path, monkeypatch):
    """A Parquet file of 10 KB expanded to 30M rows (8.8 GB in memory): refused from its metadata."""
    monkeypatch.setattr(ingest, "MAX_FILE_ROWS", 5)
    path = tmp_path / f"transactions_{DAY}.parquet"
    duckdb.sql(f"COPY (SELECT 'O' || i AS order_id, 1 AS line_number, 'C1' AS customer_id, "
               f"TIMESTAMP '{DAY} 10:00:00' AS order_ts, 'books' AS category, 1 AS quantity, 5.0 AS unit_price, "
               f"'web' AS channel, 'US' AS country, NULL AS original_order_id FROM range(6) t(i)) TO '{path}' "
               "(FORMAT parquet)")
    with pytest.raises(ingest.LandingFileError, match="6 rows, more than the 5 of one day's file"):
        ingest.load_partition(con, DAY, tmp_path, now=NOW)
    path.unlink()
    monkeypatch.setattr(ingest, "MAX_FILE_BYTES", 100)
    (tmp_path / f"transactions_{DAY}.csv").write_text(GOOD_TEXT)
    with pytest.raises(ingest.LandingFileError, match="bytes, more than the 100 of one day's file"):
        ingest.load_partition(con, DAY, tmp_path, now=NOW)
    assert _counts(con)["raw.load_audit"] == 0


def test_checking_many_files_in_one_database_reports_each_as_alone(tmp_path):
    """`clv validate FOLDER` checks every file in one in-memory database (half the time per small file): no file's
    report may depend on the files checked before it, bad ones included, in either order."""
    paths = []
    for i, case in enumerate(ROW_CASES):
        (tmp_path / f"r{i}").mkdir()
        paths.append(tmp_path / f"r{i}" / f"transactions_{DAY}.csv")
        paths[-1].write_text(csv_text(*case.bad_rows))
    for i, case in enumerate(c for c in FILE_CASES if c.content is not None):
        (tmp_path / f"f{i}").mkdir()
        paths.append(tmp_path / f"f{i}" / case.file_name)
        paths[-1].write_bytes(case.content)

    def seen(report):
        return (report.rows_read, report.rows_rejected, report.reason_counts, report.error, report.examples,
                report.unknown_values)

    alone = {p: seen(ingest.check_file(p, now=NOW, examples=5)) for p in paths}
    with duckdb.connect() as shared:
        for order in (paths, paths[::-1]):
            assert [seen(ingest.check_file(p, now=NOW, examples=5, con=shared)) for p in order] == [
                alone[p] for p in order]
