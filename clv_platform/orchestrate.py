"""Run the Dagster jobs from the command line against the real instance (runs show up in the UI).

Used by `clv run` (the whole pipeline, `make run`) and `clv materialize <stage>`.
"""

import os
from datetime import date
from functools import cache
from pathlib import Path

import dagster as dg

from clv_platform.lib.landing import list_landing_files
from clv_platform.lib.settings import get_settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


@cache
def definitions() -> dg.Definitions:
    from clv_platform.definitions import defs

    return defs()


def instance() -> dg.DagsterInstance:
    """The persistent instance at $DAGSTER_HOME (the Makefile sets it); ephemeral when it is unset."""
    if os.environ.get("DAGSTER_HOME"):
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


class JobFailed(RuntimeError):
    pass


def run_job(name: str, tags: dict | None = None, partition_key: str | None = None) -> dg.ExecuteInProcessResult:
    """Execute a job in this process; on failure raise with the failing steps' error messages."""
    job = definitions().resolve_job_def(name)
    result = job.execute_in_process(
        instance=instance(), tags=tags or {}, partition_key=partition_key, raise_on_error=False
    )
    if not result.success:
        errors = [
            f"{event.step_key}: {event.event_specific_data.error.message.strip()}"
            for event in result.all_events
            if event.is_step_failure and event.event_specific_data and event.event_specific_data.error
        ]
        raise JobFailed(f"{name} failed (run {result.run_id}):\n  " + "\n  ".join(errors or ["see the Dagster UI"]))
    return result


def landing_range(landing_dir: Path) -> tuple[date, date] | None:
    days = [landing_file.day for landing_file in list_landing_files(landing_dir)]
    return (min(days), max(days)) if days else None


def ingest_range(start: date, end: date) -> dg.ExecuteInProcessResult:
    """All partitions start..end as ONE run (the assets' BackfillPolicy.single_run())."""
    if start == end:
        return run_job("ingestion_job", partition_key=start.isoformat())
    return run_job("ingestion_job", tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()})


def ingest_landing() -> tuple[date, date]:
    days = landing_range(get_settings().landing_dir)
    if days is None:
        raise JobFailed(f"no landing files in {get_settings().landing_dir}: run `clv generate` or `clv import-cdnow`")
    ingest_range(*days)
    return days
