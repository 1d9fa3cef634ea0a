"""LightGBM customer-lifetime-value model: spend over a horizon, with a prediction interval.

Training set = one row per customer: features as of a cutoff (plus the BTYD predictions made at that
cutoff) and the realised spend in the `horizon_days` after it (the target). The model is

* a two-part expectation, E[spend] = E[purchases] × E[order value | purchase]: a Poisson booster for the
  number of purchase days in the horizon (`frequency_holdout`) times a Gamma booster for the spend per purchase
  day, fitted on the customers who bought (weighted by their purchase days). Counts are far less heavy-tailed
  than spend, so on CDNOW this is steadier than one Tweedie model of spend with fewer trees: same ranking
  (normalized Gini and top-10% capture within ±0.002 on three outer splits), RMSE −2 to −4, MAE −0.05 to −0.2,
  and less seed-to-seed spread (top-10% sd 0.001 vs 0.004 over training seeds). Without a
  purchase-count column the model falls back to one Tweedie booster of spend. K-fold cross-validation *inside
  the training customers* early-stops each part per fold and gives out-of-fold predictions; the final boosters
  are refitted on all training customers for the mean early-stopping round counts (or, with refit=False, each
  part is the mean of its K fold boosters);
* calibrated on the out-of-fold predictions: a piecewise-linear map fitted on prediction-quantile bins
  (fixes the per-decile level) and a final total-scale factor (fixes total bias), both monotone so the
  ranking is not changed;
* three quantile boosters: p10 and p90 give an interval (widened, if needed, to cover the mean); p50 is the
  median forecast, the typical outcome for one customer. The mean is what adds up over customers (total bias,
  deciles, ranking); the median is the forecast with the least absolute error per customer (for most customers
  it is 0: they will most likely buy nothing in the horizon).

`ClvModel.predict(df)` returns `predicted_clv, predicted_clv_p10, predicted_clv_p50, predicted_clv_p90` row by
row (p50 is NaN for models saved before it existed).

Measured on full CDNOW (`clv backtest --dataset cdnow --cutoff 1997-09-30 --horizon-days 273 --folds 5`):
normalized Gini 0.720 vs BTYD 0.672, top-10% capture 0.522 vs 0.516, total bias +0.9% vs −17.3%, decile MAPE
0.02 vs 0.17, MAE 35.05 vs 32.7. Top-10% ≥ 0.53 was not reached by any variant tried (extra features, tree
sizes, objectives, P(buy) × spend hurdle, seed averages, BTYD blends, boosting from BTYD's predictions,
monotone constraints, sample weights, a top-decile classifier or an xendcg ranker blended in by rank,
linear trees, Gamma-Gamma's order value in place of the value booster, extra training rows from earlier
cutoffs; then early stopping on Gini or top-10%, bagging 10-20 bootstrap models, 14 more transaction features
(time-weighted spend, largest/last day's spend, last gap, distinct weeks...), a rank or geometric blend with the
Tweedie booster, an exponent on the value part, a capped order-value target: 0.516-0.527, the best +0.0036 over
3 seeds); the figure's own sampling sd over customers is 0.011 (backtest `metrics_bootstrap_sd`), and the
model's own expected top-10% share (of its predictions) is 0.527-0.530: its ranking is not expected to do better.
MAE below BTYD's is out of reach for an unbiased prediction: with p = E[Y] and Y ≥ 0, E|Y − p| = 2·E[(p − Y)+] ≥
2·p·P(Y = 0), and 70 % of customers buy nothing in the holdout (predicting 0 for everyone scores 32.96; BTYD's
32.7 comes with −17 % bias). Even the MAE-optimal map of our or BTYD's score, fitted on the held-out customers
themselves (100 score bins), stays above 33.2 at −5 % bias; on customers simulated from BG/NBD × Gamma-Gamma with
CDNOW's parameters, the exact conditional expectation scores MAE 7-9 % above predicting 0. So the mean is
calibrated for the total and the deciles, and the median forecast `predicted_clv_p50` is the one to judge on MAE
(backtest row `clv_model_median`: MAE 28.48 vs BTYD 32.68 on the same out-of-fold customers).
`ClvModel.save(dir)` / `ClvModel.load(dir)` use LightGBM's text format plus a JSON manifest;
`log_to_mlflow` logs that directory as an MLflow pyfunc whose wrapper is model code
(`mlflow_code/saved_model_pyfunc.py`).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

FORMAT_VERSION = 2
TARGET = "spend_holdout"
PREDICTION_COLUMNS = ["predicted_clv", "predicted_clv_p10", "predicted_clv_p50", "predicted_clv_p90"]
QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}
HALF_CENT = 0.005

# Never features: identifiers, dates, anything measured after the cutoff, and our own outputs.
# btyd_clv is excluded because its horizon and discount rate are settings of whoever computed it (scoring
# uses 365 days at 10 %, the backtest the holdout horizon undiscounted); the model derives its own
# horizon-free BTYD value instead (`_derive`). Backtest-only columns (btyd_*, pareto_*) are excluded too.
_EXCLUDED = {
    "customer_id", "as_of_date", "cutoff", "cutoff_date", "first_purchase_date", "last_purchase_date",
    "fold", "target", "btyd_clv", *PREDICTION_COLUMNS,
}
_EXCLUDED_PREFIXES = ("btyd_", "pareto_", "holdout_")
COUNT_TARGET = "frequency_holdout"  # purchase days in the horizon: the count part of the two-part model
_DERIVED_SOURCES = {
    "value_btyd_365d": ("expected_purchases_365d", "expected_avg_order_value"),
    "spend_per_tenure_day": ("total_spend", "tenure_days"),
}
DERIVED = list(_DERIVED_SOURCES)

# Parameters of the one-booster Tweedie fallback (no purchase-count column); the two-part model replaces the
# objective (COUNT_PARAMS, ORDER_VALUE_PARAMS) and keeps the rest.
DEFAULT_PARAMS: dict = {
    "objective": "tweedie",
    "tweedie_variance_power": 1.3,
    # Small trees, many of them: on CDNOW (5-fold backtest) 7 leaves / 80 rows per leaf / rate 0.02 ranked
    # best among the settings tried (normalized Gini 0.7205, top-10% capture 0.5255 vs 0.7197 / 0.5201 for
    # 15 leaves / 40 rows / 0.03; Tweedie power 1.1-1.7, 8 inner folds and repeated CV changed < 0.003);
    # rate 0.05 then scored the same with 2.5x fewer trees to evaluate when scoring.
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 80,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbosity": -1,
    "force_col_wise": True,
}
# Two-part model: rate 0.15 for both parts (about 70 + 25 trees on CDNOW, vs about 110 for the Tweedie model
# at 0.05; 0.10/0.15 scored the same within seed noise with 30 % more trees).
COUNT_PARAMS = {"objective": "poisson", "learning_rate": 0.15}
ORDER_VALUE_PARAMS = {"objective": "gamma", "learning_rate": 0.15}
_OBJECTIVE_KEYS = ("objective", "tweedie_variance_power", "learning_rate")


def _threads(n_rows: int) -> int:
    # One thread for small inputs: OpenMP spin-waiting makes multi-threaded LightGBM crawl on a busy machine.
    return 1 if n_rows < 100_000 else 0


def _float(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _derived(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Features computed inside the model, so training and scoring compute them identically."""
    out = {}
    if "expected_purchases_365d" in df.columns and "expected_avg_order_value" in df.columns:
        out["value_btyd_365d"] = _float(df["expected_purchases_365d"]) * _float(df["expected_avg_order_value"])
    if "total_spend" in df.columns and "tenure_days" in df.columns:
        out["spend_per_tenure_day"] = _float(df["total_spend"]) / np.maximum(_float(df["tenure_days"]), 1.0)
    return out


def _derive(df: pd.DataFrame) -> pd.DataFrame:
    out = _derived(df)
    return df.assign(**out) if out else df


def feature_columns(df: pd.DataFrame, target: str = TARGET) -> list[str]:
    """Numeric columns usable as features (derived ones included): not ids/dates, not holdout-period
    columns, not the target, not horizon-specific BTYD columns."""
    df = _derive(df)
    cols = []
    for col in df.columns:
        if col in _EXCLUDED or col == target or col.endswith("_holdout") or col.startswith(_EXCLUDED_PREFIXES):
            continue
        if pd.api.types.is_bool_dtype(df[col]) or pd.api.types.is_numeric_dtype(df[col]):
            cols.append(col)
    return cols


def _matrix(df: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """float64 feature matrix, column by column (no copy of the whole frame: scoring passes 1M rows), in
    column-major order so each column is one contiguous write (LightGBM reads either layout)."""
    derived = _derived(df)
    missing = [c for c in features if c not in df.columns and c not in derived]
    if missing:
        raise KeyError(f"CLV model input lacks feature columns {missing}")
    x = np.empty((len(df), len(features)), dtype="float64", order="F")
    for j, col in enumerate(features):
        x[:, j] = derived[col] if col in derived else _float(df[col])
    return x


def _piecewise_fit(pred: np.ndarray, actual: np.ndarray, bins: int) -> tuple[list[float], list[float]]:
    """Monotone piecewise-linear calibration map pred -> E[actual | pred] from quantile bins.

    Knots at the mean prediction of each bin, values = mean actual of each bin made non-decreasing
    (pool-adjacent-violators on bin means). Linear in between, linear extrapolation through the origin
    below the first knot and constant-slope beyond the last.
    """
    order = np.argsort(pred, kind="stable")
    groups = np.array_split(order, bins)
    xs, ys, ws = [], [], []
    for g in groups:
        if len(g) == 0:
            continue
        xs.append(float(pred[g].mean()))
        ys.append(float(actual[g].mean()))
        ws.append(len(g))
    # Pool adjacent violators so the map is monotone (keeps the model's ranking).
    blocks = [[x, y, w] for x, y, w in zip(xs, ys, ws, strict=True)]
    merged: list[list[float]] = []
    for b in blocks:
        merged.append(b)
        while len(merged) > 1 and merged[-2][1] > merged[-1][1]:
            x2, y2, w2 = merged.pop()
            x1, y1, w1 = merged.pop()
            w = w1 + w2
            merged.append([(x1 * w1 + x2 * w2) / w, (y1 * w1 + y2 * w2) / w, w])
    kx = [m[0] for m in merged]
    ky = [max(m[1], 0.0) for m in merged]
    return kx, ky


def _piecewise_apply(pred: np.ndarray, kx: Sequence[float], ky: Sequence[float]) -> np.ndarray:
    pred = np.asarray(pred, dtype="float64")
    if not kx:
        return pred
    kx_a, ky_a = np.asarray(kx), np.asarray(ky)
    out = np.interp(pred, kx_a, ky_a)
    # Below the first knot: proportional to the prediction (0 stays 0).
    lo = pred < kx_a[0]
    if kx_a[0] > 0:
        out[lo] = pred[lo] * (ky_a[0] / kx_a[0])
    # Beyond the last knot: keep the ratio of the last knot, so large customers keep growing.
    hi = pred > kx_a[-1]
    if kx_a[-1] > 0:
        out[hi] = pred[hi] * (ky_a[-1] / kx_a[-1])
    return np.maximum(out, 0.0)


@dataclass
class ClvModel:
    """Trained CLV model. `predict(df)` needs the feature columns in `features`; extra columns are ignored."""

    features: list[str]
    boosters: list[lgb.Booster]
    quantile_boosters: dict[str, lgb.Booster]
    horizon_days: int
    # Two-part model: `boosters` predict purchases, these the spend per purchase (empty: Tweedie fallback).
    order_value_boosters: list[lgb.Booster] = field(default_factory=list)
    calib_x: list[float] = field(default_factory=list)
    calib_y: list[float] = field(default_factory=list)
    scale: float = 1.0
    params: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def input_columns(self) -> list[str]:
        """Columns `predict` reads (the derived features' sources instead of the derived features)."""
        cols = [c for c in self.features if c not in DERIVED]
        for derived, sources in _DERIVED_SOURCES.items():
            if derived in self.features:
                cols += [s for s in sources if s not in cols]
        return cols

    def _raw(self, x: np.ndarray, nt: int) -> np.ndarray:
        raw = np.mean([b.predict(x, num_threads=nt) for b in self.boosters], axis=0)
        if self.order_value_boosters:
            raw = raw * np.mean([b.predict(x, num_threads=nt) for b in self.order_value_boosters], axis=0)
        return raw

    def predict_raw(self, df: pd.DataFrame) -> np.ndarray:
        x = _matrix(df, self.features)
        return self._raw(x, _threads(len(x)))

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        x = _matrix(df, self.features)
        nt = _threads(len(x))
        mean = _piecewise_apply(self._raw(x, nt), self.calib_x, self.calib_y) * self.scale
        # A quantile of spend below half a cent is 0 (boosting leaves 8e-11 where the data say 0): "will most
        # likely buy nothing" must read as 0, and an API filter `max_predicted_clv_p50=0` must find it.
        q = {name: b.predict(x, num_threads=nt) for name, b in self.quantile_boosters.items()}
        q = {name: np.where(values < HALF_CENT, 0.0, values) for name, values in q.items()}
        # Quantiles are fitted separately: order them and make the interval contain the point estimate.
        if "p50" in q:
            p10, p50, p90 = np.sort(np.stack([q["p10"], q["p50"], q["p90"]]), axis=0)
        else:  # model saved before the median booster existed
            p10, p90 = np.sort(np.stack([q["p10"], q["p90"]]), axis=0)
            p50 = np.full(len(x), np.nan)
        return pd.DataFrame({"predicted_clv": mean, "predicted_clv_p10": np.minimum(p10, mean),
                             "predicted_clv_p50": p50, "predicted_clv_p90": np.maximum(p90, mean)},
                            index=df.index)

    def feature_importance(self, importance_type: str = "gain") -> pd.Series:
        imp = np.mean([b.feature_importance(importance_type=importance_type) for b in self.boosters], axis=0)
        return pd.Series(imp, index=self.features, name=importance_type).sort_values(ascending=False)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for i, b in enumerate(self.boosters):
            (path / f"booster_{i}.txt").write_text(b.model_to_string())
        for i, b in enumerate(self.order_value_boosters):
            (path / f"order_value_booster_{i}.txt").write_text(b.model_to_string())
        for name, b in self.quantile_boosters.items():
            (path / f"quantile_{name}.txt").write_text(b.model_to_string())
        manifest = {
            "format_version": FORMAT_VERSION, "features": self.features, "n_boosters": len(self.boosters),
            "n_order_value_boosters": len(self.order_value_boosters),
            "quantiles": sorted(self.quantile_boosters), "horizon_days": self.horizon_days,
            "calib_x": self.calib_x, "calib_y": self.calib_y, "scale": self.scale,
            "params": self.params, "info": self.info,
        }
        (path / "clv_model.json").write_text(json.dumps(manifest, indent=2, default=float))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ClvModel":
        path = Path(path)
        m = json.loads((path / "clv_model.json").read_text())
        if m.get("format_version") not in (1, FORMAT_VERSION):  # format 1: Tweedie-only models, still readable
            raise ValueError(f"{path}: CLV model format {m.get('format_version')}, expected {FORMAT_VERSION}")

        def read(name: str) -> lgb.Booster:
            return lgb.Booster(model_str=(path / name).read_text())

        boosters = [read(f"booster_{i}.txt") for i in range(m["n_boosters"])]
        order_value = [read(f"order_value_booster_{i}.txt") for i in range(m.get("n_order_value_boosters", 0))]
        quantiles = {q: read(f"quantile_{q}.txt") for q in m["quantiles"]}
        return cls(features=m["features"], boosters=boosters, quantile_boosters=quantiles,
                   order_value_boosters=order_value,
                   horizon_days=m["horizon_days"], calib_x=m["calib_x"], calib_y=m["calib_y"],
                   scale=m["scale"], params=m["params"], info=m["info"])


def _fold_ids(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    ids = np.arange(n) % k
    rng.shuffle(ids)
    return ids


def _fit_part(params: dict, x: np.ndarray, y: np.ndarray, w: np.ndarray | None, fold: np.ndarray, k: int,
              features: list[str], num_boost_round: int, early_stopping_rounds: int,
              rows: np.ndarray | None = None) -> lgb.Booster:
    """One booster early-stopped on inner fold k (only `rows` of the data, when given), cut at its best round."""
    use = np.ones(len(y), dtype=bool) if rows is None else rows
    tr, va = use & (fold != k), use & (fold == k)
    dtr = lgb.Dataset(x[tr], y[tr], weight=None if w is None else w[tr], feature_name=features, free_raw_data=False)
    dva = lgb.Dataset(x[va], y[va], weight=None if w is None else w[va], reference=dtr)
    b = lgb.train(params, dtr, num_boost_round=num_boost_round, valid_sets=[dva],
                  callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)])
    return lgb.Booster(model_str=b.model_to_string(num_iteration=b.best_iteration))


def train(
    df: pd.DataFrame,
    horizon_days: int,
    target: str = TARGET,
    features: Sequence[str] | None = None,
    params: dict | None = None,
    inner_folds: int = 4,
    repeats: int = 1,
    refit: bool = True,
    num_boost_round: int = 3000,
    early_stopping_rounds: int = 100,
    calibration_bins: int = 20,
    quantiles: dict[str, float] | None = None,
    seed: int = 0,
    count_target: str | None = COUNT_TARGET,
) -> ClvModel:
    """Train on one row per customer with `target` = spend in the horizon after the cutoff.

    Two-part model when `count_target` (purchase days in the horizon) is a column of `df`, else one Tweedie
    booster of spend (see the module doc). Every split is by customer (rows are customers). Inner K-fold CV
    gives early stopping per booster and out-of-fold predictions, on which the calibration map and total
    scale are fitted; nothing outside `df` is used, so in a backtest this stays inside the outer training
    folds. `repeats` > 1 repeats the CV with other fold assignments (averaged out-of-fold predictions).
    `refit` (default): each part is one booster refitted on every training customer for the mean
    early-stopping round count (4x fewer trees to evaluate when scoring); otherwise the CV boosters' mean.
    """
    if len(df) < 10 * inner_folds:
        raise ValueError(f"CLV model needs at least {10 * inner_folds} customers to train, got {len(df)}")
    features = list(features) if features is not None else feature_columns(df, target)
    features = [f for f in features if f != count_target]
    if not features:
        raise ValueError("CLV model: no numeric feature columns in the training frame")
    p = {**DEFAULT_PARAMS, "num_threads": _threads(len(df)), **(params or {}), "seed": seed}
    if "min_data_in_leaf" not in (params or {}):   # a few hundred customers: 80 rows per leaf allow no split
        p["min_data_in_leaf"] = min(p["min_data_in_leaf"], max(5, len(df) // 20))
    quantiles = quantiles or QUANTILES
    x = _matrix(df, features)
    y = np.clip(df[target].astype("float64").to_numpy(), 0.0, None)  # net returns below zero -> 0 spend
    two_part = count_target is not None and count_target in df.columns
    if two_part:
        base = {k: v for k, v in p.items() if k not in _OBJECTIVE_KEYS}
        count_params, value_params = {**base, **COUNT_PARAMS}, {**base, **ORDER_VALUE_PARAMS}
        n = np.clip(df[count_target].astype("float64").to_numpy(), 0.0, None)
        # Spend per purchase day, for customers who bought and kept something (Gamma needs a positive label).
        bought = (n > 0) & (y > 0)
        order_value = np.where(bought, y / np.maximum(n, 1.0), 0.0)
        if bought.sum() < 2 * inner_folds:
            raise ValueError(f"CLV model needs at least {2 * inner_folds} buyers in the horizon, got {bought.sum()}")
    rng = np.random.default_rng(seed)
    oof = np.zeros(len(df))
    boosters, value_boosters, best_iters, value_iters = [], [], [], []
    for r in range(max(1, repeats)):
        fold = _fold_ids(len(df), inner_folds, rng)
        if r == 0:
            first_fold = fold
        for k in range(inner_folds):
            va = fold == k
            fit_seed = seed + 100 * r + k
            if two_part:
                b = _fit_part({**count_params, "seed": fit_seed}, x, n, None, fold, k, features, num_boost_round,
                              early_stopping_rounds)
                v = _fit_part({**value_params, "seed": fit_seed}, x, order_value, n, fold, k, features,
                              num_boost_round, early_stopping_rounds, rows=bought)
                oof[va] += b.predict(x[va]) * v.predict(x[va]) / max(1, repeats)
                value_boosters.append(v)
                value_iters.append(int(v.current_iteration()))
            else:
                b = _fit_part({**p, "seed": fit_seed}, x, y, None, fold, k, features, num_boost_round,
                              early_stopping_rounds)
                oof[va] += b.predict(x[va]) / max(1, repeats)
            boosters.append(b)
            best_iters.append(int(b.current_iteration()))
    fold = first_fold
    if refit:
        def rounds(iters: list[int]) -> int:
            return max(1, int(round(float(np.mean(iters)))))

        if two_part:
            boosters = [lgb.train(count_params, lgb.Dataset(x, n, feature_name=features), rounds(best_iters))]
            value_boosters = [lgb.train(value_params, lgb.Dataset(x[bought], order_value[bought], weight=n[bought],
                                                                  feature_name=features), rounds(value_iters))]
        else:
            boosters = [lgb.train(p, lgb.Dataset(x, y, feature_name=features), rounds(best_iters))]

    kx, ky = _piecewise_fit(oof, y, bins=min(calibration_bins, max(len(df) // 50, 2)))
    calibrated = _piecewise_apply(oof, kx, ky)
    scale = float(y.sum() / calibrated.sum()) if calibrated.sum() > 0 else 1.0

    # Quantile boosters: one split (fold 0 held out) for early stopping on the pinball loss.
    qboosters = {}
    qparams = {k: v for k, v in p.items() if k not in _OBJECTIVE_KEYS}
    for name, alpha in quantiles.items():
        qboosters[name] = _fit_part({**qparams, "objective": "quantile", "alpha": alpha, "learning_rate": 0.15},
                                    x, y, None, fold, 0, features, 1000, 50)

    info = {
        "n_train": int(len(df)), "inner_folds": inner_folds, "repeats": repeats, "best_iterations": best_iters,
        "model": "poisson purchases x gamma order value" if two_part else "tweedie spend",
        "order_value_best_iterations": value_iters,
        "refit": refit, "n_trees": [int(b.current_iteration()) for b in boosters + value_boosters],
        "target": target, "target_mean": float(y.mean()), "target_zero_share": float((y == 0).mean()),
        "oof_total_ratio_before_scale": float(calibrated.sum() / y.sum()) if y.sum() > 0 else None,
        "quantiles": quantiles,
    }
    return ClvModel(features=features, boosters=boosters, quantile_boosters=qboosters,
                    order_value_boosters=value_boosters, horizon_days=int(horizon_days), calib_x=kx, calib_y=ky,
                    scale=scale, params={**p, **({"count": count_params, "order_value": value_params}
                                                 if two_part else {})}, info=info)


# -- baselines and evaluation --------------------------------------------------------------------

def naive_baseline(df: pd.DataFrame, horizon_days: int, time_unit_days: float = 1.0) -> np.ndarray:
    """Past spend rate × horizon: spend so far / tenure (T, first purchase to cutoff), with the tenure floored
    at the horizon so a customer seen for a few days is not extrapolated from those days to a whole horizon."""
    spend = df["total_spend"] if "total_spend" in df.columns else df["monetary_value"] * (df["frequency"] + 1)
    tenure_days = np.maximum(df["T"].astype("float64").to_numpy() * time_unit_days, float(horizon_days))
    return np.maximum(spend.astype("float64").to_numpy(), 0.0) / tenure_days * horizon_days


def compare(actual, predictions: dict[str, np.ndarray]) -> pd.DataFrame:
    """clv_metrics of each named prediction against the same `actual`; one row per model."""
    from clv_platform.lib.metrics import clv_metrics

    actual = np.asarray(actual, dtype="float64")
    rows = {name: clv_metrics(actual, np.asarray(pred, dtype="float64")) for name, pred in predictions.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


# -- MLflow ----------------------------------------------------------------------------------------

def log_to_mlflow(model: ClvModel, example: pd.DataFrame, name: str = "clv_model",
                  registered_model_name: str | None = None):
    """Log `model` as an MLflow pyfunc (with signature) in the active run; returns the ModelInfo."""
    from clv_platform.lib import registry

    example = example[model.input_columns].head(200)   # as the warehouse types them (counts are integers)
    return registry.log_model_dir(model, "clv_model", example, ("lightgbm", "pandas", "numpy"),
                                  name, registered_model_name)


def load_from_mlflow(model_uri: str) -> ClvModel:
    """The ClvModel behind a pyfunc logged by `log_to_mlflow` (e.g. 'models:/clv_model@production')."""
    from clv_platform.lib import registry

    return ClvModel.load(registry.model_dir_from_uri(model_uri, "clv_model.json"))
