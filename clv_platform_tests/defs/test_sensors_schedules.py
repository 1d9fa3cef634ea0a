"""landing_files_sensor and daily_ingestion_schedule, evaluated with real contexts on real files;
rescore_after_ingestion_sensor evaluated tick by tick (as the daemon does) over real in-process runs."""

import os
from datetime import datetime

import dagster as dg
import pytest
from dagster._core.definitions.sensor_definition import SensorEvaluationContext
from dagster._core.remote_origin import RegisteredCodeLocationOrigin

from clv_platform.defs.ingestion.assets import (
    INGESTION_KEYS,
    RAW_TRANSACTIONS,
    STAGING_TRANSACTIONS,
    transactions_ingestion,
)
from clv_platform.defs.jobs import ingestion_job
from clv_platform.defs.models.promotion import PROMOTED_TAG
from clv_platform.defs.resources import LandingResource, WarehouseResource
from clv_platform.defs.schedules import daily_ingestion_schedule
from clv_platform.defs.sensors import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    SCORED_BY_CALLER_TAG,
    landing_files_sensor,
    materialized,
    rescore_after_failed_load_sensor,
    rescore_after_ingestion_sensor,
)
from clv_platform.lib import ingest, warehouse
from clv_platform_tests.lib.locks import hold_lock

HEADER = "order_id,line_number,customer_id,order_ts,category,quantity,unit_price,channel,country,original_order_id\n"


def write_day(folder, day, rows=1, price="10.00"):
    lines = [f"O{day}-{i},1,C{i},{day}T10:00:00,books,1,{price},web,US,\n" for i in range(rows)]
    path = folder / f"transactions_{day}.csv"
    path.write_text(HEADER + "".join(lines))
    return path


def tick(landing_dir, cursor=None, database=None):
    database = database or landing_dir / "no_warehouse_yet.duckdb"
    context = dg.build_sensor_context(cursor=cursor, resources={
        "landing": LandingResource(directory=str(landing_dir)), "warehouse": WarehouseResource(database=str(database))})
    return landing_files_sensor(context)


def test_new_file_requests_a_run_and_the_same_file_is_skipped(tmp_path):
    write_day(tmp_path, "2024-03-01")
    first = tick(tmp_path)
    assert [r.partition_key for r in first.run_requests] == ["2024-03-01"]

    second = tick(tmp_path, first.cursor)
    assert not second.run_requests
    assert "no new or changed" in second.skip_reason.skip_message


def test_identical_redelivery_is_skipped_but_changed_content_is_requested(tmp_path):
    path = write_day(tmp_path, "2024-03-01")
    first = tick(tmp_path)
    # Re-delivered with the same bytes (new mtime): not a change.
    os.utime(path, ns=(1, 1))
    path.write_text(path.read_text())
    again = tick(tmp_path, first.cursor)
    assert not again.run_requests
    # Changed content: a new request, with a new run key.
    write_day(tmp_path, "2024-03-01", rows=2)
    changed = tick(tmp_path, again.cursor)
    assert [r.partition_key for r in changed.run_requests] == ["2024-03-01"]
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key


def test_days_the_warehouse_loaded_before_the_sensor_looked_are_not_requested(tmp_path):
    """`clv run` loads every file before the daemon starts: the sensor's first tick (no cursor) requests only
    what the warehouse does not hold; while a run writes the warehouse it skips the tick and keeps its cursor."""
    landing_dir = tmp_path / "landing"
    landing_dir.mkdir()
    for day in ("2024-03-01", "2024-03-02"):
        write_day(landing_dir, day)
    database = tmp_path / "warehouse.duckdb"
    con = warehouse.connect(database)
    for day in ("2024-03-01", "2024-03-02"):
        ingest.load_partition(con, day, landing_dir, now=datetime(2024, 4, 1))
    con.close()
    write_day(landing_dir, "2024-03-02", rows=3)   # changed since it was loaded
    write_day(landing_dir, "2024-03-03")           # never loaded
    first = tick(landing_dir, database=database)
    assert first.run_requests[0].tags[RANGE_START_TAG] == "2024-03-02"
    assert first.run_requests[0].tags[RANGE_END_TAG] == "2024-03-03" and len(first.run_requests) == 1

    with hold_lock(database):
        busy = tick(landing_dir, database=database)
    assert isinstance(busy, dg.SkipReason) and "warehouse is busy" in busy.skip_message   # (cursor kept)


def test_consecutive_days_become_one_ranged_run(tmp_path):
    for day in ("2024-03-01", "2024-03-02", "2024-03-03", "2024-03-07"):
        write_day(tmp_path, day)
    requests = tick(tmp_path).run_requests
    assert len(requests) == 2
    assert requests[0].tags[RANGE_START_TAG] == "2024-03-01"
    assert requests[0].tags[RANGE_END_TAG] == "2024-03-03"
    assert requests[1].partition_key == "2024-03-07"


def test_files_outside_the_partitions_wait_and_load_once_a_partition_exists(tmp_path, monkeypatch):
    from datetime import UTC, timedelta

    from clv_platform.defs import sensors

    write_day(tmp_path, "1999-01-01")  # before CLV_PARTITIONS_START (2020-01-01 by default)
    (tmp_path / "notes.txt").write_text("not a landing file")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    write_day(tmp_path, tomorrow)      # delivered early, by a source ahead of UTC
    result = tick(tmp_path)
    assert not result.run_requests
    message = result.skip_reason.skip_message
    assert "1 landing file(s) dated before the first partition (2020-01-01) wait, first transactions_1999-01-01.csv: " \
           "set CLV_PARTITIONS_START to cover them" in message
    assert f"1 landing file(s) dated after today (UTC) wait, first transactions_{tomorrow}.csv: each loads when " \
           "its day comes" in message
    assert "1 file(s) in the landing folder never load, their names are not landing file names: notes.txt " \
           "(expected transactions_YYYY-MM-DD.csv or .parquet)" in message           # (it used to say nothing)
    again = tick(tmp_path, result.cursor)                       # the next ticks: still waiting, not forgotten
    assert not again.run_requests and "wait" in again.skip_reason.skip_message

    class Tomorrow(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(days=1)

    monkeypatch.setattr(sensors, "datetime", Tomorrow)
    its_day = tick(tmp_path, again.cursor)
    assert [r.partition_key for r in its_day.run_requests] == [tomorrow]


def test_schedule_requests_yesterdays_partition_only_when_its_file_is_there_and_not_loaded(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    database = tmp_path / "warehouse.duckdb"
    resources = {"landing": LandingResource(directory=str(landing)),
                 "warehouse": WarehouseResource(database=str(database))}
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 3, 2, 2, 0), resources=resources)
    skipped = daily_ingestion_schedule(context)
    assert isinstance(skipped, dg.SkipReason) and "2024-03-01" in skipped.skip_message

    write_day(landing, "2024-03-01")
    request = daily_ingestion_schedule(context)
    assert request.partition_key == "2024-03-01"
    # the landing sensor loaded it on arrival: not loaded a second time at 02:00 (nor rescored twice)
    con = warehouse.connect(database)
    ingest.load_partition(con, "2024-03-01", landing)
    con.close()
    loaded = daily_ingestion_schedule(context)
    assert isinstance(loaded, dg.SkipReason) and "is loaded already" in loaded.skip_message
    write_day(landing, "2024-03-01", rows=2)                          # changed since: loaded again
    assert daily_ingestion_schedule(context).partition_key == "2024-03-01"
    with hold_lock(database):                                         # a run writes the warehouse: request anyway
        assert daily_ingestion_schedule(context).partition_key == "2024-03-01"


def test_monthly_history_runs_after_the_nightly_load_of_the_months_last_day():
    from clv_platform.defs.schedules import monthly_segment_history_schedule

    assert monthly_segment_history_schedule.cron_schedule == "0 5 1 * *"


# --- rescore_after_ingestion_sensor -------------------------------------------------------------------------


@dg.asset(key=["serving", "customer_scores"])
def stub_customer_scores() -> None:
    """Stands in for the scoring_job's last asset: a run that materialises something other than staging."""


@dg.asset(key=["models", "clv_model"])
def stub_clv_model() -> None:
    """Stands in for a training_job asset."""


@dg.op
def stub_promotion(context: dg.OpExecutionContext, promote: bool) -> None:
    if promote:
        context.instance.add_run_tags(context.run_id, {PROMOTED_TAG: "clv_model"})


class Rescore:
    """The sensor's ticks on one instance, the cursor kept between them as the daemon keeps it, and seen from
    the sensor's code location as the daemon sees it: a sensor that watches only its code location's runs
    then misses the runs executed in-process (`clv materialize ingest`), which have no code location."""

    def __init__(self, instance: dg.DagsterInstance, sensor=rescore_after_ingestion_sensor, resources=None):
        self.instance, self.cursor, self.sensor, self.resources = instance, None, sensor, resources
        first = self.tick()                                     # (the first tick only sets the cursor)
        assert not first.run_requests and "Initiating" in first.skip_message

    def tick(self):
        context = SensorEvaluationContext(
            instance_ref=None, instance=self.instance, cursor=self.cursor, repository_name="__repository__",
            sensor_name=self.sensor.name, resources=self.resources,
            code_location_origin=RegisteredCodeLocationOrigin("clv_platform.definitions"))
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        return data

    def requests_until_idle(self) -> list[dg.RunRequest]:
        """Every run request of the ticks until one finds no new finished run (as the daemon, tick after tick)."""
        requests = []
        for _ in range(20):
            before = self.cursor
            data = self.tick()
            requests += data.run_requests
            if data.cursor == before:
                return requests
        raise AssertionError("the sensor's cursor never settled")


@pytest.fixture
def ingest_env(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    for day in ("2024-03-01", "2024-03-02", "2024-03-03"):
        write_day(landing, day, rows=2)
    resources = {"warehouse": WarehouseResource(database=str(tmp_path / "warehouse.duckdb")),
                 "landing": LandingResource(directory=str(landing))}
    return dg.Definitions(assets=[transactions_ingestion], jobs=[ingestion_job], resources=resources)


def test_a_ui_backfill_of_the_ingestion_assets_asks_for_one_rescore(ingest_env):
    """The UI's "Materialize" and launchPartitionBackfill run the ingestion assets as __ASSET_JOB, not
    ingestion_job: the sensor must see those runs too, and a ranged run of several days is ONE rescore."""
    instance = dg.DagsterInstance.ephemeral()
    sensor = Rescore(instance)
    asset_job = ingest_env.resolve_implicit_global_asset_job_def()
    assert asset_job.name == "__ASSET_JOB"
    ranged = asset_job.execute_in_process(
        instance=instance, asset_selection=list(INGESTION_KEYS),
        tags={RANGE_START_TAG: "2024-03-01", RANGE_END_TAG: "2024-03-03"})
    assert ranged.success
    assert len(ranged.asset_materializations_for_node("transactions_ingestion")) == 3 * len(INGESTION_KEYS)
    requests = sensor.requests_until_idle()
    assert [r.run_key for r in requests] == [ranged.run_id]
    # (the event log is read a page at a time: staging's events found past the first page of raw's too)
    assert materialized(instance, ranged.run_id, STAGING_TRANSACTIONS, page=2)
    assert materialized(instance, ranged.run_id, RAW_TRANSACTIONS, page=2)
    assert not materialized(instance, ranged.run_id, dg.AssetKey(["serving", "customer_scores"]), page=2)
    assert requests[0].job_name in (None, "scoring_job")

    single = asset_job.execute_in_process(instance=instance, asset_selection=list(INGESTION_KEYS),
                                          partition_key="2024-03-02")
    assert [r.run_key for r in sensor.requests_until_idle()] == [single.run_id]


def test_ingestion_job_runs_still_ask_for_a_rescore(ingest_env):
    instance = dg.DagsterInstance.ephemeral()
    sensor = Rescore(instance)
    run = ingest_env.resolve_job_def("ingestion_job").execute_in_process(instance=instance, partition_key="2024-03-01")
    assert run.success
    assert [r.run_key for r in sensor.requests_until_idle()] == [run.run_id]


def test_a_load_by_the_clv_command_asks_for_a_rescore_unless_its_caller_scores_next(ingest_env, tmp_path,
                                                                                    monkeypatch):
    """`clv materialize ingest` runs the job in its own process against the daemon's instance: the sensor
    rescores after it as after a daemon run. `clv run` scores right after its load: no second scoring."""
    from clv_platform import orchestrate

    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setattr(orchestrate, "definitions", lambda: ingest_env)
    monkeypatch.setattr(orchestrate, "wait_for_warehouse", lambda echo: None)
    with dg.DagsterInstance.get() as instance:
        sensor = Rescore(instance)
        by_hand = orchestrate.ingest_range(datetime(2024, 3, 1).date(), datetime(2024, 3, 2).date())
        assert by_hand.dagster_run.remote_job_origin is None              # no code location: in-process
        assert [r.run_key for r in sensor.requests_until_idle()] == [by_hand.run_id]
        followed = orchestrate.ingest_range(datetime(2024, 3, 3).date(), datetime(2024, 3, 3).date(),
                                            tags={SCORED_BY_CALLER_TAG: "clv run"})
        assert followed.success
        before = sensor.cursor
        assert sensor.requests_until_idle() == []
        assert sensor.cursor != before                                # seen, passed over


def test_scoring_and_training_runs_do_not_ask_for_a_rescore():
    """Scoring runs (the sensor's own) and training runs load no transactions: passed over, the cursor moves on."""
    instance = dg.DagsterInstance.ephemeral()
    sensor = Rescore(instance)
    defs = dg.Definitions(assets=[stub_customer_scores, stub_clv_model], jobs=[
        dg.define_asset_job("scoring_job", selection=[stub_customer_scores]),
        dg.define_asset_job("training_job", selection=[stub_clv_model])])
    for name in ("scoring_job", "training_job"):
        result = defs.resolve_job_def(name).execute_in_process(instance=instance)
        assert result.success and result.get_asset_materialization_events()
        context = dg.build_run_status_sensor_context(
            sensor_name=rescore_after_ingestion_sensor.name, dagster_event=result.get_run_success_event(),
            dagster_instance=instance, dagster_run=instance.get_run_by_id(result.run_id))
        assert rescore_after_ingestion_sensor(context) is None
    before = sensor.cursor
    assert sensor.requests_until_idle() == []
    assert sensor.cursor != before                                  # both runs were seen, neither requested


def test_a_promotion_asks_for_a_rescore_only_when_it_promoted():
    instance = dg.DagsterInstance.ephemeral()
    sensor = Rescore(instance)

    @dg.job(name="promotion_job")
    def promotion_job():
        stub_promotion()

    promotion_job.execute_in_process(
        instance=instance, run_config={"ops": {"stub_promotion": {"inputs": {"promote": False}}}})
    assert sensor.requests_until_idle() == []
    promoted = promotion_job.execute_in_process(
        instance=instance, run_config={"ops": {"stub_promotion": {"inputs": {"promote": True}}}})
    assert [r.run_key for r in sensor.requests_until_idle()] == [promoted.run_id]


def test_a_refused_promotion_next_to_other_runs_in_one_tick_does_not_break_the_sensor(ingest_env):
    """The weekly retrain: a training run, then its gated promotion that refuses, seen in ONE tick with other
    finished runs. A SkipReason there next to the None of the other runs made Dagster fail every later tick."""
    instance = dg.DagsterInstance.ephemeral()
    sensor = Rescore(instance)

    @dg.job(name="promotion_job")
    def promotion_job():
        stub_promotion()

    scoring = dg.Definitions(assets=[stub_customer_scores], jobs=[
        dg.define_asset_job("scoring_job", selection=[stub_customer_scores])]).resolve_job_def("scoring_job")
    scoring.execute_in_process(instance=instance)
    promotion_job.execute_in_process(
        instance=instance, run_config={"ops": {"stub_promotion": {"inputs": {"promote": False}}}})
    scoring.execute_in_process(instance=instance)
    data = sensor.tick()                                            # (raised CheckError before)
    assert not data.run_requests
    run = ingest_env.resolve_job_def("ingestion_job").execute_in_process(instance=instance, partition_key="2024-03-01")
    assert [r.run_key for r in sensor.requests_until_idle()] == [run.run_id]    # later loads still rescored


def test_runs_missed_while_the_daemon_was_down_ask_for_one_rescore(ingest_env):
    """With the daemon down, loads were followed by `clv materialize score` (or by more loads). On restart the
    sensor launched one scoring run per missed load: identical snapshots that pushed the earlier, different ones
    out of the kept few. A load a later scoring run, or a later load, covers asks for nothing."""
    instance = dg.DagsterInstance.ephemeral()
    sensor = Rescore(instance)
    job = ingest_env.resolve_job_def("ingestion_job")
    scoring = dg.Definitions(assets=[stub_customer_scores], jobs=[
        dg.define_asset_job("scoring_job", selection=[stub_customer_scores])]).resolve_job_def("scoring_job")
    first = job.execute_in_process(instance=instance, partition_key="2024-03-01")
    assert scoring.execute_in_process(instance=instance).success            # scored by hand after it
    job.execute_in_process(instance=instance, partition_key="2024-03-02")   # covered by the next load
    last = job.execute_in_process(instance=instance, partition_key="2024-03-03")
    assert first.success and last.success
    assert [r.run_key for r in sensor.requests_until_idle()] == [last.run_id]


def test_a_load_run_that_failed_on_one_file_rescores_the_days_it_loaded(ingest_env, tmp_path):
    """A ranged run fails when one file is refused whole, yet loads and checks the others: those days are
    rescored (rescore_after_failed_load_sensor), unless a loaded day fails its checks (scoring would refuse)."""
    instance = dg.DagsterInstance.ephemeral()
    resources = {"warehouse": WarehouseResource(database=str(tmp_path / "warehouse.duckdb"))}
    on_failure = Rescore(instance, rescore_after_failed_load_sensor, resources)
    on_success = Rescore(instance)
    (tmp_path / "landing" / "transactions_2024-03-03.csv").write_text("order_id;line_number\n")   # refused whole
    job = ingest_env.resolve_job_def("ingestion_job")
    tags = {RANGE_START_TAG: "2024-03-01", RANGE_END_TAG: "2024-03-03"}
    failed = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    assert not failed.success
    assert on_success.requests_until_idle() == []
    assert [r.run_key for r in on_failure.requests_until_idle()] == [failed.run_id]

    write_day(tmp_path / "landing", "2024-03-02", rows=30, price="x")                 # a day failing its checks
    again = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    assert not again.success and on_failure.requests_until_idle() == []
    (tmp_path / "landing" / "transactions_2024-03-03.csv").unlink()
    (tmp_path / "landing" / "transactions_2024-03-02.csv").unlink()
    ok = job.execute_in_process(instance=instance, partition_key="2024-03-01")
    assert ok.success and on_failure.requests_until_idle() == []                     # successes: the other sensor
