"""Schedules: yesterday's partition every night, and a weekly retrain."""

from datetime import timedelta

import dagster as dg

from clv_platform.defs.jobs import ingestion_job, segment_history_job, training_job
from clv_platform.defs.resources import LandingResource


@dg.schedule(cron_schedule="0 2 * * *", job=ingestion_job, default_status=dg.DefaultScheduleStatus.STOPPED)
def daily_ingestion_schedule(context: dg.ScheduleEvaluationContext, landing: LandingResource):
    """Materialise yesterday's partition at 02:00 (the sensor covers files that arrive late or change)."""
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    if not any(landing.path.glob(f"transactions_{day}.*")):
        return dg.SkipReason(f"no landing file for {day} in {landing.path}")
    return dg.RunRequest(run_key=f"daily:{day}", partition_key=day)


weekly_training_schedule = dg.ScheduleDefinition(
    name="weekly_training_schedule",
    job=training_job,
    cron_schedule="0 4 * * 1",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain BTYD, CLV and segment models every Monday; promotion stays a deliberate step.",
)

monthly_segment_history_schedule = dg.build_schedule_from_partitioned_job(
    segment_history_job,
    name="monthly_segment_history_schedule",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
