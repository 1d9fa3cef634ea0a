"""CDNOW (lifetimes' packaged copy) straight into a DuckDB table with staging.transactions' columns.

The landing-file route (lib/cdnow.py → ingest → staging) is what the pipeline runs; backtests and tests
only need the typed rows, so this loader applies the same mapping (docs/architecture.md, lib/cdnow.py's
parser and unit-price rounding) without writing files: one row per CDNOW record, order_id
`CDNOW-<cust>-<yyyymmdd>-<n>`, ts 12:00:00, category music, quantity = CDs (min 1), unit_price = dollars /
quantity to 6 decimals, amount = dollar value exactly, channel web, country US.
"""

import duckdb
import pandas as pd

from clv_platform.lib import cdnow, warehouse

COLUMNS = (
    "partition_date", "order_id", "line_number", "customer_id", "order_ts", "category", "quantity",
    "unit_price", "amount", "channel", "country", "original_order_id", "source_file", "source_line",
)


def cdnow_frame(sample: bool = False) -> pd.DataFrame:
    """CDNOW records as a DataFrame with staging.transactions' columns."""
    records = cdnow.read_records(sample=sample)
    source = cdnow.SAMPLE_FILE if sample else cdnow.MASTER_FILE
    seq: dict[tuple, int] = {}
    rows = []
    for i, rec in enumerate(records, 1):
        key = (rec.customer_id, rec.date)
        seq[key] = seq.get(key, 0) + 1
        qty = max(rec.cds, 1)
        rows.append((
            rec.date, f"CDNOW-{rec.customer_id}-{rec.date:%Y%m%d}-{seq[key]}", 1, rec.customer_id,
            pd.Timestamp(rec.date) + pd.Timedelta(hours=12), "music", qty,
            cdnow.unit_price_text(rec.cents, qty), f"{rec.cents / 100:.2f}", "web", "US", None, source, i,
        ))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def load_cdnow(
    con: duckdb.DuckDBPyConnection, sample: bool = False, table: str = "staging.transactions"
) -> int:
    """Replace the rows of `table` (created with the warehouse DDL, or with the same columns for another
    name) by CDNOW's. Returns the number of rows."""
    frame = cdnow_frame(sample)
    schema = table.split(".")[0] if "." in table else None
    if schema:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    if table == "staging.transactions":
        warehouse.ensure_tables(con)
    else:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({_ddl_columns()})")
    con.register("_cdnow_frame", frame)
    try:
        con.execute(f"DELETE FROM {table}")
        cols = ", ".join(COLUMNS)
        con.execute(
            f"INSERT INTO {table} ({cols}) SELECT partition_date, order_id, line_number, customer_id, order_ts, "
            "category, quantity, CAST(unit_price AS DECIMAL(18, 6)), CAST(amount AS DECIMAL(18, 2)), channel, "
            "country, original_order_id, source_file, source_line FROM _cdnow_frame"
        )
    finally:
        con.unregister("_cdnow_frame")
    return len(frame)


def _ddl_columns() -> str:
    return (
        "partition_date DATE, order_id VARCHAR, line_number INTEGER, customer_id VARCHAR, order_ts TIMESTAMP, "
        "category VARCHAR, quantity INTEGER, unit_price DECIMAL(18, 6), amount DECIMAL(18, 2), channel VARCHAR, "
        "country VARCHAR, original_order_id VARCHAR, source_file VARCHAR, source_line BIGINT"
    )
