"""Ingestion assets in-process on a temporary DuckDB: single partitions, a ranged single-run backfill with a bad
file, idempotency, blocking checks stopping downstream assets."""

import shutil

import dagster as dg
import pytest

from clv_platform.defs.ingestion.assets import (
    INGESTION_KEYS,
    RAW_LOAD_AUDIT,
    RAW_REJECTED,
    STAGING_TRANSACTIONS,
    transactions_ingestion,
)
from clv_platform.defs.resources import LandingResource, WarehouseResource
from clv_platform.defs.validation.checks import load_audit_reconciles_with_tables, staging_transactions_checks
from clv_platform.lib import validation, warehouse

HEADER = "order_id,line_number,customer_id,order_ts,category,quantity,unit_price,channel,country,original_order_id"
TABLES = ("raw.transactions", "raw.rejected_transactions", "staging.transactions", "raw.load_audit")


def day_file(landing, day, n_good=3, n_bad=0, extra=()):
    rows = [f"O{day}-{i},1,C{i % 2},{day}T1{i % 10}:00:00,books,{i + 1},2.5,web,US," for i in range(n_good)]
    rows += [f"B{day}-{i},1,C9,{day}T10:00:00,books,0,2.5,web,US," for i in range(n_bad)]
    path = landing / f"transactions_{day}.csv"
    path.write_text("\n".join([HEADER, *rows, *extra]) + "\n")
    return path


@dg.asset(deps=[STAGING_TRANSACTIONS], group_name="test")
def downstream_of_staging() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"ran": True})


@pytest.fixture
def env(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    resources = {
        "warehouse": WarehouseResource(database=str(tmp_path / "warehouse.duckdb")),
        "landing": LandingResource(directory=str(landing)),
    }
    return landing, resources, tmp_path / "warehouse.duckdb"


ASSETS = [transactions_ingestion, staging_transactions_checks, load_audit_reconciles_with_tables,
          downstream_of_staging]


def snapshot(db):
    con = warehouse.connect(db)
    try:
        out = {t: con.execute(f"SELECT * EXCLUDE ({'loaded_at, load_seconds' if t == 'raw.load_audit' else 'partition_date'})"
                              f" FROM {t} ORDER BY ALL").fetchall() for t in TABLES}
        out["validation"] = con.execute(
            "SELECT partition_date, expectation, success, element_count, unexpected_count "
            "FROM staging.validation_results ORDER BY ALL").fetchall()
        return out
    finally:
        con.close()


def test_definitions_load_with_ingestion_and_checks():
    from clv_platform.definitions import defs

    d = defs()
    graph = d.resolve_asset_graph()
    for key in INGESTION_KEYS:
        assert graph.get(key).group_name == "ingestion"
        assert graph.get(key).partitions_def is not None
    assert graph.get(STAGING_TRANSACTIONS).backfill_policy == dg.BackfillPolicy.single_run()
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == STAGING_TRANSACTIONS}
    assert set(validation.CHECKS) <= checks
    assert any(k.asset_key == RAW_LOAD_AUDIT for k in graph.asset_check_keys)


def test_single_partition_then_idempotent_rerun_and_redelivery(env):
    landing, resources, db = env
    path = day_file(landing, "2024-01-02", n_good=4, n_bad=1)
    result = dg.materialize(ASSETS, partition_key="2024-01-02", resources=resources)
    assert result.success
    mats = result.asset_materializations_for_node("transactions_ingestion")
    assert {m.asset_key for m in mats} == set(INGESTION_KEYS)
    meta = next(m for m in mats if m.asset_key == STAGING_TRANSACTIONS).metadata
    assert (meta["rows_read"].value, meta["rows_loaded"].value, meta["rows_rejected"].value) == (5, 4, 1)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert all(e.passed for e in checks.values()), {k: e.metadata for k, e in checks.items() if not e.passed}
    assert "results" in checks["transactions_have_keys"].metadata
    first = snapshot(db)
    assert len(first["staging.transactions"]) == 4 and len(first["validation"]) > 10

    assert dg.materialize(ASSETS, partition_key="2024-01-02", resources=resources).success
    assert snapshot(db) == first                          # re-run: nothing changed
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)                                # re-delivery of the identical file
    assert dg.materialize(ASSETS, partition_key="2024-01-02", resources=resources).success
    assert snapshot(db) == first

    day_file(landing, "2024-01-02", n_good=2)             # a changed file replaces the partition
    assert dg.materialize(ASSETS, partition_key="2024-01-02", resources=resources).success
    changed = snapshot(db)
    assert len(changed["raw.transactions"]) == 2 and len(changed["raw.rejected_transactions"]) == 0
    assert len(changed["raw.load_audit"]) == 1 and changed["raw.load_audit"] != first["raw.load_audit"]


def test_ranged_backfill_is_one_run_and_a_bad_file_does_not_undo_the_others(env):
    landing, resources, db = env
    for day in ("2024-01-01", "2024-01-02", "2024-01-04"):
        day_file(landing, day)
    (landing / "transactions_2024-01-03.csv").write_text("order_id;line_number\n")   # wrong delimiter
    # 2024-01-05 has no file: skipped with a warning
    job = dg.define_asset_job("ingest_range", selection=dg.AssetSelection.assets(transactions_ingestion))
    defs = dg.Definitions(assets=ASSETS, resources=resources, jobs=[job])
    tags = {"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-01-05"}
    result = defs.resolve_job_def("ingest_range").execute_in_process(tags=tags, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "transactions_2024-01-03.csv: wrong delimiter" in message
    mats = [e.event_specific_data.materialization for e in result.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert sorted({m.partition for m in mats}) == ["2024-01-01", "2024-01-02", "2024-01-04"]
    con = warehouse.connect(db)
    loaded = [str(d) for (d,) in con.execute("SELECT partition_date FROM raw.load_audit ORDER BY 1").fetchall()]
    assert loaded == ["2024-01-01", "2024-01-02", "2024-01-04"]
    assert con.execute("SELECT count(*) FROM staging.transactions").fetchone()[0] == 9
    # the step's checks did not run, but the loaded partitions were validated: their results are recorded
    validated = con.execute("SELECT DISTINCT partition_date FROM staging.validation_results ORDER BY 1").fetchall()
    assert [str(d) for (d,) in validated] == loaded
    con.close()

    # fix the file: the same range now succeeds in one run, skipping the day without a file
    day_file(landing, "2024-01-03")
    result = defs.resolve_job_def("ingest_range").execute_in_process(tags=tags)
    assert result.success
    mats = result.asset_materializations_for_node("transactions_ingestion")
    staging = [m for m in mats if m.asset_key == STAGING_TRANSACTIONS]
    assert sorted(m.partition for m in staging) == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04",
                                                    "2024-01-05"]
    assert "2024-01-05" in staging[0].metadata["warning_days_without_file"].value
    assert staging[0].metadata["run_files_loaded"].value == 4
    # each partition carries its own day's figures, next to the run's totals
    by_day = {m.partition: m.metadata for m in staging}
    assert by_day["2024-01-03"]["file"].value.endswith("transactions_2024-01-03.csv")
    assert {day: by_day[day]["rows_read"].value for day in ("2024-01-01", "2024-01-03")} == {
        "2024-01-01": 3, "2024-01-03": 3}
    assert by_day["2024-01-01"]["run_rows_read"].value == 12
    assert "rows_read" not in by_day["2024-01-05"] and "no landing file" in by_day["2024-01-05"]["skipped"].value
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["load_audit_reconciles_with_tables"].passed
    assert checks["transactions_have_keys"].metadata["partitions"].value == 4     # not 2024-01-05: no file
    con = warehouse.connect(db)
    validated = [str(d) for (d,) in con.execute("SELECT DISTINCT partition_date FROM staging.validation_results "
                                                "ORDER BY 1").fetchall()]
    con.close()
    assert validated == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]    # nothing recorded for 01-05


def test_a_run_with_a_rejected_file_names_the_loaded_days_that_fail_their_checks(env):
    """The step's checks do not run when a file is rejected (they show "execution failed"): the run's failure
    names, as they would, a loaded day that fails them, else fixing the rejected file looked like the end of it."""
    landing, resources, _ = env
    day_file(landing, "2024-01-01", n_good=20, n_bad=10)                               # a third quarantined
    (landing / "transactions_2024-01-02.csv").write_text("order_id;line_number\n")    # rejected
    job = dg.define_asset_job("ingest_range", selection=dg.AssetSelection.assets(transactions_ingestion))
    defs = dg.Definitions(assets=ASSETS, resources=resources, jobs=[job])
    tags = {"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-01-02"}
    result = defs.resolve_job_def("ingest_range").execute_in_process(tags=tags, raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "transactions_2024-01-02.csv: wrong delimiter" in message
    assert ("Loaded, but failing their checks (scoring refuses them until reloaded): 2024-01-01 fails "
            "transactions_quarantine_share_is_acceptable:quarantine_share_at_most_sql (transactions_2024-01-01.csv)") \
        in message, message


def test_failing_blocking_check_stops_downstream(env):
    landing, resources, db = env
    day_file(landing, "2024-01-02", n_good=20, n_bad=10)     # a third of the file quarantined
    result = dg.materialize(ASSETS, partition_key="2024-01-02", resources=resources, raise_on_error=False)
    assert not result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    bad = checks["transactions_quarantine_share_is_acceptable"]
    assert not bad.passed and "10/30 rows quarantined" in str(bad.metadata["examples"].value)
    assert "e.g. transactions_2024-01-02.csv: 10/30 rows quarantined (33%" in bad.description   # the CLI prints it
    assert checks["load_audit_reconciles_with_tables"].passed
    # the UI shows the quarantined rows themselves (the first 10: line, reasons, the row as read), not only counts
    rejected = next(m for m in result.asset_materializations_for_node("transactions_ingestion")
                    if m.asset_key == RAW_REJECTED).metadata["rejected_rows"].value
    lines = rejected.splitlines()
    assert len(lines) == 2 + 10 and lines[2].startswith("| 22 | ") and "`B2024-01-02-0,1,C9,2024-01-02T10:00:00,books,0," \
        in lines[2]
    downstream = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
                  and e.event_specific_data.materialization.asset_key == downstream_of_staging.key]
    assert downstream == []
    assert "downstream_of_staging" not in {e.step_key for e in result.get_step_success_events()}
    con = warehouse.connect(db)
    failed = con.execute("SELECT count(*) FROM staging.validation_results WHERE NOT success").fetchone()[0]
    con.close()
    assert failed == 1

    # with a clean file the same run goes through to the downstream asset
    day_file(landing, "2024-01-02", n_good=20)
    result = dg.materialize(ASSETS, partition_key="2024-01-02", resources=resources)
    assert result.success
    assert result.asset_materializations_for_node("downstream_of_staging")


def test_copy_of_landing_dir_is_not_needed(env, tmp_path):
    """The landing file is never moved or deleted by a load."""
    landing, resources, db = env
    path = day_file(landing, "2024-01-02")
    shutil.copy(path, tmp_path / "copy.csv")
    dg.materialize([transactions_ingestion], partition_key="2024-01-02", resources=resources)
    assert path.read_bytes() == (tmp_path / "copy.csv").read_bytes()


def test_own_vocabularies_load_and_pass_the_checks_and_an_unusable_file_loads_nothing(env, monkeypatch):
    landing, resources, db = env
    day_file(landing, "2024-01-02", extra=["A1,1,C7,2024-01-02T09:00:00,garden,1,30,web,AU,"])
    vocab = landing.parent / "vocabularies.toml"
    vocab.write_text('countries = ["US", "AU"]\ncategories = ["books", "garden"]\n')
    monkeypatch.setenv("CLV_VOCABULARIES", str(vocab))
    result = dg.materialize(ASSETS, partition_key="2024-01-02", resources=resources)
    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()}[
        "transactions_use_known_vocabularies"]
    assert len(snapshot(db)["staging.transactions"]) == 4                  # the AU garden line included

    vocab.write_text("countries = 'US'\n")
    day_file(landing, "2024-01-03")
    result = dg.materialize(ASSETS, partition_key="2024-01-03", resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    assert "vocabularies file unusable, nothing loaded" in str(failure) and "countries must be a list" in str(failure)
    con = warehouse.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM raw.load_audit WHERE partition_date = '2024-01-03'").fetchall() == [(0,)]
    finally:
        con.close()


def test_an_accepted_quarantine_share_passes_for_that_file_only(env, tmp_path, monkeypatch):
    """`clv accept-quarantine`: the day's check passes, its quarantined rows stay quarantined, the downstream
    runs; a new delivery of the day is checked afresh."""
    from clv_platform.lib import quarantine_acceptance

    landing, resources, db = env
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    day_file(landing, "2024-01-02", n_good=20, n_bad=10)
    assert not dg.materialize(ASSETS, partition_key="2024-01-02", resources=resources, raise_on_error=False).success
    con = warehouse.connect(db)
    sha, read, rejected = con.execute("SELECT sha256, rows_read, rows_rejected FROM raw.load_audit").fetchone()
    con.close()
    quarantine_acceptance.accept(tmp_path, "2024-01-02", sha, "transactions_2024-01-02.csv", read, rejected,
                                 "known bad export of the POS migration day")
    assert quarantine_acceptance.load(tmp_path)[0]["reason"] == "known bad export of the POS migration day"
    result = dg.materialize(ASSETS, partition_key="2024-01-02", resources=resources)
    assert result.success and result.asset_materializations_for_node("downstream_of_staging")
    assert len(snapshot(db)["raw.rejected_transactions"]) == 10            # still quarantined, with reasons
    con = warehouse.connect(db)
    assert validation.partitions_not_passed(con) == []
    con.close()

    day_file(landing, "2024-01-02", n_good=21, n_bad=10)                  # another file: checked afresh
    again = dg.materialize(ASSETS, partition_key="2024-01-02", resources=resources, raise_on_error=False)
    assert not again.success
