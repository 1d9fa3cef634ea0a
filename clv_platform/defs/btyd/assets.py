"""BTYD stage: models/bgnbd, models/gamma_gamma and features/btyd_predictions (lib/btyd.py does the work).

The fitted parameters go to the warehouse table models.btyd_params (what btyd_predictions reads) and, with
the fitted lifetimes objects (dill) and the diagnostics plots, to MLflow.
"""

import copy
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from clv_platform.defs.metadata import png_markdown
from clv_platform.defs.resources import MlflowResource, WarehouseResource
from clv_platform.lib import btyd, btyd_diagnostics, features
from clv_platform.lib.settings import get_settings
from clv_platform.lib.warehouse import transaction

FEATURES = dg.AssetKey(["features", "customer_features"])
BGNBD = dg.AssetKey(["models", "bgnbd"])
GAMMA_GAMMA = dg.AssetKey(["models", "gamma_gamma"])
PREDICTIONS_TABLE = "features.btyd_predictions"


class BtydFitConfig(dg.Config):
    time_unit_days: float = btyd.WEEK_DAYS  # weeks: well-scaled for daily data over months to years
    diagnostics: bool = True
    # holdout used by the diagnostics' calibration fit; 0 = a third of the history, clamped to 28..365 days
    diagnostics_holdout_days: int = 0
    compare_pareto: bool = True


class BtydPredictionsConfig(dg.Config):
    horizon_days: int = 365
    discount_rate_annual: float = 0.10


def _read_features(con) -> tuple[pd.DataFrame, object]:
    frame = con.execute(f"SELECT * FROM {features.FEATURES_TABLE}").df()
    if frame.empty:
        raise dg.Failure(description=f"{features.FEATURES_TABLE} is empty: materialise features/customer_features "
                                     "after loading transactions.")
    return frame, pd.Timestamp(frame["as_of_date"].iloc[0]).date()


def _as_lifetimes_class(fitter):
    """A copy of our fitter (BetaGeoFitterFD: lifetimes' class plus a finite-difference Hessian for fitting) as
    lifetimes' own class, so that the saved model loads with lifetimes alone, without clv_platform."""
    plain = copy.copy(fitter)
    plain.__class__ = next(c for c in type(fitter).__mro__ if c.__module__.startswith("lifetimes."))
    for name, value in vars(plain).items():     # methods lifetimes keeps as attributes (predict): bound anew
        if getattr(value, "__self__", None) is fitter:
            setattr(plain, name, getattr(plain, value.__func__.__name__))
    return plain


def _log_to_mlflow(context, mlflow: MlflowResource, run_name: str, params: dict, metrics: dict,
                   files: dict[str, Path], fitter=None) -> str | None:
    """Everything this stage sends to MLflow goes through here (params, metrics, PNGs, the dill'd fitter)."""
    import mlflow as mlf

    with mlflow.start_run(context, run_name=run_name) as run:
        mlf.log_params({k: (round(v, 8) if isinstance(v, float) else v) for k, v in params.items()})
        mlf.log_metrics({k: float(v) for k, v in metrics.items() if v == v})  # drop NaN
        for path in files.values():
            mlf.log_artifact(str(path), artifact_path="diagnostics")
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / f"{run_name}_params.json").write_text(json.dumps(params, indent=2, default=str))
            mlf.log_artifact(str(Path(tmp) / f"{run_name}_params.json"), artifact_path="model")
            if fitter is not None:
                pkl = Path(tmp) / f"{run_name}.dill"
                _as_lifetimes_class(fitter).save_model(str(pkl), save_data=False, save_generate_data_method=False)
                mlf.log_artifact(str(pkl), artifact_path="model")
        return run.info.run_id


def _fit_metadata(fitted: btyd.FittedModel, time_unit_days: float, as_of) -> dict:
    table = pd.DataFrame({"param": list(fitted.params), "value": list(fitted.params.values()),
                          "std_error": [fitted.std_errors.get(k) for k in fitted.params]})
    return {
        "params": dg.MetadataValue.json({k: round(v, 6) for k, v in fitted.params.items()}),
        "std_errors": dg.MetadataValue.json({k: round(v, 6) for k, v in fitted.std_errors.items() if v == v}),
        "params_table": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".4f")),
        "log_likelihood": dg.MetadataValue.float(fitted.log_likelihood),
        "n_customers": dg.MetadataValue.int(fitted.n_customers),
        "n_compressed_rows": dg.MetadataValue.int(fitted.n_rows),
        "penalizer": dg.MetadataValue.float(fitted.penalizer),
        "fit_attempts": dg.MetadataValue.int(fitted.attempts),
        "time_unit_days": dg.MetadataValue.float(float(time_unit_days)),
        "as_of": dg.MetadataValue.text(str(as_of)),
    }


@dg.asset(
    key=BGNBD.path,
    group_name="btyd",
    deps=[FEATURES],
    kinds={"python", "mlflow"},
    description=(
        "BG/NBD (lifetimes) fitted on compressed (frequency, recency, T) rows of features.customer_features, "
        "in weeks. Parameters in models.btyd_params; diagnostics plots and the fitted object in MLflow."
    ),
)
def bgnbd(
    context: dg.AssetExecutionContext, config: BtydFitConfig, warehouse: WarehouseResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    unit = config.time_unit_days
    with warehouse.connect() as con:
        feats, as_of = _read_features(con)
        t0 = time.perf_counter()
        fitted = btyd.fit_bgnbd(*btyd.summary_arrays(feats, unit, 1.0))
        fit_seconds = time.perf_counter() - t0
        btyd.write_params(con, fitted, unit, as_of)
        pareto = None
        if config.compare_pareto:
            try:
                pareto = btyd.compare_bgnbd_pareto(*btyd.summary_arrays(feats, unit, 1.0))
            except btyd.BtydFitError as exc:
                context.log.warning(f"Pareto/NBD comparison skipped: {exc}")
        diag = None
        history_days = float(feats["T"].max())
        if config.diagnostics and history_days >= 56:
            holdout = config.diagnostics_holdout_days or int(min(365, max(28, history_days // 3)))
            cutoff = as_of - dt.timedelta(days=holdout)
            out_dir = get_settings().data_dir / "diagnostics" / "btyd" / str(as_of)
            try:
                diag = btyd_diagnostics.write_all(con, out_dir, cutoff, as_of, unit,
                                                  full_models=btyd.BtydModels(fitted, None, unit))
            except btyd.BtydFitError as exc:
                context.log.warning(f"diagnostics skipped: {exc}")

    metadata = _fit_metadata(fitted, unit, as_of)
    metadata["fit_seconds"] = dg.MetadataValue.float(round(fit_seconds, 3))
    metrics = {"log_likelihood": fitted.log_likelihood, "n_customers": fitted.n_customers,
               **{f"se_{k}": v for k, v in fitted.std_errors.items()}}
    if pareto is not None:  # both models fitted on the same (up to 20,000) customers
        metadata["pareto_nbd_params"] = dg.MetadataValue.json(
            {k: round(v, 6) for k, v in pareto["pareto_nbd_params"].items()})
        metadata["pareto_nbd_log_likelihood"] = dg.MetadataValue.float(pareto["pareto_nbd_log_likelihood"])
        metadata["bgnbd_log_likelihood_same_customers"] = dg.MetadataValue.float(pareto["bgnbd_log_likelihood"])
        metadata["pareto_comparison_customers"] = dg.MetadataValue.int(pareto["n_customers"])
        metadata["preferred_by_log_likelihood"] = dg.MetadataValue.text(pareto["preferred"])
        metrics["pareto_nbd_log_likelihood"] = pareto["pareto_nbd_log_likelihood"]
        metrics["bgnbd_log_likelihood_same_customers"] = pareto["bgnbd_log_likelihood"]
    files = {}
    if not config.diagnostics:      # (a scoring run's refit: the plots stay with the training run's event)
        metadata["diagnostics"] = dg.MetadataValue.text(
            "not drawn in this run (a refit for scoring): the diagnostic plots, tables and the Pareto/NBD comparison "
            "are on the latest training run's materialization of this asset (Events: job training_job), and in "
            "MLflow (the bgnbd run of training_job)")
    if diag is not None:
        files = diag["files"]
        cond = diag["tables"]["conditional_holdout"]
        metadata["diagnostics_cutoff"] = dg.MetadataValue.text(f"{diag['cutoff']} (+{diag['horizon_days']} days)")
        metadata["conditional_holdout"] = dg.MetadataValue.md(cond.astype(object).where(cond.notna(), None).to_markdown(
            index=False, floatfmt=".3f", missingval="–"))
        metadata["calibration_histogram"] = dg.MetadataValue.md(
            diag["tables"]["calibration_histogram"].to_markdown(index=False, floatfmt=".1f"))
        for name, path in files.items():
            metadata[f"plot_{name}"] = png_markdown(path)
            metadata[f"plot_{name}_path"] = dg.MetadataValue.path(str(path))
    params = {**fitted.params, "time_unit_days": unit, "as_of": str(as_of), "penalizer": fitted.penalizer}
    run_id = _log_to_mlflow(context, mlflow, "bgnbd", params, metrics, files, fitted.fitter)
    metadata["mlflow_run_id"] = dg.MetadataValue.text(run_id or "")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=GAMMA_GAMMA.path,
    group_name="btyd",
    deps=[FEATURES],
    kinds={"python", "mlflow"},
    description=(
        "Gamma-Gamma spend model (lifetimes) fitted on the repeat buyers of features.customer_features "
        "(compressed (frequency, monetary_value) rows). Parameters in models.btyd_params; fitted object in MLflow."
    ),
)
def gamma_gamma(
    context: dg.AssetExecutionContext, config: BtydFitConfig, warehouse: WarehouseResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        feats, as_of = _read_features(con)
        fitted = btyd.fit_gamma_gamma(feats["frequency"], feats["monetary_value"])
        btyd.write_params(con, fitted, config.time_unit_days, as_of)
    metadata = _fit_metadata(fitted, config.time_unit_days, as_of)
    p, q, v = (fitted.params[k] for k in ("p", "q", "v"))
    metadata["population_mean_order_value"] = dg.MetadataValue.float(v * p / (q - 1) if q > 1 else float("nan"))
    metrics = {"log_likelihood": fitted.log_likelihood, "n_customers": fitted.n_customers,
               **{f"se_{k}": val for k, val in fitted.std_errors.items()}}
    run_id = _log_to_mlflow(context, mlflow, "gamma_gamma", {**fitted.params, "as_of": str(as_of)}, metrics, {},
                            fitted.fitter)
    metadata["mlflow_run_id"] = dg.MetadataValue.text(run_id or "")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=["features", "btyd_predictions"],
    group_name="btyd",
    deps=[FEATURES, BGNBD, GAMMA_GAMMA],
    kinds={"duckdb", "python"},
    description=(
        "Per customer, as of the features' date: P(alive), expected purchases over 30/90/365 days, expected "
        "average order value and discounted BTYD CLV (horizon and annual discount rate in the config). "
        "Table features.btyd_predictions."
    ),
)
def btyd_predictions(
    context: dg.AssetExecutionContext, config: BtydPredictionsConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        feats, as_of = _read_features(con)
        models = btyd.models_from_params(con.execute(f"SELECT * FROM {btyd.PARAMS_TABLE}").df())
        t0 = time.perf_counter()
        preds = btyd.predict(models, feats, horizon_days=config.horizon_days,
                             discount_rate_annual=config.discount_rate_annual, input_unit_days=1.0)
        seconds = time.perf_counter() - t0
        preds["as_of_date"] = as_of
        with transaction(con, _btyd_predictions=preds):
            con.execute(f"CREATE OR REPLACE TABLE {PREDICTIONS_TABLE} AS SELECT * FROM _btyd_predictions")
    return dg.MaterializeResult(
        metadata={
            "customers": dg.MetadataValue.int(len(preds)),
            "as_of": dg.MetadataValue.text(str(as_of)),
            "horizon_days": dg.MetadataValue.int(config.horizon_days),
            "discount_rate_annual": dg.MetadataValue.float(config.discount_rate_annual),
            "mean_p_alive": dg.MetadataValue.float(float(preds["p_alive"].mean())),
            "total_btyd_clv": dg.MetadataValue.float(float(preds["btyd_clv"].sum())),
            "expected_purchases_365d_total": dg.MetadataValue.float(float(preds["expected_purchases_365d"].sum())),
            "predict_seconds": dg.MetadataValue.float(round(seconds, 4)),
            "table": dg.MetadataValue.text(PREDICTIONS_TABLE),
            "preview": dg.MetadataValue.md(preds.head(10).to_markdown(index=False, floatfmt=".3f")),
        }
    )
