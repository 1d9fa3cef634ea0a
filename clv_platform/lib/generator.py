"""Demo data generator: simulate customers from the BG/NBD x Gamma-Gamma model and write landing files.

Model (time unit = days), exactly the BG/NBD of Fader, Hardie & Lee (2005) plus Gamma-Gamma spend:

* each customer is acquired on a day drawn uniformly over the period (cohorts) and places the first order
  on that day (acquisition time t0 = day + U(0, 1));
* while alive, repeat orders arrive as a Poisson process with rate lambda ~ Gamma(shape r, rate alpha)
  (orders per day);
* after each *repeat* order the customer drops out with probability p ~ Beta(a, b) (so, as in BG/NBD, every
  customer is alive right after the first order and the number of repeat orders before dropout is
  Geometric(p) on {1, 2, ...});
* the value of each order is z ~ Gamma(shape p_gg, rate nu) with nu ~ Gamma(shape q, rate gamma), so the
  customer's mean order value is p_gg / nu.

Everything is vectorised with numpy: there is no Python loop over customers or orders (only over the days
when files are written). The output is deterministic for a seed: same seed, same bytes.

Order lines: each order is split over 1-4 lines (category, integer quantity, unit price in cents); a customer
has a home country, a preferred channel and a favourite category. About 3 % of orders get a return: one
negative line (own order id ``R...``) 1-30 days later, on one line of that order, quantity <= the line's
quantity, same unit price, ``original_order_id`` = the returned order. Returns that would fall after the
last day are dropped.

Files: ``transactions_YYYY-MM-DD.csv`` (or ``.parquet``: same columns, strings except line_number and quantity
(int64) and unit_price (float64)) per day, header-only on a day without orders (an empty table in Parquet), and
``ground_truth.json`` (population parameters + each customer's latent lambda, p, nu). For populations above
``INLINE_GROUND_TRUTH_MAX`` customers the per-customer part goes to ``ground_truth_customers.parquet`` and the
JSON names it (key ``customers_file``); ``read_ground_truth`` reads either form.
"""

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from clv_platform.lib.schema import CATEGORIES, CHANNELS, COUNTRIES, LANDING_COLUMNS

INLINE_GROUND_TRUTH_MAX = 20_000
GROUND_TRUTH_FILE = "ground_truth.json"
GROUND_TRUTH_CUSTOMERS_FILE = "ground_truth_customers.parquet"


@dataclass(frozen=True)
class PopulationParams:
    """Demo population (time unit: days).

    BG/NBD: lambda ~ Gamma(r=0.75, rate alpha=60 days) -> mean 0.0125 orders/day (~4.6 a year while alive),
    heterogeneous (CV 1.15); p ~ Beta(a=0.8, b=2.5) -> mean dropout probability 0.24 per repeat order.
    Gamma-Gamma: p=6, q=4, gamma=35 -> population mean order value p*gamma/(q-1) = $70, within-customer CV
    1/sqrt(6) = 0.41.  These are retail-like values of the same shape as the published CDNOW fits.
    """

    r: float = 0.75
    alpha: float = 60.0
    a: float = 0.8
    b: float = 2.5
    p: float = 6.0
    q: float = 4.0
    gamma: float = 35.0
    return_rate: float = 0.03
    max_return_delay_days: int = 30


# Weights of the hour of day (local time) of an order: quiet at night, peaks late morning and evening.
HOUR_WEIGHTS = np.array(
    [1.0, 0.5, 0.3, 0.2, 0.2, 0.4, 1.0, 2.0, 3.5, 5.0, 6.0, 6.5,
     7.0, 6.5, 6.0, 6.0, 6.0, 6.5, 7.0, 7.5, 7.0, 5.5, 3.5, 2.0]
)
CATEGORY_WEIGHTS = np.array([0.12, 0.08, 0.14, 0.15, 0.17, 0.10, 0.07, 0.07, 0.10])  # order of CATEGORIES
CHANNEL_WEIGHTS = np.array([0.50, 0.25, 0.20, 0.05])  # web, app, store, phone
COUNTRY_WEIGHTS = np.array([0.35, 0.14, 0.13, 0.09, 0.06, 0.06, 0.06, 0.03, 0.04, 0.04])
LINES_PER_ORDER_P = np.array([0.45, 0.30, 0.15, 0.10])  # 1..4 lines
QUANTITY_P = np.array([0.70, 0.20, 0.07, 0.03])  # 1..4 units
P_FAVOURITE_CATEGORY = 0.6
P_PREFERRED_CHANNEL = 0.8

CSV_HEADER = (",".join(LANDING_COLUMNS) + "\n").encode()
_DAY_SECONDS = 86_400


@dataclass
class GenerationSummary:
    out_dir: str
    start: str
    end: str
    days: int
    customers: int
    seed: int
    fmt: str
    files: int
    orders: int
    lines: int
    return_lines: int
    empty_days: int
    seconds: float
    ground_truth: str
    params: dict = field(default_factory=dict)

    @property
    def customers_per_s(self) -> float:
        return self.customers / self.seconds if self.seconds else float("inf")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["customers_per_s"] = self.customers_per_s
        return d


def bgnbd_expected_repeat_purchases(t, r: float, alpha: float, a: float, b: float):
    """BG/NBD E[X(t)]: expected repeat purchases in (0, t] of a customer acquired at time 0 (a != 1)."""
    from scipy.special import hyp2f1

    t = np.asarray(t, dtype=float)
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def _choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Vectorised categorical draw (indices), deterministic for the generator state."""
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(size), side="right").astype(np.int64)


def _group_starts(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


def _within_group_index(counts: np.ndarray) -> np.ndarray:
    """[0..c0-1, 0..c1-1, ...] for group sizes counts."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(_group_starts(counts), counts)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    s = pc.utf8_lpad(pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, s, "")


def customer_ids(n: int) -> pa.Array:
    """C0000001 .. (1-based, 7 digits)."""
    return _ids("C", np.arange(1, n + 1), 7)


def simulate(customers: int, days: int, seed: int, params: PopulationParams = PopulationParams(),
             acquisition_days: int | None = None) -> dict:
    """Simulate the population; returns numpy arrays (customers, orders, lines, returns). No I/O.

    acquisition_days: acquisition day ~ U{0..acquisition_days-1} (default: the whole period; 1 = everyone
    acquired on the first day, as a single cohort).
    """
    if customers < 1 or days < 1:
        raise ValueError("customers and days must be >= 1")
    acq_days = days if acquisition_days is None else int(acquisition_days)
    if not 1 <= acq_days <= days:
        raise ValueError("acquisition_days must be in 1..days")
    rng = np.random.default_rng(seed)
    n = customers
    P = params

    # --- customers -----------------------------------------------------------------------------------
    lam = rng.gamma(P.r, 1.0 / P.alpha, n)           # orders per day while alive
    pdrop = rng.beta(P.a, P.b, n)
    nu = rng.gamma(P.q, 1.0 / P.gamma, n)
    acq_day = rng.integers(0, acq_days, n)
    t0 = acq_day + rng.random(n)                       # continuous acquisition time (days since start)
    exposure = days - t0                               # time left to the end of the period
    home_country = _choice(rng, COUNTRY_WEIGHTS, n)
    pref_channel = _choice(rng, CHANNEL_WEIGHTS, n)
    fav_category = _choice(rng, CATEGORY_WEIGHTS, n)

    # Repeat orders: K ~ Geometric(p) repeat orders before dropout; M ~ Poisson(lambda * exposure) arrivals
    # of the (never-dying) process in the window; the customer makes min(K, M) of them, at the first
    # min(K, M) of M sorted uniform times, drawn via exponential spacings (sorted U = S_j / S_{M+1}).
    k_dropout = rng.geometric(np.clip(pdrop, 1e-12, 1.0))
    m_arrivals = rng.poisson(lam * exposure)
    n_rep = np.minimum(k_dropout, m_arrivals)
    alive_at_end = m_arrivals < k_dropout
    has = n_rep > 0
    reps = n_rep[has]
    spacing = rng.standard_exponential(int(reps.sum()))
    rest = rng.standard_gamma((m_arrivals[has] - reps + 1).astype(float))
    csum = np.cumsum(spacing)
    ends = np.cumsum(reps) - 1
    starts = ends - reps + 1
    group_base = csum[starts] - spacing[starts]
    local = csum - np.repeat(group_base, reps)
    total = (csum[ends] - group_base) + rest
    rep_cust = np.repeat(np.flatnonzero(has), reps)
    rep_time = t0[rep_cust] + exposure[rep_cust] * local / np.repeat(total, reps)
    rep_day = np.minimum(np.floor(rep_time).astype(np.int64), days - 1)
    del csum, local, spacing

    # --- orders (first order on the acquisition day + repeat orders), numbered chronologically ----------
    o_cust = np.concatenate([np.arange(n, dtype=np.int64), rep_cust])
    o_day = np.concatenate([acq_day.astype(np.int64), rep_day])
    n_orders = o_cust.size
    o_tod = _choice(rng, HOUR_WEIGHTS, n_orders) * 3600 + rng.integers(0, 3600, n_orders)
    order = np.lexsort((o_cust, o_tod, o_day))
    o_cust, o_day, o_tod = o_cust[order], o_day[order], o_tod[order]
    o_value = rng.gamma(P.p, 1.0, n_orders) / nu[o_cust]   # Gamma(p, rate nu)
    o_channel = np.where(rng.random(n_orders) < P_PREFERRED_CHANNEL, pref_channel[o_cust],
                         _choice(rng, CHANNEL_WEIGHTS, n_orders))
    n_lines = _choice(rng, LINES_PER_ORDER_P, n_orders) + 1

    # --- lines ----------------------------------------------------------------------------------------
    l_order = np.repeat(np.arange(n_orders, dtype=np.int64), n_lines)
    l_number = _within_group_index(n_lines) + 1
    n_l = l_order.size
    w = rng.gamma(2.0, 1.0, n_l)
    w_sum = np.bincount(l_order, weights=w, minlength=n_orders)
    l_value = o_value[l_order] * w / w_sum[l_order]
    l_qty = _choice(rng, QUANTITY_P, n_l) + 1
    l_price_cents = np.maximum(np.rint(l_value / l_qty * 100.0), 1).astype(np.int64)
    l_cust = o_cust[l_order]
    l_category = np.where(rng.random(n_l) < P_FAVOURITE_CATEGORY, fav_category[l_cust],
                          _choice(rng, CATEGORY_WEIGHTS, n_l))

    # --- returns ----------------------------------------------------------------------------------------
    is_ret = rng.random(n_orders) < P.return_rate
    r_delay = rng.integers(1, P.max_return_delay_days + 1, n_orders)
    r_pick = rng.random(n_orders)
    r_qty_u = rng.random(n_orders)
    r_tod = _choice(rng, HOUR_WEIGHTS, n_orders) * 3600 + rng.integers(0, 3600, n_orders)
    r_day = o_day + r_delay
    keep = is_ret & (r_day < days)
    r_orig = np.flatnonzero(keep)
    r_line = _group_starts(n_lines)[r_orig] + np.floor(r_pick[r_orig] * n_lines[r_orig]).astype(np.int64)
    r_qty = 1 + np.floor(r_qty_u[r_orig] * l_qty[r_line]).astype(np.int64)
    r_day, r_tod = r_day[r_orig], r_tod[r_orig]
    r_order = np.lexsort((o_cust[r_orig], r_tod, r_day))
    r_orig, r_line, r_qty, r_day, r_tod = (x[r_order] for x in (r_orig, r_line, r_qty, r_day, r_tod))

    return dict(
        n=n, days=days, params=P,
        lam=lam, pdrop=pdrop, nu=nu, acq_day=acq_day, alive_at_end=alive_at_end, n_repeat=n_rep,
        home_country=home_country, pref_channel=pref_channel, fav_category=fav_category,
        o_cust=o_cust, o_day=o_day, o_tod=o_tod, o_channel=o_channel, n_lines=n_lines,
        l_order=l_order, l_number=l_number, l_qty=l_qty, l_price_cents=l_price_cents, l_category=l_category,
        r_orig=r_orig, r_line=r_line, r_qty=r_qty, r_day=r_day, r_tod=r_tod,
    )


def _dict(indices: np.ndarray, dictionary: pa.Array, mask: np.ndarray | None = None) -> pa.DictionaryArray:
    """Dictionary-encoded string column (no copy of the strings; the CSV writer decodes it)."""
    return pa.DictionaryArray.from_arrays(pa.array(indices, type=pa.int32(), mask=mask), dictionary)


def lines_table(sim: dict, start: dt.date) -> tuple[pa.Table, np.ndarray]:
    """All order lines and return lines as one Arrow table in file order (string columns dictionary-encoded);
    also each row's day index."""
    n_orders = sim["o_cust"].size
    l_order, r_orig, r_line = sim["l_order"], sim["r_orig"], sim["r_line"]
    n_l, n_r = l_order.size, r_orig.size

    day = np.concatenate([sim["o_day"][l_order], sim["r_day"]])
    tod = np.concatenate([sim["o_tod"][l_order], sim["r_tod"]])
    # Lines are already in (day, tod, order, line) order; a stable sort on (timestamp, kind) merges returns in.
    key = (day * _DAY_SECONDS + tod) * 2 + np.concatenate([np.zeros(n_l, np.int64), np.ones(n_r, np.int64)])
    perm = np.argsort(key, kind="stable")
    day, tod = day[perm], tod[perm]

    order_ids = pa.concat_arrays([_ids("O", np.arange(1, n_orders + 1), 9),
                                  _ids("R", np.arange(1, n_r + 1), 9)])
    row_order_key = np.concatenate([l_order, n_orders + np.arange(n_r)])[perm]
    cust = np.concatenate([sim["o_cust"][l_order], sim["o_cust"][r_orig]])[perm]
    line_number = np.concatenate([sim["l_number"], np.ones(n_r, np.int64)])[perm]
    qty = np.concatenate([sim["l_qty"], -sim["r_qty"]])[perm]
    cents = np.concatenate([sim["l_price_cents"], sim["l_price_cents"][r_line]])[perm]
    category = np.concatenate([sim["l_category"], sim["l_category"][r_line]])[perm]
    channel = np.concatenate([sim["o_channel"][l_order], sim["o_channel"][r_orig]])[perm]
    country = sim["home_country"][cust]
    # original_order_id: null except on return lines (index into order ids, -1 = none)
    orig = np.concatenate([np.full(n_l, -1, np.int64), r_orig])[perm]

    days = sim["days"]
    day_strings = pa.array([(start + dt.timedelta(days=int(d))).isoformat() for d in range(days)])
    tod_strings = pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(_DAY_SECONDS)])
    ts = pc.binary_join_element_wise(pc.take(day_strings, pa.array(day)), pc.take(tod_strings, pa.array(tod)), "T")
    orig_ids = _dict(np.where(orig >= 0, orig, 0), order_ids, mask=orig < 0)

    table = pa.table({
        "order_id": _dict(row_order_key, order_ids),
        "line_number": pa.array(line_number, pa.int64()),
        "customer_id": _dict(cust, customer_ids(sim["n"])),
        "order_ts": ts,
        "category": _dict(category, pa.array(CATEGORIES)),
        "quantity": pa.array(qty, pa.int64()),
        "unit_price": pa.array(cents / 100.0, pa.float64()),
        "channel": _dict(channel, pa.array(CHANNELS)),
        "country": _dict(country, pa.array(COUNTRIES)),
        "original_order_id": orig_ids,
    })
    assert tuple(table.column_names) == LANDING_COLUMNS
    return table, day


def _ground_truth_frame(sim: dict, start: dt.date) -> pd.DataFrame:
    P = sim["params"]
    return pd.DataFrame({
        "customer_id": customer_ids(sim["n"]).to_numpy(zero_copy_only=False),
        "acquisition_date": (np.datetime64(start.isoformat()) + sim["acq_day"].astype("timedelta64[D]"))
        .astype(str),
        "lambda": sim["lam"],            # repeat orders per day while alive
        "p": sim["pdrop"],               # dropout probability after each repeat order
        "nu": sim["nu"],                 # Gamma-Gamma rate; mean order value = p_gg / nu
        "mean_order_value": P.p / sim["nu"],
        "repeat_orders": sim["n_repeat"],
        "alive_at_end": sim["alive_at_end"],
        "home_country": np.asarray(COUNTRIES)[sim["home_country"]],
        "preferred_channel": np.asarray(CHANNELS)[sim["pref_channel"]],
        "favourite_category": np.asarray(CATEGORIES)[sim["fav_category"]],
    })


def _write_day(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "csv":
        with open(path, "wb") as f:
            f.write(CSV_HEADER)
            if table.num_rows:
                pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    else:  # plain string columns in Parquet, so every reader gets text, not categoricals
        table = pa.table({name: col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col
                          for name, col in zip(table.column_names, table.columns, strict=True)})
        pq.write_table(table, path, compression="zstd")


def generate(out_dir, customers: int = 20_000, start: dt.date | str | None = None, days: int = 730,
             seed: int = 42, fmt: str = "csv", progress: bool = True,
             params: PopulationParams = PopulationParams(), acquisition_days: int | None = None,
             clean: bool = False) -> GenerationSummary:
    """Simulate `customers` over `days` days from `start` (default: today - days) and write landing files.

    clean=True first deletes existing transactions_*.csv|parquet and ground-truth files in out_dir.
    """
    from tqdm.auto import tqdm

    t_begin = time.perf_counter()
    if fmt not in ("csv", "parquet"):
        raise ValueError("fmt must be 'csv' or 'parquet'")
    if start is None:
        start = dt.date.today() - dt.timedelta(days=days)
    elif isinstance(start, str):
        start = dt.date.fromisoformat(start)
    elif isinstance(start, dt.datetime):
        start = start.date()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if clean:
        for old in [*out.glob("transactions_*.csv"), *out.glob("transactions_*.parquet"),
                    out / GROUND_TRUTH_FILE, out / GROUND_TRUTH_CUSTOMERS_FILE]:
            old.unlink(missing_ok=True)

    sim = simulate(customers, days, seed, params, acquisition_days)
    table, row_day = lines_table(sim, start)
    bounds = np.searchsorted(row_day, np.arange(days + 1), side="left")
    empty_days = 0
    for d in tqdm(range(days), desc="writing landing files", unit="file", disable=not progress):
        lo, hi = int(bounds[d]), int(bounds[d + 1])
        empty_days += hi == lo
        _write_day(table.slice(lo, hi - lo), out / f"transactions_{start + dt.timedelta(days=d)}.{fmt}", fmt)

    gt = _ground_truth_frame(sim, start)
    end = start + dt.timedelta(days=days - 1)
    doc = {
        "model": "BG/NBD (lambda ~ Gamma(r, rate alpha), dropout p ~ Beta(a, b) after each repeat order) "
                 "x Gamma-Gamma (order value ~ Gamma(p, rate nu), nu ~ Gamma(q, rate gamma))",
        "time_unit": "days",
        "population_params": asdict(params),
        "bgnbd": {"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b},
        "gamma_gamma": {"p": params.p, "q": params.q, "gamma": params.gamma,
                        "mean_order_value": params.p * params.gamma / (params.q - 1)},
        "seed": seed, "start": start.isoformat(), "end": end.isoformat(), "days": days,
        "customers": customers,
        "acquisition_days": acquisition_days or days,
        "orders": int(sim["o_cust"].size), "lines": int(table.num_rows), "return_lines": int(sim["r_orig"].size),
        "customer_columns": {
            "customer_id": "landing customer_id",
            "acquisition_date": "day of the first order",
            "lambda": "BG/NBD purchase rate while alive, repeat orders per day",
            "p": "BG/NBD dropout probability after each repeat order",
            "nu": "Gamma-Gamma rate of the customer's order values",
            "mean_order_value": "gamma_gamma.p / nu, in dollars",
            "repeat_orders": "repeat orders placed in the period (BG/NBD frequency before same-day merging)",
            "alive_at_end": "still alive at the end of the last day",
            "home_country": "country on every line", "preferred_channel": "channel of ~80% of orders",
            "favourite_category": "category of ~60% of lines",
        },
    }
    latents = None
    if customers <= INLINE_GROUND_TRUTH_MAX:
        doc["customers_file"] = None
        doc["customer_latents"] = "__LATENTS__"  # column-oriented, written compactly below
        latents = json.dumps(gt.to_dict(orient="list"), separators=(",", ":"), default=_json_default)
        (out / GROUND_TRUTH_CUSTOMERS_FILE).unlink(missing_ok=True)
    else:
        doc["customers_file"] = GROUND_TRUTH_CUSTOMERS_FILE
        pq.write_table(pa.Table.from_pandas(gt, preserve_index=False), out / GROUND_TRUTH_CUSTOMERS_FILE,
                       compression="zstd")
    text = json.dumps(doc, indent=1, default=_json_default)
    if latents is not None:
        text = text.replace('"__LATENTS__"', latents)
    (out / GROUND_TRUTH_FILE).write_text(text + "\n")

    return GenerationSummary(
        out_dir=str(out), start=start.isoformat(), end=end.isoformat(), days=days, customers=customers,
        seed=seed, fmt=fmt, files=days, orders=int(sim["o_cust"].size), lines=int(table.num_rows),
        return_lines=int(sim["r_orig"].size), empty_days=int(empty_days),
        seconds=time.perf_counter() - t_begin, ground_truth=str(out / GROUND_TRUTH_FILE), params=asdict(params),
    )


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(type(o))


def read_ground_truth(out_dir) -> tuple[dict, pd.DataFrame]:
    """(ground_truth.json as dict without the per-customer part, per-customer DataFrame)."""
    out = Path(out_dir)
    doc = json.loads((out / GROUND_TRUTH_FILE).read_text())
    if doc.get("customers_file"):
        frame = pq.read_table(out / doc["customers_file"]).to_pandas()
    else:
        frame = pd.DataFrame(doc.pop("customer_latents"))
    return doc, frame
