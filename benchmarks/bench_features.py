"""Benchmark: customer_features (all columns, DuckDB) vs lifetimes' summary_data_from_transaction_data
(the four summary columns only) on the same generated order lines, measured side by side in one run.

Data: `lines` order lines for `customers` customers over two years, made directly in DuckDB (about 2.5
lines per order, every customer has at least one order, ~2% return lines). lifetimes gets the purchase
lines (quantity > 0) as a pandas frame already in memory, so its time is pure summarising; ours includes
reading the table and returning the pandas frame.

Also timed, as a reference: `summary_columns.sql`, DuckDB computing only lifetimes' four columns (checked equal
to customer_features' four), so the engines are compared on the same task as well as on the goal's terms.
"""

import datetime as dt
import os
import tempfile
import time
import warnings
from pathlib import Path

import duckdb
import pandas as pd

from clv_platform.lib import features

START = dt.date(2022, 1, 1)
DAYS = 730
AS_OF = START + dt.timedelta(days=DAYS - 1)
LIFETIMES_FULL_BUDGET_S = 180.0  # run lifetimes on every line when its estimated time is within this
SUMMARY_SQL = Path(__file__).with_name("summary_columns.sql")


def make_transactions(con: duckdb.DuckDBPyConnection, customers: int, lines: int, seed: float = 0.42) -> None:
    """Create table bench_tx (the staging.transactions columns the features read)."""
    orders = max(customers, int(lines / 2.5))
    con.execute(f"SELECT setseed({seed})")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE bench_tx AS
        WITH o AS (
            SELECT k AS order_no,
                   CASE WHEN k < {customers} THEN k ELSE CAST(floor(random() * {customers}) AS BIGINT) END AS cust,
                   TIMESTAMP '{START}' + to_seconds(CAST(floor(random() * {DAYS} * 86400) AS BIGINT)) AS ts
            FROM range({orders}) AS t(k)
        ),
        l AS (
            SELECT i, CAST(i * {orders} // {lines} AS BIGINT) AS order_no,
                   random() AS u, CAST(1 + floor(random() * 3) AS INTEGER) AS q, round(2 + random() * 60, 2) AS price
            FROM range({lines}) AS t(i)
        )
        SELECT 'C' || lpad(CAST(o.cust AS VARCHAR), 8, '0') AS customer_id,
               'O' || lpad(CAST(o.order_no AS VARCHAR), 10, '0') AS order_id,
               o.ts AS order_ts,
               CAST(CASE WHEN l.u < 0.02 THEN -l.q ELSE l.q END * l.price AS DECIMAL(18, 2)) AS amount,
               CASE WHEN l.u < 0.02 THEN -l.q ELSE l.q END AS quantity,
               (['books', 'music', 'electronics', 'home', 'fashion', 'beauty', 'toys', 'sports', 'grocery'])
                   [1 + CAST(floor(l.u * 9) AS INTEGER)] AS category,
               (['web', 'app', 'store', 'phone'])[1 + CAST(o.order_no % 4 AS INTEGER)] AS channel,
               (['US', 'GB', 'DE', 'FR', 'NL', 'ES', 'IT', 'SE', 'PL', 'CA'])[1 + CAST(o.cust % 10 AS INTEGER)]
                   AS country
        FROM l JOIN o USING (order_no)
        ORDER BY order_ts
        """
    )


def _purchase_lines(con: duckdb.DuckDBPyConnection, table: str = "bench_tx"):
    """lifetimes' input: the purchase lines (customer, timestamp, amount as float), already in pandas."""
    return con.execute(
        f"SELECT customer_id, order_ts, CAST(amount AS DOUBLE) AS amount FROM {table} WHERE quantity > 0"
    ).df()


def _time_lifetimes(tx) -> tuple[float, int, float]:
    """(wall seconds, rows, process CPU seconds) of lifetimes' summary on `tx`."""
    from lifetimes.utils import summary_data_from_transaction_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0, c0 = time.perf_counter(), time.process_time()
        out = summary_data_from_transaction_data(
            tx, "customer_id", "order_ts", monetary_value_col="amount", observation_period_end=str(AS_OF)
        )
        return time.perf_counter() - t0, len(out), time.process_time() - c0


def run(
    customers: int = 1_000_000,
    lines: int = 10_000_000,
    repeats: int = 2,
    subset_customers: int = 100_000,
    lifetimes_full: str = "auto",
    workdir: str | None = None,
    progress=print,
) -> dict:
    """Time customer_features against lifetimes on the same data. lifetimes_full: auto|yes|no."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        t0 = time.perf_counter()
        make_transactions(con, customers, lines)
        gen_s = time.perf_counter() - t0
        n_lines, n_customers = con.execute("SELECT count(*), count(DISTINCT customer_id) FROM bench_tx").fetchone()
        progress(f"generated {n_lines:,} lines for {n_customers:,} customers in {gen_s:.1f} s")

        load_before = os.getloadavg()[0]
        times, cpus = [], []
        for i in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            df = features.customer_features(con, AS_OF, source="bench_tx")
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            progress(f"customer_features run {i + 1}/{repeats}: {times[-1]:.2f} s ({len(df):,} rows x {df.shape[1]})")
        ours_s = min(times)

        # Reference: the four summary columns alone, in DuckDB, on the same lines.
        summary_sql = SUMMARY_SQL.read_text().replace("{source}", features.quote_identifier("bench_tx"))
        summary_times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            summary = features.query_frame(con, summary_sql, {"as_of": AS_OF, "time_unit": 1.0})
            summary_times.append(time.perf_counter() - t0)
        pd.testing.assert_frame_equal(df[list(summary.columns)], summary, check_dtype=False, rtol=1e-9)
        progress(f"four summary columns only (DuckDB): {min(summary_times):.2f} s (equal to customer_features')")

        result = {
            "customers": n_customers,
            "lines": n_lines,
            "feature_columns": int(df.shape[1]),
            "features_seconds": round(ours_s, 3),
            "features_seconds_all_runs": [round(t, 3) for t in times],
            "features_cpu_seconds": round(cpus[times.index(ours_s)], 3),
            "summary_columns_seconds": round(min(summary_times), 3),
            "duckdb_threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
            "load_average_1min_at_start": round(load_before, 2),
            "generate_seconds": round(gen_s, 2),
        }

        # lifetimes on a fixed subset of customers (the same lines for both), then at full size when feasible.
        sub_ids = f"customer_id < 'C{subset_customers:08d}'"
        con.execute(f"CREATE OR REPLACE TABLE bench_sub AS SELECT * FROM bench_tx WHERE {sub_ids}")
        sub_lines = con.execute("SELECT count(*) FROM bench_sub").fetchone()[0]
        t0 = time.perf_counter()
        features.customer_features(con, AS_OF, source="bench_sub")
        ours_sub_s = time.perf_counter() - t0
        lt_sub_s, lt_rows, _ = _time_lifetimes(_purchase_lines(con, "bench_sub"))
        progress(
            f"subset {subset_customers:,} customers / {sub_lines:,} lines: customer_features {ours_sub_s:.2f} s, "
            f"lifetimes {lt_sub_s:.2f} s ({lt_rows:,} rows)"
        )
        result.update(
            subset_customers=subset_customers,
            subset_lines=sub_lines,
            subset_features_seconds=round(ours_sub_s, 3),
            subset_lifetimes_seconds=round(lt_sub_s, 3),
            subset_speedup=round(lt_sub_s / ours_sub_s, 1),
        )

        estimate = lt_sub_s * n_lines / max(sub_lines, 1)
        result["lifetimes_full_estimate_seconds"] = round(estimate, 1)
        if lifetimes_full == "yes" or (lifetimes_full == "auto" and estimate <= LIFETIMES_FULL_BUDGET_S):
            progress(f"lifetimes on all {n_lines:,} lines (estimated {estimate:.0f} s) ...")
            tx = _purchase_lines(con)
            lt_s, lt_rows, lt_cpu = _time_lifetimes(tx)
            del tx
            result.update(lifetimes_seconds=round(lt_s, 3), lifetimes_cpu_seconds=round(lt_cpu, 3),
                          lifetimes_rows=lt_rows, speedup=round(lt_s / ours_s, 1),
                          summary_speedup=round(lt_s / result["summary_columns_seconds"], 1),
                          cpu_ratio=round(lt_cpu / result["features_cpu_seconds"], 1))
            result["lifetimes_measured_on"] = "full"
        else:
            result["lifetimes_measured_on"] = f"subset only (full size estimated {estimate:.0f} s, over budget)"
        con.close()

    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    result["goal_features_seconds"] = 8.0
    result["goal_speedup"] = 15.0
    sp = result.get("speedup", result["subset_speedup"])
    result["meets_goals"] = bool(result["features_seconds"] <= 8.0 and sp >= 15.0)
    return result


def format_result(r: dict) -> str:
    """Side-by-side lines for the terminal."""
    out = [
        f"data: {r['lines']:,} order lines, {r['customers']:,} customers (generated in {r['generate_seconds']} s)",
        f"customer_features ({r['feature_columns']} columns): {r['features_seconds']:.2f} s "
        f"(best of {r['features_seconds_all_runs']}; {r['features_cpu_seconds']:.2f} CPU-s on "
        f"{r['duckdb_threads']} DuckDB threads)",
    ]
    if "lifetimes_seconds" in r:
        out.append(
            f"lifetimes summary_data_from_transaction_data (4 columns), same {r['lines']:,} lines: "
            f"{r['lifetimes_seconds']:.2f} s ({r['lifetimes_cpu_seconds']:.2f} CPU-s)"
        )
        out.append(f"speedup at full size: {r['speedup']:.1f}x wall, {r['cpu_ratio']:.1f}x CPU")
        out.append(
            f"reference, the same 4 columns in DuckDB SQL (benchmarks/summary_columns.sql): "
            f"{r['summary_columns_seconds']:.2f} s = {r['summary_speedup']:.1f}x lifetimes"
        )
    else:
        out.append(f"lifetimes at full size: not run ({r['lifetimes_measured_on']})")
    out.append(
        f"subset {r['subset_customers']:,} customers / {r['subset_lines']:,} lines: customer_features "
        f"{r['subset_features_seconds']:.2f} s vs lifetimes {r['subset_lifetimes_seconds']:.2f} s = "
        f"{r['subset_speedup']:.1f}x"
    )
    out.append(
        f"machine load average (1 min): {r['load_average_1min_at_start']} at start, "
        f"{r['load_average_1min_at_end']} at end on {os.cpu_count()} CPUs"
    )
    out.append(
        f"goals: features <= {r['goal_features_seconds']:.0f} s and >= {r['goal_speedup']:.0f}x faster: "
        f"{'met' if r['meets_goals'] else 'NOT met'}"
    )
    return "\n".join(out)


if __name__ == "__main__":
    import json
    import sys

    kw = {}
    if len(sys.argv) > 2:
        kw = {"customers": int(sys.argv[1]), "lines": int(sys.argv[2])}
    res = run(**kw)
    print(format_result(res))
    print(json.dumps(res))
