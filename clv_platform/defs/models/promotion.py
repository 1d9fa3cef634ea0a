"""promotion_job: the gated promotion of `clv promote clv|segment`, for both registered models, as a Dagster job,
so weekly retraining can reach production without a person (promote_after_training_sensor, stopped by default).
A refused promotion is the gate working, not a failure: the run succeeds and its log and metadata say why."""

import dagster as dg

from clv_platform.defs.jobs import QUIET_LOGS
from clv_platform.defs.resources import MlflowResource
from clv_platform.lib import registry

PROMOTED_TAG = "clv/promoted"  # run tag: the models this promotion run moved to production (comma-separated)


@dg.op(description="Move `production` to `staging` for each model that is at least as good on its held-out metric.")
def promote_staging_models(context: dg.OpExecutionContext, mlflow: MlflowResource) -> dg.Output:
    promoted, outcomes = [], {}
    for spec in registry.MODELS.values():
        try:
            result = registry.promote_spec(spec, tracking_uri=mlflow.tracking_uri)
        except registry.RegistryError as exc:  # e.g. no staging version yet: nothing to decide
            context.log.warning(f"{spec.name}: {exc}")
            outcomes[spec.name] = str(exc)
            continue
        (context.log.info if result.promoted else context.log.warning)(result.message)
        outcomes[spec.name] = result.message
        if result.promoted:
            promoted.append(spec.name)
    if promoted:
        context.instance.add_run_tags(context.run_id, {PROMOTED_TAG: ",".join(promoted)})
    return dg.Output(promoted, metadata={"promoted": dg.MetadataValue.json(promoted),
                                         "outcomes": dg.MetadataValue.json(outcomes)})


@dg.job(description="Gated promotion of the `staging` CLV and segment models (as `clv promote`, without --force).",
        config=QUIET_LOGS)
def promotion_job():
    promote_staging_models()
