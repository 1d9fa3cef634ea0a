"""Jobs: ingestion (daily partitions), training (models), scoring (publish the serving snapshot)."""

import dagster as dg

from clv_platform.defs.partitions import daily_partitions, monthly_partitions

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.groups("ingestion"),
    partitions_def=daily_partitions,
    description="Load landing files into raw/staging, one daily partition each (ranges run as one run).",
)

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("features", "btyd", "models"),
    description="Features as of the latest day, BTYD fits, CLV and segment models (registered as `staging`).",
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.groups("features", "btyd")
    | dg.AssetSelection.assets(dg.AssetKey(["serving", "customer_scores"])),
    description="Score every customer with the `production` models and publish the serving snapshot.",
)

segment_history_job = dg.define_asset_job(
    "segment_history_job",
    selection=dg.AssetSelection.assets(dg.AssetKey(["serving", "segment_history"])),
    partitions_def=monthly_partitions,
    description="Month-end as-of scores and segments for every customer (backfillable history).",
)
