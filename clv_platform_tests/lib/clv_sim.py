"""Small simulated customer base for the CLV-model, segmentation and models-asset tests.

BG/NBD-like: purchase rate lambda ~ Gamma, dropout after each purchase with p ~ Beta, order values ~ Gamma
around a customer mean. One thing BTYD cannot see: customers on the `app` channel (about a third) buy four
times as often from day `shift_day` on (a loyalty programme); the behavioural features (channel mix) reveal
it, so a feature-based model should rank better than BTYD on the holdout.
"""

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

START = dt.date(2022, 1, 1)


def simulate_lines(customers: int = 3000, days: int = 730, seed: int = 0, shift_day: int = 365) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.8, 1 / 40.0, customers)          # purchases per day while alive (~9 a year on average)
    pdrop = rng.beta(1.0, 4.0, customers)
    mean_value = rng.gamma(4.0, 15.0, customers)
    app = rng.random(customers) < 0.35
    acq = rng.integers(0, days // 2, customers).astype(float)
    rows = []
    for c in range(customers):
        t, n = acq[c], 0
        while True:
            rows.append((c, t, n))
            n += 1
            if n > 1 and rng.random() < pdrop[c]:
                break
            rate = lam[c] * (4.0 if app[c] and t >= shift_day else 1.0)
            t = t + rng.exponential(1.0 / max(rate, 1e-9))
            if t >= days:
                break
    cust = np.array([r[0] for r in rows])
    t = np.array([r[1] for r in rows])
    amount = np.round(rng.gamma(6.0, mean_value[cust] / 6.0) + 1.0, 2)
    ts = pd.Timestamp(START) + pd.to_timedelta(t * 86400, unit="s")
    channel = np.where(app[cust], "app", np.where(rng.random(len(cust)) < 0.7, "web", "store"))
    return pd.DataFrame({
        "customer_id": [f"C{c:06d}" for c in cust],
        "order_id": [f"O{i:08d}" for i in range(len(cust))],
        "order_ts": ts.floor("s"),
        "amount": amount,
        "quantity": 1,
        "category": "books",
        "channel": channel,
        "country": "US",
    })


def load_source(con: duckdb.DuckDBPyConnection, lines: pd.DataFrame, table: str = "sim_tx") -> str:
    """`lines` as a DuckDB table with the columns features' SQL reads; returns its name."""
    con.register("_lines", lines)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * REPLACE (CAST(amount AS DECIMAL(18, 2)) AS amount) "
                "FROM _lines")
    con.unregister("_lines")
    return table


def load_staging(con: duckdb.DuckDBPyConnection, lines: pd.DataFrame) -> int:
    """Append `lines` to staging.transactions of a warehouse connection (all NOT NULL columns filled)."""
    con.register("_lines", lines)
    con.execute(
        """INSERT INTO staging.transactions
           SELECT CAST(order_ts AS DATE), order_id, 1, customer_id, order_ts, category, quantity,
                  CAST(amount AS DECIMAL(18, 6)), CAST(amount AS DECIMAL(18, 2)), channel, country, NULL,
                  'sim', row_number() OVER () FROM _lines"""
    )
    con.unregister("_lines")
    return len(lines)
