"""Schedules: yesterday's partition every night, and a weekly retrain."""

from datetime import timedelta

import dagster as dg

from clv_platform.defs.jobs import ingestion_job, segment_history_job, training_job
from clv_platform.defs.resources import LandingResource, WarehouseResource
from clv_platform.lib import ingest
from clv_platform.lib.landing import sha256_of
from clv_platform.lib.warehouse import WarehouseBusyError


@dg.schedule(cron_schedule="0 2 * * *", job=ingestion_job, default_status=dg.DefaultScheduleStatus.STOPPED)
def daily_ingestion_schedule(context: dg.ScheduleEvaluationContext, landing: LandingResource,
                             warehouse: WarehouseResource):
    """Materialise yesterday's partition at 02:00 (the sensor covers files that arrive late or change), unless
    the warehouse already holds that very file (the landing sensor loaded it on arrival)."""
    day = (context.scheduled_execution_time - timedelta(days=1)).date()
    files = sorted(landing.path.glob(f"transactions_{day}.*"))
    if not files:
        return dg.SkipReason(f"no landing file for {day} in {landing.path}")
    try:
        held = ingest.read_loaded_files(warehouse.database).get(day)
    except WarehouseBusyError:
        held = None                     # a run writes it: request anyway (a reload of the same file changes nothing)
    if len(files) == 1 and held == sha256_of(files[0]):
        return dg.SkipReason(f"{files[0].name} is loaded already (by the landing sensor, unchanged)")
    return dg.RunRequest(run_key=f"daily:{day}", partition_key=day.isoformat())


weekly_training_schedule = dg.ScheduleDefinition(
    name="weekly_training_schedule",
    job=training_job,
    cron_schedule="0 4 * * 1",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=("Retrain BTYD, CLV and segment models every Monday. The new versions get alias staging; they go to "
                 "production through the gate when promote_after_training_sensor is on, else by `clv promote`."),
)

monthly_segment_history_schedule = dg.build_schedule_from_partitioned_job(
    segment_history_job,
    name="monthly_segment_history_schedule",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    hour_of_day=5,      # after daily_ingestion_schedule (02:00) has loaded the month's last day
)
