"""CLV ranking and accuracy metrics (Wang, Liu & Miao 2019 usage), defined precisely.

All take `actual` (realised holdout spend per customer) and `predicted` (same order, same length).

* mae, rmse: mean absolute / root mean squared error.
* spearman: Spearman rank correlation (average ranks for ties); NaN when either side is constant.
* gain curve: customers sorted by prediction, highest first; L(k) = share of total actual in the first k.
  Tied predictions are not ordered by anything else: inside a group of equal predictions every member gets
  the group's mean actual, i.e. the gain curve is the expectation over random orderings of the ties.
* gini(actual, predicted) = (1/n) Σ_{k=1..n} L(k) − (n+1)/(2n)  (area between the discrete gain curve and
  the diagonal; 0 for a random ranking).
  normalized_gini = gini(actual, predicted) / gini(actual, actual): 1 for the perfect ranking.
* top10_capture = L(⌈n/10⌉): share of total actual value held by the top 10 % of customers by prediction.
* decile_mape: customers sorted by prediction (ties by position) and cut into 10 groups of (near-)equal
  size; with P̄_d and Ā_d the mean prediction and mean actual of group d,
  decile_mape = Σ_d |P̄_d − Ā_d| / Σ_d Ā_d. This is the decile MAPE weighted by the actual decile means
  (a WAPE over deciles): plain per-decile MAPE is undefined when low deciles have zero actual spend, which is
  the norm for CLV (most customers buy nothing in a holdout).
* total_bias = (Σ predicted − Σ actual) / Σ actual.
* bootstrap_sd: standard deviation of each metric (but spearman) over resamples of the customers with
  replacement: how much a figure moves with the sample of customers alone, to read goal thresholds against
  (on CDNOW's 23,570 customers top10_capture moves by ±0.011, normalized_gini by about ±0.01).
* psi / psi_categorical: population stability index between two scorings' distributions (not a CLV
  metric: how far the scores moved, see below).
"""

import math

import numpy as np

METRIC_NAMES = ("mae", "rmse", "spearman", "normalized_gini", "top10_capture", "decile_mape", "total_bias")


def _arrays(actual, predicted) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float).ravel()
    p = np.asarray(predicted, dtype=float).ravel()
    if a.shape != p.shape:
        raise ValueError(f"actual and predicted differ in length: {a.shape[0]} vs {p.shape[0]}")
    if a.size == 0:
        raise ValueError("no customers to score")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(p))):
        raise ValueError("actual and predicted must be finite (found NaN or inf)")
    return a, p


def gain_curve(actual, predicted) -> np.ndarray:
    """L(k) for k = 1..n (see module doc), tie-averaged within equal predictions."""
    a, p = _arrays(actual, predicted)
    order = np.argsort(-p, kind="stable")
    ps, as_ = p[order], a[order]
    # mean actual within runs of equal prediction
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    sums = np.add.reduceat(as_, starts)
    counts = np.diff(np.r_[starts, len(ps)])
    smoothed = np.repeat(sums / counts, counts)
    total = a.sum()
    if total == 0:
        return np.full(len(a), np.nan)
    return np.cumsum(smoothed) / total


def gini(actual, predicted) -> float:
    curve = gain_curve(actual, predicted)
    n = len(curve)
    return float(curve.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual, predicted) -> float:
    perfect = gini(actual, actual)
    if not perfect or math.isnan(perfect):
        return float("nan")
    return gini(actual, predicted) / perfect


def top_capture(actual, predicted, share: float = 0.10) -> float:
    curve = gain_curve(actual, predicted)
    k = max(1, math.ceil(len(curve) * share - 1e-9))
    return float(curve[k - 1])


def decile_table(actual, predicted, groups: int = 10) -> list[dict]:
    """Per prediction decile (1 = highest predictions): n, mean predicted, mean actual."""
    a, p = _arrays(actual, predicted)
    order = np.argsort(-p, kind="stable")
    rows = []
    for d, idx in enumerate(np.array_split(order, groups), 1):
        if len(idx):
            rows.append({"decile": d, "n": int(len(idx)), "mean_predicted": float(p[idx].mean()),
                         "mean_actual": float(a[idx].mean())})
    return rows


def decile_mape(actual, predicted, groups: int = 10) -> float:
    rows = decile_table(actual, predicted, groups)
    denom = sum(r["mean_actual"] for r in rows)
    if denom == 0:
        return float("nan")
    return float(sum(abs(r["mean_predicted"] - r["mean_actual"]) for r in rows) / denom)


def clv_metrics(actual, predicted, spearman: bool = True) -> dict:
    """mae, rmse, spearman (unless `spearman` is False), normalized_gini, top10_capture, decile_mape,
    total_bias (see module doc)."""
    a, p = _arrays(actual, predicted)
    err = p - a
    total = a.sum()
    out = {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean()))}
    if spearman:
        from scipy.stats import (
            spearmanr,  # (imported here: the dashboard reads the PSI helpers without scipy)
        )

        out["spearman"] = float("nan") if np.ptp(a) == 0 or np.ptp(p) == 0 else float(spearmanr(a, p).statistic)
    return {
        **out,
        "normalized_gini": normalized_gini(a, p),
        "top10_capture": top_capture(a, p, 0.10),
        "decile_mape": decile_mape(a, p),
        "total_bias": float((p.sum() - total) / total) if total else float("nan"),
    }


def bootstrap_sd(actual, predicted, resamples: int = 100, seed: int = 0) -> dict:
    """Bootstrap standard deviation of each metric but spearman (see module doc); same resamples for every
    model scored with the same seed, so models' figures are compared on the same noise."""
    a, p = _arrays(actual, predicted)
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(resamples):
        i = rng.integers(0, len(a), len(a))
        rows.append(clv_metrics(a[i], p[i], spearman=False))
    return {k: float(np.nanstd([r[k] for r in rows], ddof=1)) for k in rows[0]}


# -- distribution shift between two scorings ------------------------------------------------------------

PSI_FLOOR = 1e-4      # a bin share below this counts as this (an empty bin would make the log infinite)
PSI_MODERATE, PSI_LARGE = 0.1, 0.25  # the usual reading: < 0.1 stable, 0.1-0.25 moderate, > 0.25 large shift
PSI_METRIC_PREFIX = "psi."  # a scoring's PSI per score, as `psi.<score>` among the snapshot manifest's metrics


def psi_metrics(metrics: dict | None) -> dict[str, float]:
    """{score: PSI} from a metrics dict holding `psi.<score>` entries (NaN dropped)."""
    n = len(PSI_METRIC_PREFIX)
    return {k[n:]: v for k, v in (metrics or {}).items() if k.startswith(PSI_METRIC_PREFIX) and v == v}


def psi(expected, actual, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected` (numbers): bins (-inf, q1], (q1, q2], ...,
    (q_last, inf) at the quantiles of `expected` (equal quantiles merged), Σ (a − e)·ln(a / e) over the bin
    shares, each share floored at PSI_FLOOR. NaN values are dropped; NaN when either side is empty."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e, a = e[~np.isnan(e)], a[~np.isnan(a)]
    if not len(e) or not len(a):
        return float("nan")
    edges = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1]))
    e_share = np.bincount(np.searchsorted(edges, e, side="left"), minlength=len(edges) + 1) / len(e)
    a_share = np.bincount(np.searchsorted(edges, a, side="left"), minlength=len(edges) + 1) / len(a)
    return _psi_of_shares(e_share, a_share)


def psi_categorical(expected, actual) -> float:
    """PSI over the categories' shares (a category on one side only has share 0, floored, on the other)."""
    e, a = _shares(expected), _shares(actual)
    if not e or not a:
        return float("nan")
    keys = sorted(set(e) | set(a))
    return _psi_of_shares(np.array([e.get(k, 0.0) for k in keys]), np.array([a.get(k, 0.0) for k in keys]))


def _shares(values) -> dict:
    values = [v for v in values if v is not None and v == v]
    if not values:
        return {}
    keys, counts = np.unique(np.asarray(values, dtype=object).astype(str), return_counts=True)
    return dict(zip(keys.tolist(), (counts / counts.sum()).tolist(), strict=True))


def _psi_of_shares(e: np.ndarray, a: np.ndarray) -> float:
    e, a = np.maximum(e, PSI_FLOOR), np.maximum(a, PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))
