"""serving/customer_scores (+ the snapshot publish) and serving/segment_history (monthly, backfillable).

Thin: the work is in lib/scoring.py, lib/registry.py and lib/snapshot.py.
"""

import dagster as dg
import pandas as pd

from clv_platform.defs.partitions import monthly_partitions
from clv_platform.defs.resources import MlflowResource, WarehouseResource
from clv_platform.defs.validation.checks import require_passed_checks
from clv_platform.lib import btyd, features, registry, scoring, snapshot
from clv_platform.lib.metrics import PSI_LARGE, PSI_METRIC_PREFIX, PSI_MODERATE
from clv_platform.lib.settings import get_settings

CLV = registry.MODELS["clv"]
SEGMENT = registry.MODELS["segment"]

FEATURES = dg.AssetKey(["features", "customer_features"])
BTYD_PREDICTIONS = dg.AssetKey(["features", "btyd_predictions"])
CLV_MODEL = dg.AssetKey(["models", "clv_model"])
SEGMENT_MODEL = dg.AssetKey(["models", "segment_model"])
TRANSACTIONS = dg.AssetKey(["staging", "transactions"])
SEGMENT_HISTORY = dg.AssetKey(["serving", "segment_history"])


class ServingConfig(dg.Config):
    snapshot_root: str = ""  # default: get_settings().snapshot_root (CLV_DATA_DIR/serving)
    keep_snapshots: int = 0   # default: get_settings().snapshots_kept (CLV_SNAPSHOTS_KEPT, 5)


def _production_models(mlflow: MlflowResource):
    try:
        clv = registry.load(CLV.name, registry.PRODUCTION, tracking_uri=mlflow.tracking_uri)
        seg = registry.load(SEGMENT.name, registry.PRODUCTION, tracking_uri=mlflow.tracking_uri)
    except registry.RegistryError as exc:
        untrained = [spec.name for spec in (CLV, SEGMENT)
                     if not registry.status(spec.name, tracking_uri=mlflow.tracking_uri)["registered"]]
        if untrained:
            raise dg.Failure(description=f"no {' or '.join(untrained)} trained yet: train first (training_job, "
                             "`clv materialize train`), then promote (`clv promote clv`, `clv promote segment`)"
                             ) from None
        raise dg.Failure(
            description=f"{exc}. Promote models first: `clv promote clv` and `clv promote segment`."
        ) from None
    return clv, seg


STABILITY_CHECK = "customer_scores_distributions_are_stable"


def _stability_check(drift: dict[str, float], previous) -> dg.AssetCheckResult:
    """WARN (not blocking: a new model or a real change in customers moves scores too) when a score's
    distribution moved by more than a large shift (PSI > 0.25) since the previous scoring."""
    if not drift:
        return dg.AssetCheckResult(check_name=STABILITY_CHECK, passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   description="first scoring: nothing to compare with",
                                   metadata={"previous_customers": 0 if previous is None else len(previous)})
    moved = {k: v for k, v in drift.items() if v > PSI_LARGE}
    return dg.AssetCheckResult(
        check_name=STABILITY_CHECK, passed=not moved, severity=dg.AssetCheckSeverity.WARN,
        description=(f"large shift since the previous scoring (PSI > {PSI_LARGE}): "
                     + ", ".join(f"{k} {v:.3f}" for k, v in moved.items())) if moved else None,
        metadata={"psi": dg.MetadataValue.json(drift), "previous_customers": len(previous),
                  "reading": f"PSI < {PSI_MODERATE} stable, up to {PSI_LARGE} moderate, above large"},
    )


@dg.asset(
    key=["serving", "customer_scores"],
    group_name="serving",
    check_specs=[dg.AssetCheckSpec(
        STABILITY_CHECK, asset=["serving", "customer_scores"],
        description="Scores' distributions (predicted CLV, P(alive), expected purchases, BTYD CLV, segment shares) "
                    f"moved little since the previous scoring: PSI <= {PSI_LARGE} each (warning only).")],
    deps=[FEATURES, BTYD_PREDICTIONS, CLV_MODEL, SEGMENT_MODEL, SEGMENT_HISTORY],
    kinds={"duckdb", "mlflow", "parquet"},
    description=(
        "Every customer scored as of the latest day with the `production` CLV and segment models "
        "(serving.customer_scores), then published as the serving snapshot (Parquet + manifest, atomic swap)."
    ),
)
def customer_scores(
    context: dg.AssetExecutionContext,
    config: ServingConfig,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    keep = config.keep_snapshots or get_settings().snapshots_kept     # a bad CLV_SNAPSHOTS_KEPT fails here, not last
    clv, seg = _production_models(mlflow)
    model_info = {
        CLV.name: registry.version_info(CLV.name, tracking_uri=mlflow.tracking_uri),
        SEGMENT.name: registry.version_info(SEGMENT.name, tracking_uri=mlflow.tracking_uri),
    }
    with warehouse.connect() as con:
        as_of, frame = scoring.scoring_inputs(con)
        scores = scoring.score(frame, clv, seg, as_of, clv.version, seg.version)
        previous = scoring.previous_scores(con)
        root = config.snapshot_root or str(get_settings().snapshot_root)
        served = scoring.published_scores(root)
        drift = scoring.score_drift(served if served is not None else previous, scores)
        earlier = [previous, scoring.history_rows(con, "customer_id, as_of_date, segment_name")]
        earlier = [e for e in earlier if e is not None and len(e)]
        scores = scoring.with_segment_since(scores, pd.concat(earlier, ignore_index=True) if earlier else None)
        scoring.write_scores(con, scores)
        tables = scoring.snapshot_tables(con, scores, scoring.model_metrics_table(model_info))
        validated = scoring.validated_partitions(con)

    summary = tables["segment_summary"]
    metrics = {
        "customers": len(scores),
        "total_predicted_clv": float(scores["predicted_clv"].sum()),
        "mean_predicted_clv": float(scores["predicted_clv"].mean()),
        "total_btyd_clv": float(scores["btyd_clv"].sum()),
        "mean_p_alive": float(scores["p_alive"].mean()),
        "segments": len(summary),
    }
    metrics.update({PSI_METRIC_PREFIX + name: value for name, value in drift.items()})
    for model, info in model_info.items():
        for name in (CLV.metric, SEGMENT.metric):
            if info and name in info["metrics"]:
                metrics[f"{model}.{name}"] = info["metrics"][name]
    manifest = {
        "as_of_date": as_of.isoformat(),
        "model_versions": {CLV.name: clv.version, SEGMENT.name: seg.version},
        "metrics": metrics,
        "dagster_run_id": context.run_id,
        # predicted_clv = spend expected over the CLV model's horizon after as_of_date (undiscounted)
        "clv_horizon_days": getattr(clv.native, "horizon_days", None),
        # btyd_clv = BTYD spend over this horizon, discounted (scoring's btyd.predict defaults)
        "btyd_clv_horizon_days": btyd.CLV_HORIZON_DAYS,
        "btyd_clv_discount_rate_annual": btyd.CLV_DISCOUNT_RATE_ANNUAL,
        "data_quality": {"days": scoring.DQ_DAYS, "partitions_validated": validated},
    }
    path = snapshot.publish(root, tables, manifest, keep=keep)

    with mlflow.start_run(context, run_name="score", tags={"snapshot_id": path.name}):
        import mlflow as mlf

        mlf.log_params({"as_of_date": as_of.isoformat(), "clv_model_version": clv.version,
                        "segment_model_version": seg.version, "snapshot_id": path.name})
        mlf.log_metrics({k: float(v) for k, v in metrics.items()})

    return dg.MaterializeResult(
        check_results=[_stability_check(drift, previous)],
        metadata={
            "customers": dg.MetadataValue.int(len(scores)),
            "as_of": dg.MetadataValue.text(as_of.isoformat()),
            "snapshot_id": dg.MetadataValue.text(path.name),
            "snapshot_path": dg.MetadataValue.path(str(path)),
            "model_versions": dg.MetadataValue.json(manifest["model_versions"]),
            "total_predicted_clv": dg.MetadataValue.float(metrics["total_predicted_clv"]),
            # the period the total covers: BTYD's totals (features/btyd_predictions) cover another one
            "clv_horizon_days": dg.MetadataValue.int(manifest["clv_horizon_days"] or 0),
            "segments": dg.MetadataValue.md(
                summary[["segment_name", "customers", "share", "avg_predicted_clv", "avg_p_alive"]]
                .round(3).to_markdown(index=False)
            ),
        }
    )


@dg.asset(
    key=["serving", "segment_history"],
    group_name="serving",
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[TRANSACTIONS, CLV_MODEL, SEGMENT_MODEL],
    kinds={"duckdb"},
    description=(
        "Month-end as-of scores and segment of every customer (serving.segment_history, one partition per "
        "month, backfillable in one run) and the migration matrix between consecutive months "
        "(serving.segment_migration)."
    ),
)
def segment_history(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    clv, seg = _production_models(mlflow)
    months = sorted(key[:7] for key in context.partition_keys)
    written, skipped = {}, []
    with warehouse.connect() as con:
        require_passed_checks(con)
        latest = features.latest_order_date(con)
        for month in months:
            # Month-end as-of; the month the data ends in is taken as of its latest day.
            as_of = scoring.month_end(month)
            if latest is not None and as_of > latest:
                if month == latest.isoformat()[:7]:
                    as_of = latest
                else:
                    context.log.warning(f"{month}: after the latest order day {latest}; nothing written")
                    skipped.append(month)
                    continue
            try:
                _, frame = scoring.scoring_inputs(con, as_of)
            except (scoring.ScoringError, btyd.BtydFitError) as exc:
                # one month whose BTYD refit fails must not hold back the others (or the snapshot after them)
                context.log.warning(f"{month}: {str(exc).splitlines()[0]}; nothing written")
                skipped.append(month)
                continue
            scores = scoring.score(frame, clv, seg, as_of, clv.version, seg.version)
            written[month] = scoring.write_history_month(con, month, scores)
            context.log.info(f"{month}: {written[month]} customers as of {as_of}")
        migration = scoring.refresh_migrations(con, list(written))
    # an MLflow run too, tagged with the partition (range): which production versions wrote which months
    with mlflow.start_run(context, run_name="segment_history"):
        import mlflow as mlf

        mlf.log_params({"clv_model_version": clv.version, "segment_model_version": seg.version,
                        "months_written": ",".join(written) or "-", "months_skipped": ",".join(skipped) or "-"})
        mlf.log_metrics({"customers_written": sum(written.values()), "months_written": len(written),
                         "months_skipped": len(skipped), "migration_rows": len(migration)})
    # each month's own figures (a ranged run materialises all its months at once), next to the run's totals
    keys = {key[:7]: key for key in context.partition_keys}
    for month, customers in written.items():
        context.add_asset_metadata({"customers": customers}, partition_key=keys[month])
    for month in skipped:
        context.add_asset_metadata({"skipped": "nothing written (see the run's log)"}, partition_key=keys[month])
    return dg.MaterializeResult(
        metadata={
            "run_months": dg.MetadataValue.json(written),
            "run_skipped": dg.MetadataValue.json(skipped),
            "run_customers": dg.MetadataValue.int(sum(written.values())),
            "migration_rows": dg.MetadataValue.int(len(migration)),
            "model_versions": dg.MetadataValue.json({CLV.name: clv.version, SEGMENT.name: seg.version}),
        }
    )
