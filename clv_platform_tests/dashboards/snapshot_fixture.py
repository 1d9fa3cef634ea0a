"""A realistic small serving snapshot (all contract tables) for the dashboard tests.

Deterministic for a given seed, so tests can compute the expected KPI values from the same tables.
"""

from datetime import date, datetime

import numpy as np
import pandas as pd

from clv_platform.lib import snapshot
from clv_platform.lib.segment_names import FIRST_SEEN, GONE, NEW_CUSTOMERS

AS_OF = date(2026, 6, 30)
MODEL_VERSIONS = {"clv_model": "3", "segment_model": "2"}
# name -> (customers, frequency range, p_alive range, mean predicted CLV, days since last order range)
SEGMENTS = {
    "champions": (30, (8, 20), (0.85, 0.99), 1500.0, (1, 30)),
    "loyal": (75, (4, 10), (0.70, 0.95), 520.0, (10, 60)),
    NEW_CUSTOMERS: (45, (0, 0), (0.80, 0.99), 120.0, (0, 29)),   # one purchase day, in the last 30 days
    "at risk": (60, (3, 10), (0.10, 0.45), 160.0, (150, 300)),
    "hibernating": (90, (0, 2), (0.02, 0.30), 18.0, (200, 500)),
}
# "<asset check>:<GX expectation>" as the validation stage records them in staging.validation_results
EXPECTATIONS = [
    ("transactions_match_schema:expect_table_columns_to_match_set", None),
    ("transactions_have_keys:expect_column_values_to_not_be_null", "customer_id"),
    ("transactions_have_unique_order_lines:expect_compound_columns_to_be_unique", "order_id,line_number"),
    ("transactions_have_plausible_quantities_and_prices:expect_column_values_to_be_between", "unit_price"),
    ("transactions_have_plausible_quantities_and_prices:expect_column_values_to_be_between", "quantity"),
    ("transactions_use_known_vocabularies:expect_column_values_to_be_in_set", "channel"),
    ("transactions_use_known_vocabularies:expect_column_values_to_be_in_set", "country"),
    ("transactions_are_inside_their_partition_day:expect_column_values_to_be_between", "order_ts"),
]
# (partition, expectation, column) -> unexpected rows
DQ_FAILURES = {
    (date(2026, 6, 12), EXPECTATIONS[5][0], "channel"): 7,
    (date(2026, 6, 20), EXPECTATIONS[3][0], "unit_price"): 3,
    (date(2026, 5, 30), EXPECTATIONS[6][0], "country"): 2,
}
DQ_DAYS = 45
HISTORY_MONTHS = 6


def _month_ends(as_of: date, n: int) -> list[pd.Timestamp]:
    end = pd.Timestamp(as_of)
    return [(end - pd.offsets.MonthEnd(i)) if i else end for i in range(n - 1, -1, -1)]


def build_tables(as_of: date = AS_OF, seed: int = 7) -> tuple[dict[str, pd.DataFrame], dict]:
    """(tables, manifest) of a snapshot with 300 customers in 5 segments."""
    rng = np.random.default_rng(seed)
    n = sum(v[0] for v in SEGMENTS.values())
    ids = [f"C{i:07d}" for i in rng.permutation(np.arange(1, n + 1))]
    rows = []
    i = 0
    for seg_id, (name, (count, (f_lo, f_hi), (p_lo, p_hi), clv_mean, (d_lo, d_hi))) in enumerate(SEGMENTS.items()):
        for _ in range(count):
            frequency = int(rng.integers(f_lo, f_hi + 1))
            T = int(rng.integers(20, 60)) if name == NEW_CUSTOMERS else int(rng.integers(300, 720))
            days_since = min(int(rng.integers(d_lo, d_hi + 1)), T)
            if name == NEW_CUSTOMERS:
                T = days_since   # their one purchase day
            recency = max(T - days_since, 0) if frequency else 0
            monetary = round(float(rng.gamma(4.0, 15.0)), 2) if frequency else 0.0
            orders = frequency + 1
            total_spend = round(orders * (monetary or float(rng.gamma(4.0, 15.0))) * (2.0 if name == "at risk"
                                                                                     else 1.0), 2)
            p_alive = round(float(rng.uniform(p_lo, p_hi)), 4)
            if frequency == 0:
                p_alive = 1.0  # BG/NBD: one purchase day only counts as alive
            clv = round(float(rng.gamma(3.0, clv_mean / 3.0)), 2)
            rows.append({
                "customer_id": ids[i],
                "as_of_date": as_of,
                "predicted_clv": clv,
                "predicted_clv_p10": round(clv * float(rng.uniform(0.3, 0.7)), 2),
                "predicted_clv_p50": round(clv * float(rng.uniform(0.7, 0.95)), 2),
                "predicted_clv_p90": round(clv * float(rng.uniform(1.3, 2.0)), 2),
                "btyd_clv": round(clv * float(rng.uniform(0.7, 1.3)), 2),
                "p_alive": p_alive,
                "expected_purchases_30d": round(p_alive * frequency / 20, 4),
                "expected_purchases_90d": round(p_alive * frequency / 7, 4),
                "expected_purchases_365d": round(p_alive * frequency / 2, 4),
                "segment_id": seg_id,
                "segment_name": name,
                "segment_since": None,
                "clv_model_version": MODEL_VERSIONS["clv_model"],
                "segment_model_version": MODEL_VERSIONS["segment_model"],
                "frequency": float(frequency),
                "recency": float(recency),
                "T": float(T),
                "monetary_value": monetary,
                "orders": orders,
                "total_spend": total_spend,
                "days_since_last_order": days_since,
                "avg_order_value": round(total_spend / orders, 2),  # every order; monetary_value: repeat ones
            })
            i += 1
    scores = pd.DataFrame(rows).sort_values("customer_id").reset_index(drop=True)

    # Monthly history: the current segment in the last month, random earlier moves; new customers only in it.
    names = list(SEGMENTS)
    months = _month_ends(as_of, HISTORY_MONTHS)
    hist_rows = []
    since = {}
    for cust, seg in zip(scores["customer_id"], scores["segment_name"], strict=True):
        current = seg
        path = []
        for m in reversed(months):
            if seg == NEW_CUSTOMERS and path:
                break
            path.append((m, current))
            if seg != NEW_CUSTOMERS and rng.random() < 0.25:
                current = names[int(rng.integers(0, len(names)))]
                if current == NEW_CUSTOMERS:
                    current = "loyal"
        path.reverse()
        start = path[-1][0]
        for m, s in reversed(path):
            if s != seg:
                break
            start = m
        since[cust] = start.date()
        for m, s in path:
            clv = round(float(rng.gamma(3.0, SEGMENTS[s][3] / 3.0)), 2)
            hist_rows.append({"month": f"{m:%Y-%m}", "as_of_date": m.date(), "customer_id": cust,
                              "segment_id": names.index(s), "segment_name": s, "predicted_clv": clv,
                              "predicted_clv_p50": round(0.7 * clv, 2),  # the median sits below the mean
                              "p_alive": round(float(rng.uniform(*SEGMENTS[s][2])), 4)})
    history = pd.DataFrame(hist_rows)
    scores["segment_since"] = scores["customer_id"].map(since)

    # Long migration rows between consecutive months, as lib/scoring.py writes them (FIRST_SEEN / GONE).
    mig = []
    for a, b in zip(months[:-1], months[1:], strict=True):
        x = history[history["as_of_date"] == a.date()][["customer_id", "segment_name"]]
        y = history[history["as_of_date"] == b.date()][["customer_id", "segment_name"]]
        both = x.merge(y, on="customer_id", how="outer", suffixes=("_from", "_to"))
        both = both.fillna({"segment_name_from": FIRST_SEEN, "segment_name_to": GONE})
        g = both.groupby(["segment_name_from", "segment_name_to"], as_index=False).size()
        for r in g.itertuples(index=False):
            mig.append({"from_month": f"{a:%Y-%m}", "to_month": f"{b:%Y-%m}", "from_segment": r.segment_name_from,
                        "to_segment": r.segment_name_to, "customers": int(r.size)})
    migration = pd.DataFrame(mig)
    migration["share"] = migration["customers"] / migration.groupby(["to_month", "from_segment"])[
        "customers"].transform("sum")

    g = scores.groupby("segment_name")
    summary = pd.DataFrame({
        "segment_id": g["segment_id"].first(),
        "customers": g.size(),
        "mean_predicted_clv": g["predicted_clv"].mean().round(2),
        "mean_p_alive": g["p_alive"].mean().round(4),
        "mean_frequency": g["frequency"].mean().round(2),
        "mean_recency": g["recency"].mean().round(1),
        "mean_monetary_value": g["monetary_value"].mean().round(2),
    }).reset_index()
    summary["share"] = summary["customers"] / summary["customers"].sum()

    metric_values = {
        "clv_model": {"mae": 28.4, "rmse": 91.2, "spearman": 0.61, "normalized_gini": 0.731,
                      "top10_capture": 0.552, "decile_mape": 0.071, "total_bias": -0.031},
        "clv_model_median": {"mae": 24.9, "rmse": 104.0, "spearman": 0.60, "normalized_gini": 0.70,
                             "top10_capture": 0.55, "decile_mape": 0.58, "total_bias": -0.58},
        "btyd": {"mae": 32.7, "rmse": 98.5, "spearman": 0.55, "normalized_gini": 0.671,
                 "top10_capture": 0.514, "decile_mape": 0.184, "total_bias": -0.17},
        "naive": {"mae": 41.9, "rmse": 120.3, "spearman": 0.42, "normalized_gini": 0.52,
                  "top10_capture": 0.401, "decile_mape": 0.35, "total_bias": 0.12},
    }
    versions = {"clv_model": "3", "clv_model_median": "3", "btyd": "3", "naive": "3"}
    model_metrics = pd.DataFrame(
        [{"model": m, "version": versions[m], "run_id": f"run{m}", "metric": k, "value": v}
         for m, d in metric_values.items() for k, v in d.items()]
        + [{"model": "segment_model", "version": "2", "run_id": "runseg", "metric": "silhouette", "value": 0.41}]
    )

    dq_rows = []
    days = pd.date_range(end=pd.Timestamp(as_of), periods=DQ_DAYS, freq="D").date
    for d in days:
        rows_read = int(rng.integers(380, 620))
        rejected = sum(v for (fd, _, _), v in DQ_FAILURES.items() if fd == d)
        for exp, col in EXPECTATIONS:
            unexpected = DQ_FAILURES.get((d, exp, col), 0)
            dq_rows.append({
                "partition_date": d, "expectation": exp, "column_name": col, "success": unexpected == 0,
                "element_count": rows_read, "unexpected_count": unexpected,
                "checked_at": datetime(d.year, d.month, d.day, 6, 0) + pd.Timedelta(days=1),
                "rows_read": rows_read, "rows_loaded": rows_read - rejected, "rows_rejected": rejected,
            })
    data_quality = pd.DataFrame(dq_rows)

    tables = {
        "customer_scores": scores,
        "segment_summary": summary,
        "segment_migration": migration,
        "model_metrics": model_metrics,
        "data_quality": data_quality,
        "segment_history": history,
    }
    # how far this scoring moved from a previous one (PSI per score), as the scoring asset records it
    drift = {"psi.predicted_clv": 0.021, "psi.p_alive": 0.008, "psi.expected_purchases_365d": 0.012,
             "psi.btyd_clv": 0.018, "psi.segment_name": 0.004}
    manifest = {"as_of_date": as_of.isoformat(), "model_versions": dict(MODEL_VERSIONS),
                "metrics": {**metric_values["clv_model"], **drift}, "clv_horizon_days": 200,
                "btyd_clv_horizon_days": 365, "btyd_clv_discount_rate_annual": 0.1,
                "data_quality": {"days": DQ_DAYS, "partitions_validated": 730}}
    return tables, manifest


def publish_fixture(root, as_of: date = AS_OF, seed: int = 7):
    """Publish the fixture snapshot under ``root`` with lib.snapshot.publish; returns (folder, tables, manifest)."""
    tables, manifest = build_tables(as_of, seed)
    path = snapshot.publish(root, tables, manifest)
    return path, tables, manifest
