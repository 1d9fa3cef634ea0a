"""Jobs: ingestion (daily partitions), training (models), scoring (publish the serving snapshot), history."""

import warnings

import dagster as dg

# (dagster-mlflow marks the hook's factory beta and warns as it is imported; the hook is what we want)
warnings.filterwarnings("ignore", message="Function `_create_mlflow_run_hook` is currently in beta",
                        category=dg.BetaWarning)
from dagster_mlflow import end_mlflow_on_run_finished  # noqa: E402

from clv_platform.defs.partitions import daily_partitions, monthly_partitions  # noqa: E402

# Console logs at INFO: the step-by-step DEBUG events stay in the Dagster UI.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
# Backstop for MLflow runs: ends any run still open when a job's steps are done (our resource ends its own).
MLFLOW_HOOKS = {end_mlflow_on_run_finished}

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.groups("ingestion"),
    partitions_def=daily_partitions,
    config=QUIET_LOGS,
    description="Load landing files into raw/staging, one daily partition each (ranges run as one run).",
)

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("features", "btyd", "models"),
    config=QUIET_LOGS,
    hooks=MLFLOW_HOOKS,
    description="Features as of the latest day, BTYD fits, CLV and segment models (registered as `staging`).",
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.groups("features", "btyd")
    | dg.AssetSelection.assets(dg.AssetKey(["serving", "customer_scores"])),
    # Rescoring refits BTYD on the latest day; the Pareto/NBD comparison and plots belong to training runs.
    config={**QUIET_LOGS, "ops": {"models__bgnbd": {"config": {"compare_pareto": False, "diagnostics": False}}}},
    hooks=MLFLOW_HOOKS,
    description="Score every customer with the `production` models and publish the serving snapshot.",
)

segment_history_job = dg.define_asset_job(
    "segment_history_job",
    selection=dg.AssetSelection.assets(dg.AssetKey(["serving", "segment_history"])),
    partitions_def=monthly_partitions,
    config=QUIET_LOGS,
    hooks=MLFLOW_HOOKS,
    description="Month-end as-of scores and segments for every customer (backfillable history).",
)
