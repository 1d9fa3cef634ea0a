"""Partition definitions shared by the assets, jobs, sensors and schedules."""

import dagster as dg

from clv_platform.lib.settings import get_settings

# raw/transactions: one partition per landing-file date. end_offset=1 so today's file has a partition.
daily_partitions = dg.DailyPartitionsDefinition(start_date=get_settings().partitions_start, end_offset=1)

# serving/segment_history: monthly as-of snapshots of every customer's scores and segment.
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=get_settings().partitions_start, end_offset=0)
