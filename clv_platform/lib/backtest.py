"""Backtest of the BTYD baseline (and, through fold hooks, of any other CLV model) on held-out customers.

Protocol (Fader, Hardie & Lee 2005): transactions up to the cutoff give each customer's calibration summary
(same-day purchases merged, built by features.calibration_holdout from the same SQL as scoring), the
`horizon_days` after it give the realised holdout purchases and spend. Models are fitted in weeks.

K-fold cross-validation over customers: customers are split at random into K folds; for each fold the models
are fitted on the other K−1 folds' calibration data and predict the held-out fold's holdout. Metrics are
computed on the pooled out-of-fold predictions. With folds=1 the models are fitted on every customer and
predict every customer (the published in-sample-customers, out-of-sample-time protocol).

`metrics_bootstrap_sd` in the result: each metric's standard deviation over resamples of the customers
(metrics.bootstrap_sd), the yardstick for reading a figure against a goal threshold.

BTYD's prediction of holdout spend: btyd_clv = E[holdout purchases | BG/NBD] × E[order value | Gamma-Gamma]
(undiscounted), compared against spend_holdout.

Extending it (the CLV model): pass `FoldModel`s to `run_backtest` (the CLI uses `default_fold_models()`).
Each gets the fold's train and test frames — calibration_holdout columns (features in days) plus the fold
BTYD model's columns (btyd_*) — and returns customer_id plus its columns for the test customers, e.g.
predicted_clv, predicted_clv_p10, predicted_clv_p50, predicted_clv_p90; its `prediction_column` (and any
`also_scored` column, e.g. the CLV model's median forecast as `clv_model_median`) is scored with the same metrics.
"""

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from clv_platform.lib import btyd, cdnow_frame, features, warehouse
from clv_platform.lib.metrics import bootstrap_sd, clv_metrics
from clv_platform.lib.settings import get_settings

DATASETS = ("cdnow", "cdnow-sample", "warehouse")
CDNOW_CUTOFF = dt.date(1997, 9, 30)
CDNOW_HORIZON_DAYS = 273  # 1997-10-01 .. 1998-06-30 = 39 weeks


@dataclass
class FoldModel:
    """A model evaluated fold by fold next to BTYD.

    fit_predict(train, test, context) -> DataFrame with customer_id and this model's columns for `test`.
    context: {"fold": k, "horizon_days": ..., "btyd_models": BtydModels fitted on train}.
    """

    name: str
    prediction_column: str
    fit_predict: Callable[[pd.DataFrame, pd.DataFrame, dict], pd.DataFrame]
    # further columns of its output scored as models of their own: {metrics name: column}
    also_scored: dict[str, str] = field(default_factory=dict)


def default_fold_models() -> list[FoldModel]:
    """Models `clv backtest` evaluates besides BTYD. The CLV model adds itself here."""
    from clv_platform.lib.training import clv_fold_model  # CLV model (lib/training.py)

    return [clv_fold_model()]


def load_calibration_holdout(
    dataset: str, cutoff=None, horizon_days: int | None = None, warehouse_path: str | Path | None = None
) -> tuple[pd.DataFrame, dt.date, int]:
    """calibration_holdout rows (features in days) for a dataset; returns (frame, cutoff, horizon_days).

    cdnow / cdnow-sample: lifetimes' packaged CDNOW loaded into an in-memory DuckDB (cutoff 1997-09-30 and
    273 days by default). warehouse: staging.transactions of the warehouse, opened read-only (default horizon:
    training's, 365 days or half a shorter history; default cutoff: latest order day minus the horizon)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if dataset.startswith("cdnow"):
        con = duckdb.connect()
        cdnow_frame.load_cdnow(con, sample=dataset == "cdnow-sample")
        cutoff = CDNOW_CUTOFF if cutoff is None else cutoff
        horizon_days = CDNOW_HORIZON_DAYS if horizon_days is None else horizon_days
    else:
        path = Path(warehouse_path or get_settings().warehouse_path)
        if not path.exists():
            raise FileNotFoundError(f"no warehouse at {path}: run the pipeline first (or set CLV_DATA_DIR)")
        con = warehouse.connect(path, read_only=True)
    try:
        if horizon_days is None:      # training's rule: 365 days, or half the history when it is shorter
            from clv_platform.lib.training import auto_horizon

            horizon_days = auto_horizon(con)
        if cutoff is None:
            cutoff = features.latest_order_date(con) - dt.timedelta(days=int(horizon_days))
        cutoff = pd.Timestamp(cutoff).date()
        latest = features.latest_order_date(con)
        if latest is not None and cutoff >= latest:
            raise ValueError(f"cutoff {cutoff} leaves no holdout: the {dataset} data ends on {latest}")
        if latest is not None and cutoff + dt.timedelta(days=int(horizon_days)) > latest:
            raise ValueError(
                f"the {horizon_days}-day horizon after {cutoff} runs past the end of the {dataset} data ({latest}): "
                f"the holdout would be cut short and the metrics skewed; use --horizon-days "
                f"{(latest - cutoff).days} or an earlier --cutoff")
        frame = features.calibration_holdout(con, cutoff, int(horizon_days), time_unit_days=1.0)
    finally:
        con.close()
    if frame.empty:
        raise ValueError(f"no customers first seen on or before {cutoff} in {dataset}")
    return frame, cutoff, int(horizon_days)


def assign_folds(n: int, folds: int, seed: int = 0) -> np.ndarray:
    """Fold number 0..folds-1 per row, balanced, at random."""
    rng = np.random.default_rng(seed)
    return rng.permutation(n) % max(1, folds)


def btyd_fold_columns(models: btyd.BtydModels, frame: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """BTYD's predictions of the holdout for `frame` (features in days)."""
    purchases = btyd.expected_holdout_purchases(models, frame, horizon_days, input_unit_days=1.0)
    aov = btyd.gamma_gamma_expected_value(models.gamma_gamma.params, frame["frequency"], frame["monetary_value"])
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "btyd_p_alive": btyd.bgnbd_p_alive(models.bgnbd.params, *btyd._summary_arrays(frame, models.time_unit_days, 1.0)),
            "btyd_expected_purchases": purchases,
            "btyd_expected_avg_order_value": aov,
            "btyd_clv": purchases * aov,
        }
    )
    if models.pareto is not None:
        out["pareto_expected_purchases"] = btyd.expected_holdout_purchases(
            models, frame, horizon_days, input_unit_days=1.0, model="pareto_nbd"
        )
    return out


def _purchase_metrics(actual, predicted) -> dict:
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    err = predicted - actual
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "total_bias": float(err.sum() / actual.sum()) if actual.sum() else float("nan"),
    }


def run_backtest(
    cal: pd.DataFrame,
    horizon_days: int,
    folds: int = 5,
    time_unit_days: float = btyd.WEEK_DAYS,
    seed: int = 0,
    fold_models: list[FoldModel] | tuple = (),
    include_pareto: bool = True,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict, pd.DataFrame]:
    """K-fold backtest over customers. Returns (JSON-friendly result, per-customer out-of-fold frame)."""
    started = time.perf_counter()
    cal = cal.reset_index(drop=True)
    fold_of = assign_folds(len(cal), folds, seed)
    pieces, fold_params = [], []
    for k in range(max(1, folds)):
        test_mask = fold_of == k
        train = cal[~test_mask] if folds > 1 else cal
        test = cal[test_mask]
        models = btyd.fit_btyd(train, time_unit_days=time_unit_days, input_unit_days=1.0,
                               include_pareto=include_pareto)
        fold_params.append({"fold": k, **{name: models.summary()[name]["params"]
                                          for name in ("bgnbd", "gamma_gamma", "pareto_nbd")
                                          if models.summary().get(name)}})
        test_pred = btyd_fold_columns(models, test, horizon_days)
        piece = test[["customer_id", "frequency_holdout", "spend_holdout"]].reset_index(drop=True)
        piece.insert(1, "fold", k)
        piece = piece.merge(test_pred, on="customer_id", how="left")
        if fold_models:
            train_plus = train.merge(btyd_fold_columns(models, train, horizon_days), on="customer_id")
            test_plus = test.merge(test_pred, on="customer_id")
            ctx = {"fold": k, "horizon_days": horizon_days, "btyd_models": models}
            for fm in fold_models:
                cols = fm.fit_predict(train_plus, test_plus, ctx)
                piece = piece.merge(cols, on="customer_id", how="left")
        pieces.append(piece)
        if progress:
            progress(1)
    oof = pd.concat(pieces, ignore_index=True).sort_values("customer_id", ignore_index=True)

    full = btyd.fit_btyd(cal, time_unit_days=time_unit_days, input_unit_days=1.0, include_pareto=include_pareto)
    scored = {"btyd": "btyd_clv", **{fm.name: fm.prediction_column for fm in fold_models},
              **{name: col for fm in fold_models for name, col in fm.also_scored.items()}}
    metrics = {name: clv_metrics(oof["spend_holdout"], oof[col]) for name, col in scored.items()}
    # Sampling noise of each metric (customers resampled): goals are thresholds on these noisy figures.
    metrics_sd = {name: bootstrap_sd(oof["spend_holdout"], oof[col], seed=seed) for name, col in scored.items()}
    purchases = {"bgnbd": _purchase_metrics(oof["frequency_holdout"], oof["btyd_expected_purchases"])}
    comparison = {"bgnbd": {"log_likelihood": full.bgnbd.log_likelihood, **purchases["bgnbd"]}}
    if include_pareto:
        purchases["pareto_nbd"] = _purchase_metrics(oof["frequency_holdout"], oof["pareto_expected_purchases"])
        comparison["pareto_nbd"] = {"log_likelihood": full.pareto.log_likelihood, **purchases["pareto_nbd"]}
    result = {
        "n_customers": int(len(cal)),
        "n_repeat_buyers": int((cal["frequency"] > 0).sum()),
        "horizon_days": int(horizon_days),
        "folds": int(folds),
        "seed": seed,
        "time_unit_days": float(time_unit_days),
        "params": full.summary(),
        "fold_params": fold_params,
        "metrics": metrics,
        "metrics_bootstrap_sd": metrics_sd,
        "holdout_purchases": comparison,
        "actual_total_spend": float(oof["spend_holdout"].sum()),
        "predicted_total_spend_btyd": float(oof["btyd_clv"].sum()),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return result, oof


def write_rows(frame: pd.DataFrame, out: str | Path) -> Path:
    """Per-customer rows to Parquet (.parquet/.pq) or CSV (.csv), chosen by the extension."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame.to_parquet(out, index=False)
    elif suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        raise ValueError(f"--out must end in .parquet or .csv, got {out.name!r}")
    return out


def jsonable(obj):
    """Plain JSON types only (NaN/inf -> None, numpy scalars -> Python), for one `json.dumps` line."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj
