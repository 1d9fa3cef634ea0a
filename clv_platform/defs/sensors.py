"""Sensors: landing files -> ingestion runs; finished training -> gated promotion; any run that loaded
staging/transactions (ingestion_job, a UI backfill) or a promotion that promoted -> rescoring."""

from datetime import UTC, datetime

import dagster as dg

from clv_platform.defs.ingestion.assets import STAGING_TRANSACTIONS
from clv_platform.defs.jobs import ingestion_job, scoring_job
from clv_platform.defs.models.promotion import PROMOTED_TAG, promotion_job
from clv_platform.defs.partitions import daily_partitions
from clv_platform.defs.resources import LandingResource, WarehouseResource
from clv_platform.lib import ingest, validation
from clv_platform.lib import warehouse as lib_warehouse
from clv_platform.lib.landing import (
    changed_files,
    contiguous_ranges,
    forget,
    misnamed_files,
    name_list,
    outside_partitions,
)
from clv_platform.lib.warehouse import WarehouseBusyError

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# On a load whose caller scores right after it (`clv run`): the rescore sensor passes it over.
SCORED_BY_CALLER_TAG = "clv/scored_by_caller"


def partition_run_request(start: str, end: str, run_key: str) -> dg.RunRequest:
    """One run per contiguous range of days: a single partition, or a single-run ranged backfill."""
    if start == end:
        return dg.RunRequest(run_key=run_key, partition_key=start)
    return dg.RunRequest(run_key=run_key, tags={RANGE_START_TAG: start, RANGE_END_TAG: end})


@dg.sensor(job=ingestion_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_files_sensor(
    context: dg.SensorEvaluationContext, landing: LandingResource, warehouse: WarehouseResource
):
    """Requests ingestion for landing files that are new or whose content changed (cursor: size, mtime, sha256).
    A file new to the cursor whose content the warehouse already loaded (`clv run` before the daemon started)
    is not requested again."""
    try:
        changed, cursor = changed_files(landing.path, context.cursor,
                                        loaded=lambda: ingest.read_loaded_files(warehouse.database))
    except WarehouseBusyError:
        return dg.SkipReason("the warehouse is busy (a run is writing it): looking again next tick")
    early, future = outside_partitions(changed, daily_partitions.start.date(), datetime.now(UTC).date())
    days = [f.day for f in changed if f not in early and f not in future]
    # Files no partition loads yet stay out of the cursor: new to every tick, so a file delivered early (a source
    # ahead of UTC) loads once its day comes, and an older one once CLV_PARTITIONS_START covers it.
    cursor = forget(cursor, [f.path.name for f in early + future])
    waiting = " ".join(
        f"{len(files)} landing file(s) dated {where} wait, first {files[0].path.name}: {what}."
        for files, where, what in (
            (early, f"before the first partition ({daily_partitions.start.date()})",
             "set CLV_PARTITIONS_START to cover them"),
            (future, "after today (UTC)", "each loads when its day comes"))
        if files)
    misnamed = misnamed_files(landing.path)         # (`clv status` names them too)
    if misnamed:
        waiting += (f"{' ' if waiting else ''}{len(misnamed)} file(s) in the landing folder never load, their names "
                    f"are not landing file names: {name_list(misnamed)} (expected transactions_YYYY-MM-DD.csv or "
                    ".parquet).")
    requests = [
        partition_run_request(start.isoformat(), end.isoformat(), run_key=f"{start}:{end}:{cursor_digest(cursor)}")
        for start, end in contiguous_ranges(days)
    ]
    if not requests:
        return dg.SensorResult(skip_reason=" ".join(["no new or changed landing files.", waiting]).strip(),
                               cursor=cursor)
    if waiting:
        context.log.warning(waiting)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def cursor_digest(cursor: str) -> str:
    import hashlib

    return hashlib.sha256(cursor.encode()).hexdigest()[:12]


def materialized(instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey, page: int = 1000) -> bool:
    """Whether the run's event log holds a materialization of `key` (any partition). Newest first, a page at a
    time: an ingestion run reports staging/transactions last, so even a ranged run of years stops at page one."""
    cursor = None
    while True:
        found = instance.get_records_for_run(run_id, cursor=cursor, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                                             limit=page, ascending=False)
        if any(record.asset_key == key for record in found.records):
            return True
        if not found.has_more:
            return False
        cursor = found.cursor


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    # Every run, not [ingestion_job, ...]: a backfill or "Materialize" of the ingestion assets in the UI runs as
    # __ASSET_JOB, and a `clv materialize ingest` run executes in the clv process, with no code location of its
    # own (a sensor that monitors only its code location's runs never sees it). The body decides from what the
    # run did.
    monitor_all_code_locations=True,
    request_job=scoring_job,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def rescore_after_ingestion_sensor(context: dg.RunStatusSensorContext):
    """After new transactions are in, or new production models, rescore every customer: one scoring run for
    each successful run that materialised staging/transactions, whatever started it (the landing sensor or the
    schedule, a backfill or "Materialize" in the UI, `clv materialize ingest`; a ranged run of any length is
    one run), and for each promotion_job run that promoted a model. Other runs (scoring, training, history)
    are passed over, and so are loads whose caller scores next itself (`clv run`).

    (A run status sensor instead of eager automation: eager() never fires below a long daily history.)
    Stopped by default: it needs promoted production models; turn it on after the first `make run`.
    """
    # Every run passed over returns None, never a SkipReason: a tick over several finished runs may not mix
    # the two (Dagster then fails every tick from that cursor on), and None lets it go on to the next run.
    run = context.dagster_run
    if run.job_name == promotion_job.name:
        if not run.tags.get(PROMOTED_TAG):
            context.log.info(f"promotion run {run.run_id[:8]} promoted nothing: production models unchanged")
            return None
    elif run.tags.get(SCORED_BY_CALLER_TAG):
        context.log.info(f"run {run.run_id[:8]} is followed by its caller's own scoring run: no rescore")
        return None
    elif not materialized(context.instance, run.run_id, STAGING_TRANSACTIONS):
        return None
    if covered_by := rescored_since(context.instance, run.run_id):
        context.log.info(f"run {run.run_id[:8]} is covered by a later run already: {covered_by}; no rescore")
        return None
    return dg.RunRequest(run_key=run.run_id)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.FAILURE,
    monitor_all_code_locations=True,      # (as rescore_after_ingestion_sensor: runs of any origin)
    request_job=scoring_job,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def rescore_after_failed_load_sensor(context: dg.RunStatusSensorContext, warehouse: WarehouseResource):
    """rescore_after_ingestion_sensor's twin for a load run that failed after loading some of its days: a ranged
    run fails when one of its files is refused whole, yet loads and validates the others, and those days would
    wait unscored for the next successful load. Rescore after such a run when every loaded day passes its
    blocking checks (scoring refuses otherwise; the load that fixes the day then rescores). Switch it on with
    rescore_after_ingestion_sensor."""
    run = context.dagster_run
    if not materialized(context.instance, run.run_id, STAGING_TRANSACTIONS):
        return None                                       # nothing loaded (or not a load run)
    if covered_by := rescored_since(context.instance, run.run_id):
        context.log.info(f"failed run {run.run_id[:8]} is covered by a later run already: {covered_by}")
        return None
    try:
        con = lib_warehouse.connect(warehouse.database, read_only=True, wait_seconds=30)
    except WarehouseBusyError:
        context.log.warning(f"failed run {run.run_id[:8]} loaded days, but the warehouse stayed busy: not "
                            "rescored (the next successful load rescores them; or `clv materialize score`)")
        return None
    try:
        failing = validation.partitions_not_passed(con)
    finally:
        con.close()
    if failing:
        context.log.info(f"failed run {run.run_id[:8]} loaded days, but {validation.name_days(failing, 3)} "
                         "fail(s) the blocking checks: no rescore until that is fixed (its load rescores)")
        return None
    return dg.RunRequest(run_key=run.run_id)


IN_PROGRESS_OR_QUEUED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                         dg.DagsterRunStatus.STARTED]


def rescored_since(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """What already rescores what run `run_id` changed, if anything: a scoring run created after it ended
    (succeeded, or still to run), or a later successful load (its own rescore covers both). After the daemon
    was down, the sensor works through the runs it missed: without this, each got a scoring run of its own,
    identical snapshots that pushed the earlier, different ones out of the kept few."""
    record = instance.get_run_record_by_id(run_id)
    if record is None or record.end_time is None:
        return None
    ended = datetime.fromtimestamp(record.end_time, UTC)
    scoring = instance.get_runs(filters=dg.RunsFilter(
        job_name=scoring_job.name, created_after=ended, statuses=[dg.DagsterRunStatus.SUCCESS, *IN_PROGRESS_OR_QUEUED]),
        limit=1)
    if scoring:
        return f"scoring run {scoring[0].run_id[:8]}"
    for later in instance.get_runs(filters=dg.RunsFilter(
            job_name=ingestion_job.name, created_after=ended, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=5):
        if not later.tags.get(SCORED_BY_CALLER_TAG) and materialized(instance, later.run_id, STAGING_TRANSACTIONS):
            return f"load run {later.run_id[:8]}, rescored after it"
    return None



TRAINED_MODELS = (dg.AssetKey(["models", "clv_model"]), dg.AssetKey(["models", "segment_model"]))


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitor_all_code_locations=True,
    request_job=promotion_job,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def promote_after_training_sensor(context: dg.RunStatusSensorContext):
    """After each successful run that trained a model (training_job, the weekly schedule, or "Materialize" of
    the model assets in the UI, which runs as __ASSET_JOB), the gated promotion: `production` moves only to a
    model at least as good (as `clv promote`). Stopped by default: promotion stays a deliberate step until you
    switch it on. Other runs are passed over (None, as in rescore_after_ingestion_sensor)."""
    run = context.dagster_run
    if run.job_name == promotion_job.name or not any(
            materialized(context.instance, run.run_id, key) for key in TRAINED_MODELS):
        return None
    return dg.RunRequest(run_key=run.run_id)
