"""Sensors: landing files -> ingestion runs; finished ingestion -> rescoring."""

import dagster as dg

from clv_platform.defs.jobs import ingestion_job, scoring_job
from clv_platform.defs.partitions import daily_partitions
from clv_platform.defs.resources import LandingResource
from clv_platform.lib.landing import changed_files, contiguous_ranges

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def partition_run_request(start: str, end: str, run_key: str) -> dg.RunRequest:
    """One run per contiguous range of days: a single partition, or a single-run ranged backfill."""
    if start == end:
        return dg.RunRequest(run_key=run_key, partition_key=start)
    return dg.RunRequest(run_key=run_key, tags={RANGE_START_TAG: start, RANGE_END_TAG: end})


@dg.sensor(job=ingestion_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_files_sensor(context: dg.SensorEvaluationContext, landing: LandingResource):
    """Requests ingestion for landing files that are new or whose content changed (cursor: size, mtime, sha256)."""
    changed, cursor = changed_files(landing.path, context.cursor)
    valid_keys = set(daily_partitions.get_partition_keys(dynamic_partitions_store=None))
    days, outside = [], []
    for landing_file in changed:
        key = landing_file.day.isoformat()
        (days if key in valid_keys else outside).append(landing_file.day)
    if outside:
        context.log.warning(
            f"{len(outside)} landing file(s) dated outside the partitions "
            f"({daily_partitions.start.date()}..today), ignored: first {min(outside)}; "
            "set CLV_PARTITIONS_START to cover them"
        )
    requests = [
        partition_run_request(start.isoformat(), end.isoformat(), run_key=f"{start}:{end}:{cursor_digest(cursor)}")
        for start, end in contiguous_ranges(days)
    ]
    if not requests:
        return dg.SensorResult(skip_reason="no new or changed landing files", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def cursor_digest(cursor: str) -> str:
    import hashlib

    return hashlib.sha256(cursor.encode()).hexdigest()[:12]


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[ingestion_job],
    request_job=scoring_job,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def rescore_after_ingestion_sensor(context: dg.RunStatusSensorContext):
    """After new transactions are in, rescore every customer with the production models.

    (An asset sensor instead of eager automation: eager() never fires below a long daily history.)
    Stopped by default: it needs promoted production models; turn it on after the first `make run`.
    """
    return dg.RunRequest(run_key=context.dagster_run.run_id)
