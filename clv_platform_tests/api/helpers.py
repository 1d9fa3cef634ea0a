"""A small serving snapshot shaped like the contract, for the API tests."""

import datetime as dt

import numpy as np
import pandas as pd

from clv_platform.lib import snapshot
from clv_platform.lib.scoring import SCORE_COLUMNS


def publish_fake(root, token: str, n: int = 50, clv_factor: float = 1.0):
    as_of = dt.date(2024, 12, 31)
    ids = [f"{i:05d}" for i in range(1, n + 1)]
    rng = np.random.default_rng(len(token))
    base = np.arange(1, n + 1, dtype=float) * clv_factor
    scores = pd.DataFrame({
        "customer_id": ids,
        "as_of_date": as_of,
        "predicted_clv": base,
        "predicted_clv_p10": base * 0.5,
        "predicted_clv_p50": base * 0.8,
        "predicted_clv_p90": base * 2.0,
        "btyd_clv": base * 0.9,
        "p_alive": rng.uniform(0, 1, n),
        "expected_purchases_30d": 0.1,
        "expected_purchases_90d": 0.3,
        "expected_purchases_365d": 1.2,
        "segment_id": np.where(base > n / 2, 1, 2),
        "segment_name": np.where(base > n / 2, "champions", "hibernating"),
        "segment_since": dt.date(2024, 10, 31),
        "clv_model_version": token,
        "segment_model_version": "1",
        "frequency": 3,
        "recency": 100.0,
        "T": 200.0,
        "monetary_value": 25.0,
        "orders": 4,
        "total_spend": 100.0,
        "days_since_last_order": np.where(np.arange(n) == 0, np.nan, 100.0),
    })[SCORE_COLUMNS]
    summary = scores.groupby(["segment_id", "segment_name"]).agg(
        customers=("customer_id", "size"), avg_predicted_clv=("predicted_clv", "mean")).reset_index()
    empty = pd.DataFrame({"x": pd.Series([], dtype=float)})
    tables = {"customer_scores": scores, "segment_summary": summary, "segment_migration": empty,
              "model_metrics": empty, "data_quality": empty, "segment_history": empty}
    manifest = {"as_of_date": as_of.isoformat(), "model_versions": {"clv_model": token, "segment_model": "1"},
                "metrics": {"customers": n}}
    return snapshot.publish(root, tables, manifest)
