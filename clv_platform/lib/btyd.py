"""BTYD models: BG/NBD + Gamma-Gamma (and Pareto/NBD as an alternative), fitted with `lifetimes`.

Fitting happens on COMPRESSED rows: customers with identical (frequency, recency, T) are collapsed into one row
with a `weights` count (Fader & Hardie's condensed RFM matrix). The likelihood is the same, so the parameters
are the same as on the uncompressed rows, but the optimiser evaluates thousands instead of millions of rows.

Time unit: the models are fitted in `time_unit_days` (default 7 = weeks). Weeks keep the scale parameters
(alpha, beta) of order 1-10 for daily-stamped data of a few years, which is what the optimiser starts from.
Input frames carry recency and T in `input_unit_days` (default 1 = days, the unit of features.customer_features).

Predictions use vectorised closed forms (numpy/scipy), evaluated on unique (frequency, T) pairs for the
hypergeometric part and broadcast back to customers, so one million customers take well under a second.

Note on lifetimes 0.11.3 + pandas 2.3: we always hand the fitters plain float numpy arrays (`_as_float`) and
clip recency to T after the unit conversion. In this venv, float64 Series fit fine; object-dtype columns fail
inside np.log, and a recency that exceeds T by float rounding (separately converted units) trips lifetimes'
"recency larger than T" check — both are excluded by construction here.
"""

import contextlib
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter
from lifetimes.utils import ConvergenceError
from scipy.optimize import minimize
from scipy.special import expit, gammaln, hyp2f1

from clv_platform.lib import warehouse

WEEK_DAYS = 7.0
DAYS_PER_YEAR = 365.25
CLV_HORIZON_DAYS = 365          # btyd_clv's horizon and annual discount rate unless a caller says otherwise
CLV_DISCOUNT_RATE_ANNUAL = 0.10
PREDICTION_COLUMNS = [
    "customer_id",
    "p_alive",
    "expected_purchases_30d",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_avg_order_value",
    "btyd_clv",
]

# Starting points tried in order (log-parameters, as lifetimes' optimiser takes them), then small penalizers.
_BGNBD_STARTS = [None, np.log([0.5, 5.0, 0.8, 2.5]), np.zeros(4), np.log([1.0, 10.0, 1.0, 5.0])]
_GG_STARTS = [None, np.log([5.0, 3.0, 15.0]), np.zeros(3), np.log([2.0, 2.0, 50.0])]
_PARETO_STARTS = [None, np.log([0.5, 10.0, 0.5, 10.0]), np.zeros(4)]
_PENALIZERS = [0.0, 1e-6, 1e-4, 1e-3]
# Above this many compressed rows, a fit on a random ~WARM_START_CUSTOMERS-customer subsample gives the
# first start (and BFGS's initial inverse Hessian).
WARM_START_ABOVE_ROWS = 20_000
WARM_START_CUSTOMERS = 20_000


class BtydFitError(RuntimeError):
    """A BTYD model did not converge from any starting point or penalizer that was tried."""


@dataclass
class FittedModel:
    """One fitted lifetimes model plus what we report about it."""

    name: str
    fitter: object
    params: dict[str, float]
    std_errors: dict[str, float]
    log_likelihood: float  # total over customers, in the model's time unit (constants included)
    n_customers: int
    n_rows: int  # compressed rows the optimiser saw
    penalizer: float
    attempts: int

    def as_dict(self) -> dict:
        return {
            "params": self.params,
            "std_errors": self.std_errors,
            "log_likelihood": self.log_likelihood,
            "n_customers": self.n_customers,
            "n_rows": self.n_rows,
            "penalizer": self.penalizer,
            "attempts": self.attempts,
        }


@dataclass
class BtydModels:
    bgnbd: FittedModel
    gamma_gamma: FittedModel | None
    time_unit_days: float = WEEK_DAYS
    pareto: FittedModel | None = None
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-friendly description: params, std errors, LL, counts per model."""
        out = {"time_unit_days": self.time_unit_days, "bgnbd": self.bgnbd.as_dict()}
        out["gamma_gamma"] = self.gamma_gamma.as_dict() if self.gamma_gamma else None
        if self.pareto is not None:
            out["pareto_nbd"] = self.pareto.as_dict()
        return out


# ----------------------------------------------------------------------------------------------- helpers


def _as_float(values) -> np.ndarray:
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float)


def compress(*columns) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Collapse identical rows of the given equal-length columns.

    Returns (unique columns, weights = rows per unique combination, inverse index so that
    unique[inverse] == original)."""
    cols = [_as_float(c) for c in columns]
    codes = None
    for c in cols:
        code, uniq = pd.factorize(c, sort=False)
        if codes is None:
            codes = code.astype(np.int64)
        else:  # mixed-radix key, re-factorized so it stays small and exact
            codes = pd.factorize(codes * np.int64(len(uniq)) + code, sort=False)[0].astype(np.int64)
    inverse, first = pd.factorize(codes, sort=False)
    first_idx = np.empty(len(first), dtype=np.int64)
    first_idx[inverse] = np.arange(len(inverse))  # any row of each group: they are identical
    weights = np.bincount(inverse, minlength=len(first)).astype(float)
    return [c[first_idx] for c in cols], weights, inverse


@contextlib.contextmanager
def _quiet():
    """lifetimes prints the optimiser result on failure; keep stdout clean (the CLI prints JSON there)."""
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            yield


def _fit_with_retries(name, make_fitter, fit_args, starts, penalizers=_PENALIZERS):
    """Try each start with penalizers[0] (normally 0), then each further penalizer from lifetimes' default
    start; the first success wins. A start is None (lifetimes' default), log-parameters, or
    (log-parameters, extra scipy options such as hess_inv0)."""
    errors = []
    attempts = 0
    plan = [(s, penalizers[0]) for s in starts] + [(None, p) for p in penalizers[1:]]
    for start, pen in plan:
        attempts += 1
        fitter = make_fitter(pen)
        start, options = start if isinstance(start, tuple) else (start, {})
        try:
            with _quiet():
                fitter.fit(*fit_args, initial_params=start, **options)
            params = fitter.params_.to_numpy(dtype=float)
            if not np.all(np.isfinite(params)) or np.any(params <= 0):
                raise ValueError(f"non-finite or non-positive parameters {params}")
            return fitter, pen, attempts
        except Exception as exc:  # lifetimes raises ConvergenceError, LinAlgError, ValueError...
            errors.append(f"start={None if start is None else np.round(np.exp(start), 3).tolist()} "
                          f"penalizer={pen}: {type(exc).__name__}: {str(exc).strip()[:120]}")
    raise BtydFitError(
        f"{name} did not converge after {attempts} attempts ({'; '.join(errors)}). Try: a different time unit "
        "(time_unit_days; weeks suit daily data over months-years), a larger penalizer (penalizer_coef ~0.001-0.1), "
        "dropping customers with implausible frequency (bots, resellers), or a longer calibration window. "
        "Note that transactions at uniformly random times do not follow BG/NBD and make the fitters diverge."
    )


def _std_errors(fitter) -> dict[str, float]:
    try:
        se = fitter.standard_errors_
        return {k: float(v) for k, v in se.items()}
    except Exception:  # singular Hessian
        return {k: float("nan") for k in fitter.params_.index}


class _FdHessianMixin:
    """lifetimes' BaseFitter._fit (same likelihood, same autograd gradient, same BFGS and tolerance), except that
    the Hessian at the optimum (for the standard errors) comes from central differences of the autograd
    gradient: 2·k gradient evaluations instead of autograd's nested-Jacobian Hessian, which costs as much as
    the whole optimisation once the start is good. Agrees with autograd's to ~1e-7 relative."""

    def _fit(self, minimizing_function_args, initial_params, params_size, disp, tol=1e-7, bounds=None, **kwargs):
        from autograd import value_and_grad

        value_grad = value_and_grad(self._negative_log_likelihood)
        x0 = 0.1 * np.ones(params_size) if initial_params is None else np.asarray(initial_params, dtype=float)
        output = minimize(value_grad, jac=True, method=None, tol=tol, x0=x0, args=minimizing_function_args,
                          options={"disp": disp, **kwargs}, bounds=bounds)
        if not output.success:
            raise ConvergenceError(f"The model did not converge: {output.message}")
        h = 1e-4
        cols = []
        for j in range(params_size):
            step = np.zeros(params_size)
            step[j] = h
            g_plus = value_grad(output.x + step, *minimizing_function_args)[1]
            g_minus = value_grad(output.x - step, *minimizing_function_args)[1]
            cols.append((np.asarray(g_plus) - np.asarray(g_minus)) / (2 * h))
        hess = np.column_stack(cols)
        return output.x, output.fun, (hess + hess.T) / 2


class BetaGeoFitterFD(_FdHessianMixin, BetaGeoFitter):
    """lifetimes.BetaGeoFitter with a finite-difference Hessian (see _FdHessianMixin)."""


class GammaGammaFitterFD(_FdHessianMixin, GammaGammaFitter):
    """lifetimes.GammaGammaFitter with a finite-difference Hessian (see _FdHessianMixin)."""


# ----------------------------------------------------------------------------------------------- log-likelihoods


def bgnbd_log_likelihood(params, x, tx, T, weights=None) -> float:
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    w = np.ones_like(x) if weights is None else weights
    nll = BetaGeoFitter._negative_log_likelihood(np.log([r, alpha, a, b]), x, tx, T, w, 0.0)
    return float(-nll * w.sum())


def gamma_gamma_log_likelihood(params, x, m, weights=None) -> float:
    p, q, v = (params[k] for k in ("p", "q", "v"))
    w = np.ones_like(x) if weights is None else weights
    nll = GammaGammaFitter._negative_log_likelihood(np.log([p, q, v]), x, m, w, 0.0)
    return float(-nll * w.sum())


def pareto_log_likelihood(params, x, tx, T, weights=None) -> float:
    vals = [params[k] for k in ("r", "alpha", "s", "beta")]
    w = np.ones_like(x) if weights is None else weights
    return float((w * ParetoNBDFitter._conditional_log_likelihood(vals, x, tx, T)).sum())


# ----------------------------------------------------------------------------------------------- fitting


def summary_arrays(summary_df, time_unit_days=WEEK_DAYS, input_unit_days=1.0):
    """(frequency, recency, T) of a lifetimes-style frame as float arrays in the model's time unit."""
    return _summary_arrays(summary_df, time_unit_days, input_unit_days)


def _summary_arrays(summary_df, time_unit_days, input_unit_days):
    scale = float(input_unit_days) / float(time_unit_days)
    x = np.rint(_as_float(summary_df["frequency"]))
    tx = _as_float(summary_df["recency"]) * scale
    T = _as_float(summary_df["T"]) * scale
    tx = np.minimum(tx, T)  # guard float noise from unit conversion
    tx[x == 0] = 0.0
    return x, tx, T


def _subsample_weights(w: np.ndarray, customers: int, seed: int = 0) -> np.ndarray:
    """Weights of a random subsample of about `customers` customers of the compressed rows."""
    rng = np.random.default_rng(seed)
    return rng.binomial(w.astype(np.int64), min(1.0, customers / w.sum())).astype(float)


def _warm_options(sub) -> dict:
    """BFGS's initial inverse Hessian from the subsample fit (the objective is a mean log-likelihood, so the
    curvature is on the same scale; shifting log(alpha) by the time scale does not change it)."""
    try:
        hess_inv = np.linalg.inv(np.asarray(sub._hessian_, dtype=float))
        hess_inv = (hess_inv + hess_inv.T) / 2
        if np.all(np.isfinite(hess_inv)) and np.all(np.linalg.eigvalsh(hess_inv) > 0):
            return {"hess_inv0": hess_inv}
    except Exception:
        pass
    return {}


def _bgnbd_warm_start(ux, utx, uT, w) -> tuple | None:
    """Log-parameters (in lifetimes' internal time scale 1/max(T)) and BFGS options from a fit on a random
    subsample. Starting the full fit next to its optimum, with the subsample's curvature, saves most BFGS
    iterations; the optimum itself is unchanged."""
    sw = _subsample_weights(w, WARM_START_CUSTOMERS)
    keep = sw > 0
    try:
        with _quiet():
            sub = BetaGeoFitterFD().fit(ux[keep].astype(int), utx[keep], uT[keep], sw[keep])
    except Exception:
        return None
    r, alpha, a, b = sub.params_[["r", "alpha", "a", "b"]].to_numpy(dtype=float)
    start = np.log([r, alpha / uT.max(), a, b])
    return (start, _warm_options(sub)) if np.all(np.isfinite(start)) else None


def fit_bgnbd(x, tx, T, compressed: bool = True, penalizer: float | None = None) -> FittedModel:
    """BG/NBD on (frequency, recency, T) arrays already in the model's time unit."""
    x, tx, T = (_as_float(v) for v in (x, tx, T))
    if compressed:
        (ux, utx, uT), w, _ = compress(x, tx, T)
    else:
        ux, utx, uT, w = x, tx, T, None
    args = (ux.astype(int), utx, uT) + (() if w is None else (w,))
    pens = _PENALIZERS if penalizer is None else [penalizer]
    starts = _BGNBD_STARTS if penalizer is None else [None]
    if w is not None and len(ux) > WARM_START_ABOVE_ROWS and penalizer is None:
        warm = _bgnbd_warm_start(ux, utx, uT, w)
        starts = ([warm] if warm is not None else []) + starts
    fitter, pen, attempts = _fit_with_retries(
        "BG/NBD", lambda p: BetaGeoFitterFD(penalizer_coef=p), args, starts, pens
    )
    params = {k: float(v) for k, v in fitter.params_.items()}
    ll = bgnbd_log_likelihood(params, ux, utx, uT, w)
    return FittedModel("bgnbd", fitter, params, _std_errors(fitter), ll, len(x), len(ux), pen, attempts)


def fit_gamma_gamma(x, m, compressed: bool = True) -> FittedModel:
    """Gamma-Gamma on repeat buyers (x > 0, m > 0) only; m = mean repeat-purchase value."""
    x, m = _as_float(x), _as_float(m)
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    x, m = x[keep], m[keep]
    if len(x) < 3:
        raise BtydFitError(f"Gamma-Gamma needs repeat buyers with positive spend; found {len(x)}.")
    if compressed:
        (ux, um), w, _ = compress(x, m)
    else:
        ux, um, w = x, m, None
    args = (ux, um) + (() if w is None else (w,))
    starts = _GG_STARTS
    if w is not None and len(ux) > WARM_START_ABOVE_ROWS:
        sw = _subsample_weights(w, WARM_START_CUSTOMERS)
        keep = sw > 0
        try:
            with _quiet():
                sub = GammaGammaFitterFD().fit(ux[keep], um[keep], sw[keep])
            starts = [(np.log(sub.params_[["p", "q", "v"]].to_numpy(dtype=float)), _warm_options(sub))] + starts
        except Exception:
            pass
    fitter, pen, attempts = _fit_with_retries(
        "Gamma-Gamma", lambda p: GammaGammaFitterFD(penalizer_coef=p), args, starts
    )
    params = {k: float(v) for k, v in fitter.params_.items()}
    ll = gamma_gamma_log_likelihood(params, ux, um, w)
    return FittedModel("gamma_gamma", fitter, params, _std_errors(fitter), ll, len(x), len(ux), pen, attempts)


def fit_pareto(x, tx, T) -> FittedModel:
    """Pareto/NBD on compressed rows (the alternative to BG/NBD; lifetimes gives it no Hessian)."""
    (ux, utx, uT), w, _ = compress(*(_as_float(v) for v in (x, tx, T)))
    fitter, pen, attempts = _fit_with_retries(
        "Pareto/NBD", lambda p: ParetoNBDFitter(penalizer_coef=p), (ux.astype(int), utx, uT, w), _PARETO_STARTS
    )
    params = {k: float(v) for k, v in fitter.params_.items()}
    ll = pareto_log_likelihood(params, ux, utx, uT, w)
    std = {k: float("nan") for k in params}
    return FittedModel("pareto_nbd", fitter, params, std, ll, len(x), len(ux), pen, attempts)


def compare_bgnbd_pareto(x, tx, T, max_customers: int = 20_000, seed: int = 0) -> dict:
    """BG/NBD vs Pareto/NBD log-likelihood on the same customers (all of them, or a random `max_customers`:
    lifetimes' Pareto/NBD fitter is gradient-free and slow on hundreds of thousands of rows)."""
    x, tx, T = (_as_float(v) for v in (x, tx, T))
    if len(x) > max_customers:
        idx = np.random.default_rng(seed).choice(len(x), max_customers, replace=False)
        x, tx, T = x[idx], tx[idx], T[idx]
    bg, pareto = fit_bgnbd(x, tx, T), fit_pareto(x, tx, T)
    return {
        "n_customers": len(x),
        "bgnbd_log_likelihood": bg.log_likelihood,
        "pareto_nbd_log_likelihood": pareto.log_likelihood,
        "pareto_nbd_params": pareto.params,
        "preferred": "BG/NBD" if bg.log_likelihood >= pareto.log_likelihood else "Pareto/NBD",
    }


def fit_btyd(
    summary_df: pd.DataFrame,
    time_unit_days: float = WEEK_DAYS,
    input_unit_days: float = 1.0,
    include_pareto: bool = False,
    compressed: bool = True,
) -> BtydModels:
    """Fit BG/NBD (+ Gamma-Gamma on repeat buyers, + optionally Pareto/NBD) on a lifetimes-style summary.

    summary_df: columns frequency, recency, T (in `input_unit_days`) and monetary_value (mean repeat value).
    """
    x, tx, T = _summary_arrays(summary_df, time_unit_days, input_unit_days)
    bg = fit_bgnbd(x, tx, T, compressed=compressed)
    gg = None
    if "monetary_value" in summary_df:
        gg = fit_gamma_gamma(x, _as_float(summary_df["monetary_value"]), compressed=compressed)
    pareto = fit_pareto(x, tx, T) if include_pareto else None
    return BtydModels(bgnbd=bg, gamma_gamma=gg, time_unit_days=float(time_unit_days), pareto=pareto)


# ----------------------------------------------------------------------------------------------- closed forms


def _frequency_T_index(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (frequency, T) pairs and the inverse index: T is hashed once, the pair becomes the integer
    frequency·n_T + code_T, grouped by a dense lookup table when that range is small (the usual case)."""
    code_t, t_values = pd.factorize(T, sort=False)
    n_t = max(len(t_values), 1)
    key = x.astype(np.int64) * n_t + code_t
    span = int(key.max()) + 1 if len(key) else 0
    if span <= 4 * len(key) + 1024:
        present = np.zeros(span, dtype=bool)
        present[key] = True
        ukeys = np.flatnonzero(present)
        lookup = np.empty(span, dtype=np.int64)
        lookup[ukeys] = np.arange(len(ukeys))
        inv = lookup[key]
    else:
        inv, ukeys = pd.factorize(key, sort=False)
    return (ukeys // n_t).astype(float), np.asarray(t_values, dtype=float)[ukeys % n_t], inv


def bgnbd_p_alive(params, x, tx, T) -> np.ndarray:
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    with np.errstate(all="ignore"):
        log_div = (r + x) * np.log((alpha + T) / (alpha + tx)) + np.log(a / (b + np.maximum(x, 1) - 1))
    return np.where(x == 0, 1.0, expit(-log_div))


def _bgnbd_unconditional_part(params, x, T, t) -> np.ndarray:
    """E[Y(t) | x, t_x, T] / P(alive) = (a+b+x-1)/(a-1) [1 - ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],
    z = t/(α+T+t). Evaluated through Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z):
    ((α+T)/(α+T+t))^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose small upper parameters stay finite for heavy
    buyers with long horizons (the textbook form overflows there, e.g. x = 300, T = 1, t = 52). Where it is
    not finite itself (very large a and b, as fitted on a few weeks of history), the textbook form is used."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    with np.errstate(all="ignore"):
        base = alpha + T
        z = t / (base + t)
        ratio = np.log(base / (base + t))
        euler = np.exp((a - 1) * ratio) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        if not np.all(np.isfinite(euler)):
            textbook = np.exp((r + x) * ratio) * hyp2f1(r + x, b + x, a + b + x - 1, z)
            euler = np.where(np.isfinite(euler), euler, textbook)
        return (a + b + x - 1) / (a - 1) * (1.0 - euler)


def bgnbd_conditional_expected(params, t, x, tx, T) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T] under BG/NBD (Fader, Hardie & Lee 2005, eq. 10)."""
    x, tx, T = (_as_float(v) for v in (x, tx, T))
    return _bgnbd_unconditional_part(params, x, T, t) * bgnbd_p_alive(params, x, tx, T)


def bgnbd_expected_unconditional(params, t) -> np.ndarray:
    """E[X(t)] for a new customer (eq. 9): the cumulative-tracking curve."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    t = _as_float(t)
    with np.errstate(all="ignore"):
        return (a + b - 1) / (a - 1) * (
            1.0 - np.exp(r * np.log(alpha / (alpha + t))) * hyp2f1(r, b, a + b - 1, t / (alpha + t))
        )


def bgnbd_pmf(params, t, n_max) -> np.ndarray:
    """P(X(t) = n) for n = 0..n_max (FHL 2005 eq. 8): shape (n_max+1,) for scalar t, (len(t), n_max+1) else."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    scalar = np.ndim(t) == 0
    t = np.atleast_1d(_as_float(t))[:, None]
    n = np.arange(n_max + 1, dtype=float)[None, :]
    log_beta = gammaln(a) + gammaln(b) - gammaln(a + b)
    with np.errstate(all="ignore"):
        # NBD(r, alpha) probabilities of j purchases by t, j = 0..n_max
        log_nbd = (gammaln(r + n) - gammaln(r) - gammaln(n + 1) + r * np.log(alpha / (alpha + t))
                   + n * np.log(t / (alpha + t)))
        log_nbd = np.where(t > 0, log_nbd, np.where(n == 0, 0.0, -np.inf))
        nbd = np.exp(log_nbd)
        below = np.cumsum(nbd, axis=1) - nbd  # P(NBD < n)
        lb1 = gammaln(a) + gammaln(b + n) - gammaln(a + b + n) - log_beta
        lb2 = gammaln(a + 1) + gammaln(b + n - 1) - gammaln(a + b + n) - log_beta
        out = np.exp(lb1) * nbd + np.where(n > 0, np.exp(lb2) * (1.0 - below), 0.0)
    return out[0] if scalar else out


def gamma_gamma_expected_value(params, x, m) -> np.ndarray:
    """E[M | x, m̄] = (v p + p x m̄) / (p x + q - 1) (Fader & Hardie's note 025, eq. 5); the population mean
    v p / (q - 1) for x = 0 or m̄ <= 0. With q <= 1 (heavy-tailed order values) that mean is infinite and the
    formula turns negative for x = 0: the repeat buyers' mean m̄ stands in for it there."""
    p, q, v = (params[k] for k in ("p", "q", "v"))
    x = _as_float(x)
    m = np.nan_to_num(_as_float(m), nan=0.0)
    repeat = (x > 0) & (m > 0)
    if q > 1:
        pop = v * p / (q - 1)
    else:
        pop = float(m[repeat].mean()) if repeat.any() else float("nan")
    den = p * x + q - 1
    with np.errstate(all="ignore"):
        conditional = (v * p + p * x * m) / den
    return np.where(repeat & (den > 0), conditional, pop)


# ----------------------------------------------------------------------------------------------- prediction


def predict(
    models: BtydModels,
    features_df: pd.DataFrame,
    horizon_days: float = CLV_HORIZON_DAYS,
    discount_rate_annual: float = CLV_DISCOUNT_RATE_ANNUAL,
    input_unit_days: float = 1.0,
    step_days: float = DAYS_PER_YEAR / 12,
) -> pd.DataFrame:
    """Per-customer BTYD predictions.

    btyd_clv = E[avg order value] × Σ_i (E[Y(t_i)] − E[Y(t_{i−1})]) / (1 + discount_rate_annual)^(t_i / 365.25),
    with t_i = i·horizon/n, n = round(horizon_days / step_days) (monthly by default): purchases expected in
    each step, valued at the Gamma-Gamma expected order value, discounted at the step's end — lifetimes'
    customer_lifetime_value with an annual rate and any time unit. The hypergeometric part depends on
    (frequency, T) only, so it is evaluated once per unique pair and broadcast.
    """
    bg = models.bgnbd.params
    x, tx, T = _summary_arrays(features_df, models.time_unit_days, input_unit_days)
    unit = models.time_unit_days
    ux, uT, inv = _frequency_T_index(x, T)
    p_alive = bgnbd_p_alive(bg, x, tx, T)

    def cond(days):
        return _bgnbd_unconditional_part(bg, ux, uT, days / unit)[inv] * p_alive

    n_steps = max(1, int(round(horizon_days / step_days)))
    times = np.arange(1, n_steps + 1) * (horizon_days / n_steps)
    disc = (1.0 + discount_rate_annual) ** (-times / DAYS_PER_YEAR)
    prev = np.zeros(len(ux))
    acc = np.zeros(len(ux))
    for t_days, d in zip(times, disc, strict=True):
        cur = _bgnbd_unconditional_part(bg, ux, uT, t_days / unit)
        acc += (cur - prev) * d
        prev = cur
    discounted_purchases = acc[inv] * p_alive

    if models.gamma_gamma is not None and "monetary_value" in features_df:
        aov = gamma_gamma_expected_value(models.gamma_gamma.params, x, features_df["monetary_value"])
    else:
        aov = np.full(len(x), np.nan)
    # one 2-D float block, filled in place: avoids pandas copying six 1M-long columns into a block
    values = np.empty((6, len(x)))
    values[0] = p_alive
    values[1] = cond(30.0)
    values[2] = cond(90.0)
    values[3] = cond(365.0)
    values[4] = aov
    values[5] = discounted_purchases * aov
    out = pd.DataFrame(values.T, columns=PREDICTION_COLUMNS[1:], copy=False)
    ids = features_df["customer_id"].to_numpy() if "customer_id" in features_df else np.arange(len(x))
    out.insert(0, "customer_id", ids)
    return out


def expected_holdout_purchases(models: BtydModels, features_df, horizon_days, input_unit_days=1.0, model="bgnbd"):
    """Expected purchases in the `horizon_days` after the features' as-of date (BG/NBD or Pareto/NBD)."""
    x, tx, T = _summary_arrays(features_df, models.time_unit_days, input_unit_days)
    t = horizon_days / models.time_unit_days
    if model == "bgnbd":
        ux, uT, inv = _frequency_T_index(x, T)
        return _bgnbd_unconditional_part(models.bgnbd.params, ux, uT, t)[inv] * bgnbd_p_alive(
            models.bgnbd.params, x, tx, T
        )
    if model == "pareto_nbd":
        if models.pareto is None:
            raise ValueError("Pareto/NBD was not fitted (fit_btyd(include_pareto=True))")
        (ux, utx, uT), _, inv = compress(x, tx, T)
        with _quiet():
            vals = models.pareto.fitter.conditional_expected_number_of_purchases_up_to_time(t, ux, utx, uT)
        return np.asarray(vals, dtype=float)[inv]
    raise ValueError(f"unknown model {model!r}")


# ----------------------------------------------------------------------------------------------- simulation


def simulate_bgnbd(
    n_customers: int,
    params: dict,
    T: np.ndarray | float,
    gg_params: dict | None = None,
    seed: int = 0,
    recency_grid: float | None = None,
) -> pd.DataFrame:
    """Draw calibration summaries from the BG/NBD (+ Gamma-Gamma) process itself, vectorised.

    λ ~ Gamma(r, rate α), p ~ Beta(a, b); after each REPEAT purchase the customer drops out with prob. p,
    so the number of repeat purchases before dropout is K ~ Geometric(p) on {1, 2, ...}; purchases arrive as a
    Poisson(λ) process on (0, T]. x = min(N(T), K) and, given N(T) = n, the x-th arrival time is T·Beta(x, n−x+1)
    (order statistics of uniforms). Spend: ν ~ Gamma(q, rate γ), z ~ Gamma(p, rate ν), so the mean of x repeat
    values is Gamma(p·x, rate ν·x). `recency_grid` rounds recency down to a grid (e.g. 1/7 for days in weeks).
    Columns: customer_id, frequency, recency, T, monetary_value (0 when x = 0), in the params' time unit.
    """
    rng = np.random.default_rng(seed)
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    T = np.broadcast_to(np.asarray(T, dtype=float), (n_customers,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n_customers)
    p = rng.beta(a, b, n_customers)
    n_arrivals = rng.poisson(lam * T)
    k_alive = rng.geometric(np.clip(p, 1e-12, 1.0))
    x = np.minimum(n_arrivals, k_alive)
    tx = np.zeros(n_customers)
    rep = x > 0
    tx[rep] = T[rep] * rng.beta(x[rep], n_arrivals[rep] - x[rep] + 1)
    if recency_grid:
        tx = np.floor(tx / recency_grid + 1e-9) * recency_grid
        tx = np.minimum(tx, T)
    m = np.zeros(n_customers)
    if gg_params is not None:
        gp, gq, gv = (gg_params[k] for k in ("p", "q", "v"))
        nu = rng.gamma(gq, 1.0 / gv, n_customers)
        m[rep] = rng.gamma(gp * x[rep], 1.0 / (nu[rep] * x[rep]))
    return pd.DataFrame(
        {"customer_id": np.arange(n_customers), "frequency": x.astype(np.int64), "recency": tx, "T": T,
         "monetary_value": m}
    )


# ----------------------------------------------------------------------------------------------- persistence

PARAMS_TABLE = "models.btyd_params"


def params_rows(fitted: FittedModel, time_unit_days: float, as_of) -> pd.DataFrame:
    """One row per parameter of a fitted model, for the models.btyd_params table."""
    return pd.DataFrame(
        {
            "model": fitted.name,
            "param": list(fitted.params),
            "value": list(fitted.params.values()),
            "std_error": [fitted.std_errors.get(k, float("nan")) for k in fitted.params],
            "log_likelihood": fitted.log_likelihood,
            "n_customers": fitted.n_customers,
            "n_rows": fitted.n_rows,
            "penalizer": fitted.penalizer,
            "time_unit_days": float(time_unit_days),
            "as_of_date": pd.Timestamp(as_of).date() if as_of is not None else None,
        }
    )


def write_params(con, fitted: FittedModel, time_unit_days: float, as_of) -> None:
    """Replace `fitted.name`'s rows of models.btyd_params, in one transaction."""
    rows = params_rows(fitted, time_unit_days, as_of)
    con.execute("CREATE SCHEMA IF NOT EXISTS models")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {PARAMS_TABLE} (model VARCHAR, param VARCHAR, value DOUBLE, std_error DOUBLE, "
        "log_likelihood DOUBLE, n_customers BIGINT, n_rows BIGINT, penalizer DOUBLE, time_unit_days DOUBLE, "
        "as_of_date DATE)"
    )
    with warehouse.transaction(con, _btyd_params_rows=rows):
        con.execute(f"DELETE FROM {PARAMS_TABLE} WHERE model = ?", [fitted.name])
        con.execute(f"INSERT INTO {PARAMS_TABLE} SELECT * FROM _btyd_params_rows")


def models_from_params(rows: pd.DataFrame) -> BtydModels:
    """BtydModels (parameters only, no lifetimes object) from models.btyd_params rows; enough for predict()."""
    fitted = {}
    units = set()
    for name, grp in rows.groupby("model"):
        first = grp.iloc[0]
        if name != "gamma_gamma":  # Gamma-Gamma has no time unit
            units.add(float(first["time_unit_days"]))
        fitted[name] = FittedModel(
            name, None, dict(zip(grp["param"], grp["value"].astype(float), strict=True)),
            dict(zip(grp["param"], grp["std_error"].astype(float), strict=True)), float(first["log_likelihood"]),
            int(first["n_customers"]), int(first["n_rows"]), float(first["penalizer"]), 0,
        )
    if "bgnbd" not in fitted:
        raise ValueError("no BG/NBD parameters: materialise models/bgnbd first")
    if len(units) > 1:
        raise ValueError(f"BTYD models fitted in different time units: {sorted(units)}")
    return BtydModels(bgnbd=fitted["bgnbd"], gamma_gamma=fitted.get("gamma_gamma"),
                      time_unit_days=units.pop(), pareto=fitted.get("pareto_nbd"))
