"""Pure pandas views of the serving snapshot tables for the dashboard pages (no Streamlit here; unit-tested).

The dashboard reads only the snapshot (docs/architecture.md). Tables and the columns used here:

- customer_scores: customer_id, as_of_date, predicted_clv, predicted_clv_p10, predicted_clv_p50 (median
  forecast; absent or empty for older models), predicted_clv_p90, btyd_clv,
  p_alive, expected_purchases_30d/90d/365d, segment_id, segment_name, segment_since, clv_model_version,
  segment_model_version, frequency, recency, T, monetary_value, orders, total_spend, days_since_last_order
- model_metrics: long (model, metric, value) or wide (model + one column per metric)
- segment_summary: segment_name (or segment_id) + any profile columns (shown as given)
- segment_history: one row per month (as_of_date|month) x customer (customer_id, segment_name) or
  x segment (segment_name, customers)
- segment_migration: from_segment, to_segment, customers (+ optional from_month/to_month to pick the last pair)
- data_quality: partition_date, expectation, success, element_count, unexpected_count
  (+ optional column_name, rows_read, rows_loaded, rows_rejected)

Column names are looked up among a few aliases so the pages degrade to a message, not a traceback, when a
table is shaped a little differently.
"""

import os
import re
from collections.abc import Iterable
from urllib.parse import quote

import numpy as np
import pandas as pd

from clv_platform.lib.metrics import PSI_LARGE, PSI_MODERATE, psi_metrics
from clv_platform.lib.migration import migration_long, segment_migration
from clv_platform.lib.segment_names import FIRST_SEEN, GONE, NEW_CUSTOMERS

MONTH_COLS = ("as_of_date", "month", "as_of_month", "snapshot_month", "period")
SEGMENT_COLS = ("segment_name", "segment", "segment_id")
COUNT_COLS = ("customers", "n_customers", "customer_count", "count", "n")
FROM_SEGMENT_COLS = ("from_segment_name", "from_segment", "segment_from", "from")
TO_SEGMENT_COLS = ("to_segment_name", "to_segment", "segment_to", "to")
FROM_MONTH_COLS = ("from_month", "from_as_of_date", "month_from", "from_date")
TO_MONTH_COLS = ("to_month", "to_as_of_date", "month_to", "to_date", "month", "as_of_date")
EXPECTATION_COLS = ("expectation", "expectation_type", "check", "rule")
SUCCESS_COLS = ("success", "passed", "ok")

# Metric keys of lib.metrics.clv_metrics -> (label, which way is better)
METRIC_LABELS = {
    "normalized_gini": ("Normalized Gini", "higher"),
    "top10_capture": ("Top-10% capture", "higher"),
    "spearman": ("Spearman", "higher"),
    "mae": ("MAE", "lower"),
    "rmse": ("RMSE", "lower"),
    "decile_mape": ("Decile MAPE", "lower"),
    "total_bias": ("Total bias", "closer to 0"),
}
MODEL_ORDER = ("clv_model", "clv_model_median", "lightgbm", "btyd", "naive")
MODEL_ALIASES = {"clv": "clv_model", "lgbm": "clv_model", "model": "clv_model", "bgnbd": "btyd",
                 "baseline": "naive"}
PSEUDO_SEGMENTS = (FIRST_SEEN, GONE)  # migration rows/columns for customers entering / leaving

FEATURE_COLS = ("orders", "total_spend", "avg_order_value", "frequency", "recency", "T", "monetary_value",
                "days_since_last_order")
MONEY_FEATURES = ("total_spend", "avg_order_value", "monetary_value")
COUNT_FEATURES = ("orders", "frequency", "recency", "T", "days_since_last_order")  # purchase days, days
AT_RISK_COLS = (
    "customer_id", "segment_name", "total_spend", "predicted_clv", "predicted_clv_p10", "predicted_clv_p90",
    "btyd_clv", "p_alive", "days_since_last_order", "orders", "expected_purchases_90d",
)


def pick(df: pd.DataFrame | None, candidates: Iterable[str]) -> str | None:
    """The first of ``candidates`` that is a column of ``df``."""
    if df is None:
        return None
    return next((c for c in candidates if c in df.columns), None)


# ---------------------------------------------------------------- formatting

def fmt_money(x: float | None, decimals: int = 0) -> str:
    if x is None or pd.isna(x):
        return "–"
    return f"-${abs(x):,.{decimals}f}" if x < 0 else f"${x:,.{decimals}f}"


def fmt_int(x: float | None) -> str:
    return "–" if x is None or pd.isna(x) else f"{int(round(x)):,}"


def fmt_num(x: float | None, decimals: int = 2) -> str:
    """Integers as integers, other numbers with ``decimals``; thousands separators."""
    if x is None or pd.isna(x):
        return "–"
    if float(x).is_integer() and not isinstance(x, float | np.floating):
        return f"{int(x):,}"
    return f"{float(x):,.{decimals}f}"


def md_escape(text: str) -> str:
    """``text`` shown literally in Streamlit markdown: every ASCII punctuation mark backslash-escaped."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", str(text))


def customer_url(customer_id) -> str:
    """The lookup page of one customer, the id URL-encoded ('+', '&', '#', '%' can be id characters too, and
    parentheses would end a markdown link)."""
    return "customer?customer_id=" + quote(str(customer_id), safe="/,:;@!$*")


def customer_link(customer_id) -> str:
    """A markdown link to the lookup page, its text the id shown literally (no link or markup of its own)."""
    return f"[{md_escape(customer_id)}]({customer_url(customer_id)})"


def fmt_feature(column: str, x) -> str:
    """A customer feature as shown: counts (orders, days) as integers, money as money."""
    if column in MONEY_FEATURES:
        return fmt_money(x, 2)
    if column in COUNT_FEATURES:
        return fmt_int(x)
    return fmt_num(x)


def fmt_prob(x: float | None) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.1%}"


def fmt_period(x) -> str:
    """A month key 'YYYY-MM' as is; anything date-like as YYYY-MM-DD."""
    if isinstance(x, str) and len(x) == 7 and x[4] == "-":
        return x
    return fmt_date(x)


def fmt_date(x) -> str:
    if x is None or (not isinstance(x, str) and pd.isna(x)):
        return "–"
    try:
        return pd.Timestamp(x).date().isoformat()
    except (ValueError, TypeError):
        return str(x)


# ---------------------------------------------------------------- overview

DRIFT_LABELS = {"predicted_clv": "predicted CLV", "p_alive": "P(alive)", "expected_purchases_365d":
                "expected purchases", "btyd_clv": "BTYD CLV", "segment_name": "segment shares"}


def drift(manifest_metrics: dict | None, large: float = PSI_LARGE) -> tuple[str, bool] | None:
    """One line on how far the scores moved since the previous scoring (the manifest's psi.* metrics), and
    whether any moved by more than `large`; None when the snapshot has none (a first scoring)."""
    psi = psi_metrics(manifest_metrics)
    if not psi:
        return None
    order = list(DRIFT_LABELS)
    psi = dict(sorted(psi.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    parts = [f"{DRIFT_LABELS.get(k, k)} {v:.3f}" for k, v in psi.items()]
    moved = [DRIFT_LABELS.get(k, k) for k, v in psi.items() if v > large]
    return "Since the previous scoring (population stability index): " + " · ".join(parts) + (
        f". Large shift (> {large}) in {', '.join(moved)}: a new model, missing data or a real change in "
        "customers; see the Dagster check customer_scores_distributions_are_stable." if moved
        else f". All below {PSI_MODERATE}: stable." if max(psi.values()) < PSI_MODERATE else "."), bool(moved)


def kpis(scores: pd.DataFrame) -> dict:
    """Headline figures of the snapshot."""
    clv = scores["predicted_clv"] if "predicted_clv" in scores else pd.Series(dtype=float)
    p_alive = scores["p_alive"] if "p_alive" in scores else pd.Series(dtype=float)
    return {
        "customers": int(len(scores)),
        "total_predicted_clv": float(clv.sum()),
        "mean_predicted_clv": float(clv.mean()) if len(clv) else float("nan"),
        "mean_p_alive": float(p_alive.mean()) if len(p_alive) else float("nan"),
        "total_btyd_clv": float(scores["btyd_clv"].sum()) if "btyd_clv" in scores else float("nan"),
    }


def clv_histogram(values: pd.Series, bins: int = 40, clip_quantile: float = 0.99) -> tuple[pd.DataFrame, int]:
    """Histogram of predicted CLV, binned here so the browser gets ``bins`` rows, not one per customer.

    Values above the ``clip_quantile`` go into the last bin; returns (bins frame, number clipped).
    """
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    if v.size == 0:
        return pd.DataFrame(columns=["clv_from", "clv_to", "customers"]), 0
    hi = float(np.quantile(v, clip_quantile)) if v.size > 20 else float(v.max())
    lo = min(0.0, float(v.min()))
    if hi <= lo:
        hi = lo + 1.0
    clipped = int((v > hi).sum())
    counts, edges = np.histogram(np.clip(v, lo, hi), bins=bins, range=(lo, hi))
    return pd.DataFrame({"clv_from": edges[:-1], "clv_to": edges[1:], "customers": counts}), clipped


def split_metric(model: str, metric: str) -> tuple[str, str]:
    """(model, base metric) of a metric name that may carry the model: 'btyd_mae', 'btyd.mae', 'mae_btyd'."""
    model = MODEL_ALIASES.get(str(model), str(model))
    metric = str(metric)
    if metric in METRIC_LABELS:
        return model, metric
    known = set(MODEL_ORDER) | set(MODEL_ALIASES)
    for base in METRIC_LABELS:
        for sep in ("_", ".", "/", ":"):
            if metric.endswith(sep + base) and metric[: -len(base) - 1] in known:
                prefix = metric[: -len(base) - 1]
                return MODEL_ALIASES.get(prefix, prefix), base
            if metric.startswith(base + sep) and metric[len(base) + 1:] in known:
                suffix = metric[len(base) + 1:]
                return MODEL_ALIASES.get(suffix, suffix), base
    return model, metric  # e.g. holdout_normalized_gini stays as it is (shown under other metrics)


def metrics_long(model_metrics: pd.DataFrame | None, manifest_metrics: dict | None = None) -> pd.DataFrame:
    """(model, metric, value) rows from model_metrics (long or wide), else from the manifest's metrics."""
    mm = model_metrics
    model_col = pick(mm, ("model", "model_name", "name"))
    rows = pd.DataFrame(columns=["model", "metric", "value"])
    if mm is not None and len(mm) and model_col is None and {"metric", "value"} <= set(mm.columns):
        rows = mm[["metric", "value"]].assign(model="clv_model")
    elif mm is not None and len(mm) and model_col:
        if {"metric", "value"} <= set(mm.columns):
            rows = mm[[model_col, "metric", "value"]].rename(columns={model_col: "model"})
        else:
            numeric = [c for c in mm.columns if c != model_col and pd.api.types.is_numeric_dtype(mm[c])]
            rows = mm.melt(id_vars=[model_col], value_vars=numeric, var_name="metric").rename(
                columns={model_col: "model"})
    elif manifest_metrics:
        flat = []
        for key, value in manifest_metrics.items():
            if isinstance(value, dict):  # {model: {metric: value}}
                flat += [(key, k, v) for k, v in value.items()]
            else:  # {"clv_model.normalized_gini": v} or {"normalized_gini": v}
                model, _, metric = str(key).rpartition(".")
                flat.append((model or "clv_model", metric, value))
        rows = pd.DataFrame(flat, columns=["model", "metric", "value"])
    if rows.empty:
        return rows
    rows = rows.assign(value=pd.to_numeric(rows["value"], errors="coerce")).dropna(subset=["value"])
    split = [split_metric(m, k) for m, k in zip(rows["model"], rows["metric"], strict=True)]
    return pd.DataFrame(split, columns=["model", "metric"]).assign(value=rows["value"].to_numpy())


def metrics_table(model_metrics: pd.DataFrame | None, manifest_metrics: dict | None = None) -> pd.DataFrame:
    """CLV ranking metrics: one row per metric, one column per model (CLV model first), which way is better.

    Only the metrics of lib.metrics.clv_metrics are kept; see other_metrics() for the rest.
    """
    rows = metrics_long(model_metrics, manifest_metrics)
    rows = rows[rows["metric"].isin(list(METRIC_LABELS))] if len(rows) else rows
    if rows.empty:
        return pd.DataFrame()
    wide = rows.pivot_table(index="metric", columns="model", values="value", aggfunc="last")
    wide.columns = [str(c) for c in wide.columns]
    models = [m for m in MODEL_ORDER if m in wide.columns] + [m for m in wide.columns if m not in MODEL_ORDER]
    wide = wide.loc[[m for m in METRIC_LABELS if m in wide.index], models]
    out = wide.copy()
    out.insert(0, "better", [METRIC_LABELS[m][1] for m in wide.index])
    out.index = [METRIC_LABELS[m][0] for m in wide.index]
    out.index.name = "metric"
    return out


def other_metrics(model_metrics: pd.DataFrame | None) -> pd.DataFrame:
    """The model_metrics rows that are not CLV ranking metrics (e.g. the segment model's silhouette)."""
    rows = metrics_long(model_metrics)
    if rows.empty:
        return rows
    return rows[~rows["metric"].isin(list(METRIC_LABELS))].reset_index(drop=True)


# ---------------------------------------------------------------- segments

def segment_order(scores: pd.DataFrame) -> list[str]:
    """Segment names, most valuable (mean predicted CLV) first: the colour and row order on every page."""
    seg = pick(scores, SEGMENT_COLS)
    if seg is None:
        return []
    if "predicted_clv" in scores:
        return [str(s) for s in scores.groupby(seg)["predicted_clv"].mean().sort_values(ascending=False).index]
    return sorted(str(s) for s in scores[seg].dropna().unique())


def segment_profiles(scores: pd.DataFrame) -> pd.DataFrame:
    """Size and mean profile of each segment, computed from customer_scores."""
    seg = pick(scores, SEGMENT_COLS)
    if seg is None or scores.empty:
        return pd.DataFrame()
    g = scores.groupby(seg)
    out = pd.DataFrame({"customers": g.size()})
    out["share"] = out["customers"] / out["customers"].sum()
    if "predicted_clv" in scores:
        out["total_predicted_clv"] = g["predicted_clv"].sum()
    for c in ("predicted_clv", "p_alive", "expected_purchases_90d", *FEATURE_COLS):
        if c in scores and pd.api.types.is_numeric_dtype(scores[c]):
            out[f"mean_{c}"] = g[c].mean()
    out.index = out.index.astype(str)
    order = [s for s in segment_order(scores) if s in out.index]
    out = out.loc[order]
    out.index.name = "segment"
    return out


def sample_rows(df: pd.DataFrame, n: int = 5000, seed: int = 0) -> pd.DataFrame:
    return df if len(df) <= n else df.sample(n=n, random_state=seed)


def _as_month(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, errors="coerce").dt.normalize()


def segment_history_counts(history: pd.DataFrame | None) -> pd.DataFrame:
    """Customers per (month, segment) from a per-customer or an already aggregated segment_history."""
    month, seg = pick(history, MONTH_COLS), pick(history, SEGMENT_COLS)
    if history is None or history.empty or month is None or seg is None:
        return pd.DataFrame(columns=["month", "segment", "customers"])
    count = pick(history, COUNT_COLS)
    h = history.assign(_month=_as_month(history[month]), _seg=history[seg].astype(str))
    if count and "customer_id" not in history.columns:
        out = h.groupby(["_month", "_seg"], as_index=False)[count].sum()
        out = out.rename(columns={count: "customers"})
    else:
        out = h.groupby(["_month", "_seg"], as_index=False).size().rename(columns={"size": "customers"})
    return out.rename(columns={"_month": "month", "_seg": "segment"}).sort_values(["month", "segment"])


def migration_matrix(
    migration: pd.DataFrame | None, history: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, str | None, str | None]:
    """Customers moving from segment to segment between the last two months.

    Uses segment_migration (filtered to its latest month pair when it has month columns); falls back to
    computing it from a per-customer segment_history. Returns (long frame from/to/customers, from, to).
    """
    m = migration
    frm, to, cnt = pick(m, FROM_SEGMENT_COLS), pick(m, TO_SEGMENT_COLS), pick(m, COUNT_COLS)
    if m is not None and len(m) and frm and to:
        from_month, to_month = pick(m, FROM_MONTH_COLS), pick(m, TO_MONTH_COLS)
        label_from = label_to = None
        if to_month:
            latest = m[to_month].max()
            m = m[m[to_month] == latest]
            label_to = fmt_period(latest)
            if from_month:
                label_from = fmt_period(m[from_month].max())
        if cnt is None:
            out = m.groupby([frm, to], as_index=False).size().rename(columns={"size": "customers"})
        else:
            out = m.groupby([frm, to], as_index=False)[cnt].sum().rename(columns={cnt: "customers"})
        out = out.rename(columns={frm: "from_segment", to: "to_segment"})
        out[["from_segment", "to_segment"]] = out[["from_segment", "to_segment"]].astype(str)
        return out, label_from, label_to
    month, seg = pick(history, MONTH_COLS), pick(history, SEGMENT_COLS)
    if history is None or month is None or seg is None or "customer_id" not in history.columns:
        return pd.DataFrame(columns=["from_segment", "to_segment", "customers"]), None, None
    months = sorted(history[month].dropna().unique())
    if len(months) < 2:
        return pd.DataFrame(columns=["from_segment", "to_segment", "customers"]), None, None
    prev, cur = (history.loc[history[month] == m, ["customer_id", seg]] for m in months[-2:])
    out = migration_long(segment_migration(prev, cur, segment_col=seg))
    out[["from_segment", "to_segment"]] = out[["from_segment", "to_segment"]].astype(str)
    return out, fmt_period(months[-2]), fmt_period(months[-1])


def migration_note(mig: pd.DataFrame) -> str:
    """The migration matrix (from_segment, to_segment, customers) in words. Customers leaving "new customers"
    are counted apart from those who changed segment: every new customer leaves it, after its days or on a
    second purchase day, so they would swell the share of customers on the move."""
    pseudo = mig["from_segment"].isin(PSEUDO_SEGMENTS) | mig["to_segment"].isin(PSEUDO_SEGMENTS)
    both = mig[~pseudo]
    changed = both["from_segment"] != both["to_segment"]
    left_new = changed & (both["from_segment"] == NEW_CUSTOMERS)
    moved, total = both.loc[changed & ~left_new, "customers"].sum(), both["customers"].sum()
    note = (f"{fmt_int(moved)} of {fmt_int(total)} customers present in both months "
            f"({fmt_prob(moved / total) if total else '–'}) changed segment")
    if left_new.any():
        note += (f", not counting the {fmt_int(both.loc[left_new, 'customers'].sum())} who left \"{NEW_CUSTOMERS}\" "
                 "(every new customer moves on)")
    note += "."
    first = mig[mig["from_segment"] == FIRST_SEEN].groupby("to_segment")["customers"].sum()
    if first.sum():
        into = ", ".join(f"{fmt_int(n)} to {seg}" for seg, n in first.sort_values(ascending=False).items())
        note += f" {fmt_int(first.sum())} customers first seen: {into}."
    gone = mig.loc[mig["to_segment"] == GONE, "customers"].sum()
    if gone:
        note += f" {fmt_int(gone)} gone."
    return note


def history_start(history: pd.DataFrame | None):
    """The first month-end of the segment history (None without one): a segment_since on it is "or earlier"."""
    month = pick(history, MONTH_COLS)
    if history is None or month is None or history.empty:
        return None
    return history[month].min()


def customer_history(history: pd.DataFrame | None, customer_id: str) -> pd.DataFrame:
    """One customer's monthly segment (and scores when present), oldest first; empty if not per-customer."""
    month = pick(history, MONTH_COLS)
    if history is None or month is None or "customer_id" not in history.columns:
        return pd.DataFrame()
    h = history[history["customer_id"].astype(str) == str(customer_id)]
    seg = pick(h, SEGMENT_COLS)
    scores = [c for c in ("predicted_clv", "predicted_clv_p50", "p_alive") if c in h.columns and h[c].notna().any()]
    keep = [month] + ([seg] if seg else []) + scores
    return h[keep].sort_values(month).rename(columns={month: "month"}).reset_index(drop=True)


# ---------------------------------------------------------------- customers

def find_customer(scores: pd.DataFrame, customer_id: str) -> pd.Series | None:
    key = customer_id.strip()
    hit = scores[scores["customer_id"].astype(str) == key]
    return None if hit.empty else hit.iloc[0]


def similar_ids(scores: pd.DataFrame, customer_id: str, limit: int = 8) -> list[str]:
    """Ids that contain what was typed (case-insensitive), for the 'did you mean' hint."""
    key = customer_id.strip().lower()
    if not key:
        return []
    ids = scores["customer_id"].astype(str)
    return ids[ids.str.lower().str.contains(key, regex=False)].head(limit).tolist()


def at_risk(
    scores: pd.DataFrame,
    value_col: str = "total_spend",
    min_value_quantile: float = 0.8,
    max_p_alive: float = 0.5,
    one_time_silent_days: int | None = None,
) -> tuple[pd.DataFrame, float]:
    """High-value customers (value at or above the quantile) whose P(alive) is below ``max_p_alive``, and,
    when ``one_time_silent_days`` is set, the high-value one-time buyers (frequency 0) silent for at least that
    many days: BG/NBD gives a customer with one purchase day P(alive) = 1 until they buy again, so a P(alive)
    threshold never flags them.

    Returns (rows sorted by value, descending; the value threshold).
    """
    if value_col not in scores or "p_alive" not in scores:
        return scores.iloc[0:0], float("nan")
    threshold = float(scores[value_col].quantile(min_value_quantile)) if len(scores) else float("nan")
    lapsing = scores["p_alive"] < max_p_alive
    one_time = one_time_buyers(scores)
    if one_time_silent_days is not None and one_time.any():
        lapsing |= one_time & (scores["days_since_last_order"] >= one_time_silent_days)
    rows = scores[(scores[value_col] >= threshold) & lapsing]
    cols = [c for c in AT_RISK_COLS if c in rows.columns]
    if value_col not in cols:
        cols.insert(1, value_col)
    return rows[cols].sort_values(value_col, ascending=False).reset_index(drop=True), threshold


def one_time_buyers(scores: pd.DataFrame) -> pd.Series:
    """True for customers with one purchase day (frequency 0), whose BG/NBD P(alive) is 1 by construction;
    all False when the snapshot has no frequency or days_since_last_order."""
    if "frequency" not in scores or "days_since_last_order" not in scores:
        return pd.Series(False, index=scores.index)
    return scores["frequency"] == 0


# ---------------------------------------------------------------- data quality

def dq_normalise(dq: pd.DataFrame | None) -> pd.DataFrame:
    """data_quality with canonical column names: partition_date (date), expectation, success (bool), ..."""
    exp, ok = pick(dq, EXPECTATION_COLS), pick(dq, SUCCESS_COLS)
    if dq is None or dq.empty or "partition_date" not in dq.columns or exp is None or ok is None:
        return pd.DataFrame(columns=["partition_date", "expectation", "success"])
    out = dq.rename(columns={exp: "expectation", ok: "success"}).copy()
    out["partition_date"] = pd.to_datetime(out["partition_date"], errors="coerce").dt.date
    out["success"] = out["success"].astype(bool)
    names = out["expectation"].astype(str)
    short = names.map(short_expectation)
    # drop a prefix every check shares (e.g. "transactions_") so the labels fit next to the chart
    common = os.path.commonprefix(sorted(set(short))) if short.nunique() > 1 else ""
    common = common[: common.rfind("_") + 1]
    if common:
        short = short.str.slice(len(common))
    out["check_name"] = short
    if "column_name" in out:
        col = out["column_name"].fillna("").astype(str)
        out["check"] = np.where(col != "", short + " (" + col + ")", short)
    else:
        out["check"] = short
    return out.sort_values(["partition_date", "check"]).reset_index(drop=True)


def short_expectation(name: str) -> str:
    """'transactions_have_keys:expect_column_values_to_not_be_null' -> 'transactions_have_keys: not_be_null'."""
    check, _, expectation = name.rpartition(":")
    for prefix in ("expect_column_values_to_", "expect_column_", "expect_"):
        if expectation.startswith(prefix):
            expectation = expectation[len(prefix):]
            break
    return f"{check}: {expectation}" if check else expectation


def dq_partitions(dq: pd.DataFrame) -> pd.DataFrame:
    """One row per partition: checks run, checks failed, rows read/rejected.

    Rejected rows come from ``rows_rejected`` (the load audit) when the table has it; otherwise they are
    approximated by the sum of unexpected counts of the failed checks (a row breaking two rules counts twice).
    """
    if dq.empty:
        return pd.DataFrame(columns=["partition_date", "checks", "failed", "rejected_rows"])
    g = dq.groupby("partition_date")
    out = pd.DataFrame({"checks": g.size(), "failed": g["success"].apply(lambda s: int((~s).sum()))})
    if "rows_read" in dq:
        out["rows_read"] = g["rows_read"].max()
    if "rows_rejected" in dq:
        out["rejected_rows"] = g["rows_rejected"].max()
        out["rejected_source"] = "load audit"
    elif "unexpected_count" in dq:
        failed = dq[~dq["success"]]
        out["rejected_rows"] = failed.groupby("partition_date")["unexpected_count"].sum()
        out["rejected_rows"] = out["rejected_rows"].fillna(0)
        out["rejected_source"] = "unexpected counts"
    out["status"] = np.where(out["failed"] > 0, "fail", "pass")
    return out.reset_index()
