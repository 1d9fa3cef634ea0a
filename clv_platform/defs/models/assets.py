"""models/clv_model and models/segment_model: train, evaluate, log to MLflow, register as `staging`.

Thin: lib/training.py + lib/clv_model.py and lib/segmentation.py do the work, lib/registry.py registers,
the `mlflow` resource (defs/resources.py) owns the tracking store and always ends its runs. Promotion to
`production` is a separate, gated step (`clv promote clv|segment`, or promotion_job in models/promotion.py).
"""

import json
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd

from clv_platform.defs.metadata import png_markdown
from clv_platform.defs.resources import MlflowResource, WarehouseResource
from clv_platform.lib import clv_model, metrics, registry, scoring, segmentation, training

FEATURES = dg.AssetKey(["features", "customer_features"])
BTYD_PREDICTIONS = dg.AssetKey(["features", "btyd_predictions"])
CLV_MODEL = dg.AssetKey(["models", "clv_model"])
CLV = registry.MODELS["clv"]
SEGMENT = registry.MODELS["segment"]


class ClvModelConfig(dg.Config):
    # target: spend in the horizon after the cutoff (= latest day - horizon); 0 = 365 days, or half the
    # history when it is shorter than two years
    horizon_days: int = 0
    test_fraction: float = 0.2   # held-out customers (the same at every retrain, by id hash): the comparison
    #                              with BTYD, the naive baseline and the production model
    inner_folds: int = 4         # CV folds inside the training customers (early stopping + calibration)
    seed: int = 0


class SegmentModelConfig(dg.Config):
    k_min: int = 3
    k_max: int = 8
    n_bootstrap: int = 3
    fit_sample: int = 50_000
    silhouette_sample: int = 10_000
    # customers whose only purchase day is one of the last this many days form "new customers" (None: no rule)
    new_customer_days: int | None = 30
    seed: int = 0


@dg.asset(
    key=["models", "clv_model"],
    group_name="models",
    deps=[FEATURES, BTYD_PREDICTIONS],
    kinds={"lightgbm", "mlflow"},
    description=(
        "LightGBM CLV model (expected purchases (Poisson) x spend per purchase (Gamma), quantiles p10/p50/p90) "
        "trained on features and BTYD predictions "
        "as of latest day − horizon, target = spend in the horizon. Compared with BTYD and a naive baseline on "
        "held-out customers; logged to MLflow and registered as `clv_model` with alias `staging`."
    ),
)
def clv_model_asset(
    context: dg.AssetExecutionContext, config: ClvModelConfig, warehouse: WarehouseResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        try:
            ts = training.warehouse_training_set(con, horizon_days=config.horizon_days or None,
                                                 test_fraction=config.test_fraction)
        except ValueError as exc:  # empty or too short a history
            raise dg.Failure(description=f"cannot train the CLV model: {exc}") from None
    horizon = ts["horizon_days"]
    model = clv_model.train(ts["train"], horizon_days=horizon, inner_folds=config.inner_folds, seed=config.seed)
    table, rows = training.evaluate(model, ts["test"], ts["btyd_models"], horizon)
    importance = model.feature_importance()
    context.log.info("held-out metrics:\n%s", table.round(4).to_string())
    production = _production_on_the_same_customers(context, mlflow, ts["test"], rows["actual"])

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plots = {
            "feature_importance": training.plot_feature_importance(importance, tmp / "feature_importance.png"),
            "decile_calibration": training.plot_decile_calibration(rows, tmp / "decile_calibration.png"),
            "gain_chart": training.plot_gain_chart(rows, tmp / "gain_chart.png"),
        }
        version, run_id = _log_clv_model(context, mlflow, model, ts, table, importance, plots, config, tmp,
                                         production)
        plot_md = {f"plot_{k}": png_markdown(v) for k, v in plots.items()}

    m = table.loc["clv_model"]
    return dg.MaterializeResult(metadata={
        "registered_version": dg.MetadataValue.text(f"{CLV.name} v{version} (alias staging)"),
        "mlflow_run_id": dg.MetadataValue.text(run_id),
        "cutoff": dg.MetadataValue.text(str(ts["cutoff"])),
        "horizon_days": horizon,
        "train_customers": len(ts["train"]),
        "test_customers": len(ts["test"]),
        "metrics": dg.MetadataValue.md(table.to_markdown(floatfmt=".4f")),
        CLV.metric: dg.MetadataValue.float(float(m["normalized_gini"])),
        "btyd_normalized_gini": dg.MetadataValue.float(float(table.loc["btyd", "normalized_gini"])),
        "total_bias": dg.MetadataValue.float(float(m["total_bias"])),
        "interval_coverage_p10_p90": dg.MetadataValue.float(float(m["interval_coverage"])),
        "best_iterations": dg.MetadataValue.json(model.info["best_iterations"]),
        "top_features": dg.MetadataValue.md(importance.head(10).rename("gain").to_frame().to_markdown(floatfmt=".1f")),
        **plot_md,
    })


def _production_on_the_same_customers(context, mlflow: MlflowResource, test: pd.DataFrame,
                                      actual: pd.Series) -> tuple[str, float] | None:
    """(version, normalized Gini) of the production CLV model on this run's held-out customers, for the
    promotion gate to compare like with like; None when there is no production model yet or it cannot score
    these rows (a model from before a feature was added)."""
    version = registry.alias_version(CLV.name, registry.PRODUCTION, mlflow.tracking_uri)
    if version is None:
        return None
    if registry.client(mlflow.tracking_uri).get_model_version(CLV.name, version).tags.get(
            registry.HELD_OUT_TAG) != registry.HELD_OUT_BY_ID_HASH:
        context.log.warning(f"production {CLV.name} v{version} was trained before its held-out customers were "
                            f"recorded as chosen by id hash (no '{registry.HELD_OUT_TAG}' tag): it may have learnt "
                            "from this run's held-out customers, so the promotion gate compares with its own "
                            "held-out figure")
        return None
    try:
        production = registry.load(CLV.name, version=version, tracking_uri=mlflow.tracking_uri)
        predicted = production.predict(test)["predicted_clv"].to_numpy()
    except registry.RegistryError:
        return None
    except Exception as exc:  # noqa: BLE001 (the gate then falls back to production's own figure)
        context.log.warning(f"production {CLV.name} could not score this run's held-out customers ({exc}); the "
                            "promotion gate compares with its own held-out figure")
        return None
    gini = float(metrics.normalized_gini(actual.to_numpy(), predicted))
    context.log.info(f"production {CLV.name} v{production.version} on the same held-out customers: {CLV.metric} "
                     f"{gini:.4f}")
    return production.version, gini


def _booster_params(params: dict) -> dict:
    """The LightGBM parameters the boosters were trained with, as flat MLflow params: count_* and
    order_value_* for the two-part model (its top level holds the unused Tweedie defaults), else lgb_*."""
    parts = {"count": params["count"], "order_value": params["order_value"]} if "count" in params else {"lgb": params}
    return {f"{part}_{k}": v for part, values in parts.items() for k, v in values.items()
            if k not in ("verbosity", "seed", "num_threads")}


def _log_clv_model(context, mlflow: MlflowResource, model, ts, table: pd.DataFrame, importance, plots, config,
                   tmp: Path, production: tuple[str, float] | None) -> tuple[str, str]:
    """Everything the CLV model sends to MLflow and the registry; returns (registered version, run id)."""
    import mlflow as mlf

    with mlflow.start_run(context, run_name="clv_model") as run:
        mlf.log_params({
            "horizon_days": ts["horizon_days"], "cutoff": str(ts["cutoff"]), "test_fraction": config.test_fraction,
            "inner_folds": config.inner_folds, "seed": config.seed, "n_train": len(ts["train"]),
            "n_test": len(ts["test"]), "n_features": len(model.features), "calibration_scale": round(model.scale, 6),
            "model": model.info["model"], **_booster_params(model.params),
        })
        logged = {f"{name}_{metric}": float(v) for name, row in table.iterrows() for metric, v in row.items()
                   if pd.notna(v)}
        logged[CLV.metric] = float(table.loc["clv_model", "normalized_gini"])  # what promotion compares
        if production is not None:    # ... with production's figure on the same customers
            logged[CLV.metric + registry.SAME_CUSTOMERS_SUFFIX] = production[1]
        mlf.log_metrics(logged)
        for path in plots.values():
            mlf.log_artifact(str(path), artifact_path="plots")
        table.to_csv(tmp / "holdout_metrics.csv")
        importance.to_csv(tmp / "feature_importance.csv")
        (tmp / "features.json").write_text(json.dumps(model.features))
        for name in ("holdout_metrics.csv", "feature_importance.csv", "features.json"):
            mlf.log_artifact(str(tmp / name), artifact_path="evaluation")
        info = clv_model.log_to_mlflow(model, ts["train"], name="clv_model")
        run_id = run.info.run_id
    version = registry.register(run_id, "clv_model", CLV.name, model_uri=info.model_uri,
                                tags={"cutoff": ts["cutoff"], "horizon_days": ts["horizon_days"],
                                      registry.HELD_OUT_TAG: registry.HELD_OUT_BY_ID_HASH,
                                      **({registry.COMPARED_TAG: production[0]} if production else {})},
                                tracking_uri=mlflow.tracking_uri)
    return version, run_id


@dg.asset(
    key=["models", "segment_model"],
    group_name="models",
    deps=[CLV_MODEL, FEATURES, BTYD_PREDICTIONS],
    kinds={"sklearn", "mlflow"},
    description=(
        "Customer segments: KMeans vs GMM over k, chosen on silhouette × bootstrap stability (Davies-Bouldin, "
        "BIC reported), named from centroid profiles, names carried over from the production model. Inputs: "
        "every customer as of the latest day scored with the `staging` CLV model. Registered as `segment_model` "
        "with alias `staging`."
    ),
)
def segment_model_asset(
    context: dg.AssetExecutionContext, config: SegmentModelConfig, warehouse: WarehouseResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    try:
        clv = registry.load(CLV.name, registry.STAGING, tracking_uri=mlflow.tracking_uri)
    except registry.RegistryError as exc:
        raise dg.Failure(description=f"{exc}. Materialise models/clv_model first.") from None
    with warehouse.connect() as con:
        as_of, frame = scoring.scoring_inputs(con)
    frame = frame.reset_index(drop=True)
    pred = clv.predict(frame)
    frame = frame.assign(**{c: pred[c].to_numpy() for c in clv_model.PREDICTION_COLUMNS})
    previous, previous_version = None, None
    if registry.alias_version(SEGMENT.name, registry.PRODUCTION, mlflow.tracking_uri):
        prod = registry.load(SEGMENT.name, registry.PRODUCTION, tracking_uri=mlflow.tracking_uri)
        previous, previous_version = prod.native, prod.version
    model = segmentation.fit(frame, previous=previous, k_range=range(config.k_min, config.k_max + 1),
                             fit_sample=config.fit_sample, silhouette_sample=config.silhouette_sample,
                             n_bootstrap=config.n_bootstrap, new_customer_days=config.new_customer_days,
                             seed=config.seed)
    context.log.info("segment model candidates:\n%s", model.selection.round(4).to_string())

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plot = segmentation.plot_selection(model.selection, tmp / "selection_by_k.png")
        version, run_id = _log_segment_model(context, mlflow, model, frame, plot, as_of, clv.version,
                                             previous_version, tmp)
        plot_md = png_markdown(plot)

    prof = model.profiles
    return dg.MaterializeResult(metadata={
        "registered_version": dg.MetadataValue.text(f"{SEGMENT.name} v{version} (alias staging)"),
        "mlflow_run_id": dg.MetadataValue.text(run_id),
        "as_of": dg.MetadataValue.text(str(as_of)),
        "algorithm": dg.MetadataValue.text(model.algorithm),
        "k": model.k,
        SEGMENT.metric: dg.MetadataValue.float(model.score),
        "segment_sizes": dg.MetadataValue.json({r.segment_name: int(r.customers) for r in prof.itertuples()}),
        "segments": dg.MetadataValue.md(prof.to_markdown(index=False, floatfmt=".3f")),
        "candidates": dg.MetadataValue.md(model.selection.drop(columns=["sizes"]).to_markdown(index=False,
                                                                                           floatfmt=".4f")),
        "names_from_production": dg.MetadataValue.text(
            f"v{previous_version}: {model.info['matched_previous']} segments matched" if previous_version
            else "no production model yet: names from centroid profiles"),
        "clv_model_version": dg.MetadataValue.text(str(clv.version)),
        "plot_selection_by_k": plot_md,
    })


def _log_segment_model(context, mlflow: MlflowResource, model, frame, plot, as_of, clv_version,
                       previous_version, tmp: Path) -> tuple[str, str]:
    import mlflow as mlf

    with mlflow.start_run(context, run_name="segment_model") as run:
        mlf.log_params({"algorithm": model.algorithm, "k": model.k, "as_of": str(as_of),
                        "n_customers": len(frame), "n_fit": model.info["n_fit"], "clv_model_version": clv_version,
                        "previous_production_version": previous_version or "none",
                        "names": json.dumps({str(k): v for k, v in sorted(model.names.items())})})
        m = model.metrics
        mlf.log_metrics({SEGMENT.metric: model.score, "silhouette": m["silhouette"],
                         "davies_bouldin": m["davies_bouldin"], "stability_ari": m["stability_ari"],
                         **({"bic": m["bic"]} if m["bic"] == m["bic"] else {})})
        mlf.log_artifact(str(plot), artifact_path="plots")
        model.selection.to_csv(tmp / "candidates.csv", index=False)
        model.profiles.to_csv(tmp / "segment_profiles.csv", index=False)
        for name in ("candidates.csv", "segment_profiles.csv"):
            mlf.log_artifact(str(tmp / name), artifact_path="evaluation")
        info = segmentation.log_to_mlflow(model, frame, name="segment_model")
        run_id = run.info.run_id
    version = registry.register(run_id, "segment_model", SEGMENT.name, model_uri=info.model_uri,
                                tags={"as_of": as_of, "algorithm": model.algorithm, "k": model.k,
                                      "clv_model_version": clv_version},   # the gate pairs it with that version
                                tracking_uri=mlflow.tracking_uri)
    return version, run_id
