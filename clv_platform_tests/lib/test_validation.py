"""GX suite + SQL checks on staging rows, per-partition history, reconciliation."""

from datetime import date, datetime

import pytest

from clv_platform.lib import ingest, validation, warehouse
from clv_platform_tests.lib.bad_inputs.cases import HEADER

NOW = datetime(2024, 3, 12, 12, 0, 0)


def write_day(landing, day, rows):
    (landing / f"transactions_{day}.csv").write_text("\n".join([HEADER, *rows]) + "\n")


@pytest.fixture
def loaded(tmp_path):
    con = warehouse.connect(tmp_path / "w.duckdb")
    for day in ("2024-03-10", "2024-03-11"):
        write_day(tmp_path, day, [f"O{day}-{i},1,C{i},{day}T0{i}:00:00,books,{i + 1},1.5,web,US," for i in range(5)])
        ingest.load_partition(con, day, tmp_path, now=NOW)
    yield con
    con.close()


def test_clean_partitions_pass_and_are_recorded(loaded):
    run = validation.validate_partitions(loaded, ["2024-03-10", "2024-03-11"], now=NOW)
    assert run.success and run.rows == 10
    assert set(run.checks()) == set(validation.CHECKS)
    assert all(run.checks()[name] for name in validation.CHECKS)      # every check has expectations
    rows = loaded.execute("SELECT partition_date, count(*), bool_and(success), sum(unexpected_count) "
                          "FROM staging.validation_results GROUP BY 1 ORDER BY 1").fetchall()
    assert [(str(d), ok, bad) for d, _, ok, bad in rows] == [("2024-03-10", True, 0), ("2024-03-11", True, 0)]
    assert rows[0][1] == len(run.outcomes)
    again = validation.validate_partitions(loaded, ["2024-03-10"], now=NOW)      # replaces, not appends
    assert loaded.execute("SELECT count(*) FROM staging.validation_results").fetchone()[0] == 2 * len(again.outcomes)


def test_reloading_a_day_without_a_sale_fails_the_later_return_of_it_until_that_day_is_reloaded(loaded, tmp_path):
    # 03-12 returns a sale of 03-10; 03-10 is then delivered again without that sale
    write_day(tmp_path, "2024-03-12", ["R1,1,C0,2024-03-12T09:00:00,books,-1,1.5,web,US,O2024-03-10-0"])
    ingest.load_partition(loaded, "2024-03-12", tmp_path, now=NOW)
    assert validation.validate_partitions(loaded, ["2024-03-12"], now=NOW).success
    write_day(tmp_path, "2024-03-10", ["O2024-03-10-1,1,C1,2024-03-10T01:00:00,books,2,1.5,web,US,"])
    ingest.load_partition(loaded, "2024-03-10", tmp_path, now=NOW)

    run = validation.validate_partitions(loaded, ["2024-03-10"], now=NOW)
    (returns,) = [o for o in run.outcomes if o.expectation == "returns_match_known_sales_sql"]
    assert not run.success and returns.partitions_failed == ["2024-03-12"] and returns.examples == ["R1/1"]
    failing = loaded.execute("SELECT partition_date, expectation FROM staging.validation_results "
                             "WHERE NOT success").fetchall()
    assert failing == [(date(2024, 3, 12), "transactions_returns_refer_to_known_orders:returns_match_known_sales_sql")]
    # other expectations of 03-12 keep their rows: one row per partition and expectation
    per_day = dict(loaded.execute("SELECT partition_date, count(*) FROM staging.validation_results GROUP BY 1"
                                  ).fetchall())
    assert per_day == {date(2024, 3, 10): len(run.outcomes), date(2024, 3, 12): len(run.outcomes)}

    reloaded = ingest.load_partition(loaded, "2024-03-12", tmp_path, now=NOW)     # the return is quarantined now
    assert reloaded.reason_counts == {"return_without_known_order": 1}
    assert validation.validate_partitions(loaded, ["2024-03-12"], now=NOW).success
    assert loaded.execute("SELECT count(*) FROM staging.validation_results WHERE NOT success").fetchone()[0] == 0


def test_distinct_order_ids_whose_duckdb_hashes_collide_are_unique(tmp_path):
    """Real CDNOW ids that DuckDB's hash() maps to the same value must not fail the uniqueness check."""
    con = warehouse.connect(tmp_path / "w.duckdb")
    ids = ("CDNOW-12953-19980318-1", "CDNOW-15953-19970318-1")
    assert len({con.execute(f"SELECT hash('{i}')").fetchone()[0] for i in ids}) == 1
    write_day(tmp_path, "2024-03-10", [f"{i},1,C1,2024-03-10T10:00:00,music,1,9.5,web,US," for i in ids])
    ingest.load_partition(con, "2024-03-10", tmp_path, now=NOW)
    run = validation.validate_partitions(con, ["2024-03-10"], now=NOW)
    con.close()
    assert run.success and all(o.success for o in run.checks()["transactions_have_unique_order_lines"])


def test_suite_catches_rows_that_bypassed_the_quarantine(loaded):
    # rows written behind the loader's back: GX must flag each with its partition and source line
    loaded.execute("""INSERT INTO staging.transactions VALUES
        ('2024-03-11', 'O2024-03-11-0', 1, 'C0', '2024-03-11 00:00:00', 'books', 1, 1.5, 1.5, 'web', 'US', NULL, 'x', 90),
        ('2024-03-11', 'Z1', 1, 'C1', '2024-03-12 01:00:00', 'books', 1, 1.5, 1.5, 'web', 'US', NULL, 'x', 91),
        ('2024-03-11', 'Z2', 1, 'C1', '2024-03-11 01:00:00', 'books', 0, 1.5, 0, 'fax', 'US', NULL, 'x', 92),
        ('2024-03-11', 'Z3', 1, 'C1', '2024-03-11 01:00:00', 'books', -1, 1.5, -1.5, 'web', 'US', NULL, 'x', 93),
        ('2024-03-11', 'Z4', 1, 'C1', '2024-03-11 01:00:00', 'books', 2, 1.5, 9.99, 'web', 'US', NULL, 'x', 94)""")
    run = validation.validate_partitions(loaded, ["2024-03-10", "2024-03-11"], now=NOW)
    failed = {(o.check, o.expectation, o.column): o for o in run.outcomes if not o.success}
    unique = failed[("transactions_have_unique_order_lines", "expect_compound_columns_to_be_unique",
                     "order_key,line_number")]
    assert unique.unexpected_count == 2 and unique.partitions_failed == ["2024-03-11"]
    day = failed[("transactions_are_inside_their_partition_day", "expect_column_values_to_be_between",
                  "seconds_into_day")]
    assert day.unexpected_count == 1 and day.examples[0]["source_line"] == 91
    assert failed[("transactions_have_plausible_quantities_and_prices", "expect_column_values_to_not_be_in_set",
                   "quantity")].unexpected_count == 1
    amount = failed[("transactions_have_plausible_quantities_and_prices", "expect_column_pair_values_to_be_equal",
                     "amount,amount_recomputed")]
    assert amount.unexpected_count == 1 and amount.examples[0]["source_line"] == 94
    assert failed[("transactions_use_known_vocabularies", "expect_column_values_to_be_in_set", "channel")].examples[0][
        "value"] == "fax"
    assert failed[("transactions_returns_refer_to_known_orders", "expect_column_values_to_not_be_null",
                   "original_order_key")].unexpected_count == 1
    assert {c for c, *_ in failed} == {
        "transactions_have_unique_order_lines", "transactions_are_inside_their_partition_day",
        "transactions_have_plausible_quantities_and_prices", "transactions_use_known_vocabularies",
        "transactions_returns_refer_to_known_orders"}
    history = dict(loaded.execute(
        "SELECT partition_date, bool_and(success) FROM staging.validation_results GROUP BY 1").fetchall())
    assert history == {date(2024, 3, 10): True, date(2024, 3, 11): False}


def test_reconciliation_finds_lost_rows(loaded):
    assert validation.reconcile(loaded, ["2024-03-10", "2024-03-11"]) == {
        "partitions": 2, "rows_read": 10, "rows_loaded": 10, "rows_rejected": 0, "problems": [], "passed": True}
    loaded.execute("DELETE FROM staging.transactions WHERE source_line = 3 AND partition_date = '2024-03-11'")
    result = validation.reconcile(loaded, ["2024-03-10", "2024-03-11"])
    assert not result["passed"]
    assert result["problems"] == ["2024-03-11 transactions_2024-03-11.csv: tables raw/staging/rejected = 5/4/0, "
                                  "audit says 5/5/0"]


def test_check_file_report(tmp_path):
    write_day(tmp_path, "2024-03-10", ["O1,1,C1,2024-03-10T01:00:00,books,1,2,web,US,",
                                       "O2,1,C1,2024-03-10T01:00:00,books,1,2,web,XX,",
                                       "R1,1,C1,2024-03-10T02:00:00,books,-1,2,web,US,O0"])
    report = ingest.check_file(tmp_path / "transactions_2024-03-10.csv", now=NOW)
    assert (report.rows_read, report.rows_valid, report.rows_rejected) == (3, 2, 1)
    assert report.reason_counts == {"unknown_country": 1} and not report.ok
    assert report.examples[0]["source_line"] == 3 and report.examples[0]["reasons"] == "unknown_country"


def test_clv_validate_command(tmp_path):
    from click.testing import CliRunner

    from clv_platform.cli import cli

    write_day(tmp_path, "2024-03-10", ["O1,1,C1,2024-03-10T01:00:00,books,1,2,web,US,"])
    ok = CliRunner().invoke(cli, ["validate", str(tmp_path / "transactions_2024-03-10.csv")])
    assert ok.exit_code == 0 and "RESULT: OK" in ok.output and "1 read, 1 valid" in ok.output
    write_day(tmp_path, "2024-03-11", ["O1,1,C1,2024-03-11T01:00:00,books,0,2,web,US,"])
    bad = CliRunner().invoke(cli, ["validate", str(tmp_path / "transactions_2024-03-11.csv")])
    assert bad.exit_code == 1 and "zero_quantity" in bad.output and "2: zero_quantity" in bad.output
    (tmp_path / "transactions_2024-03-12.csv").write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + b"\n")
    bom = CliRunner().invoke(cli, ["validate", str(tmp_path / "transactions_2024-03-12.csv")])
    assert bom.exit_code == 1 and "REJECTED (file-level)" in bom.output and "BOM" in bom.output
