"""A fast synthetic landing file (DuckDB COPY) for the ingestion/validation benchmarks, with a share of bad rows.

Not the demo generator (lib/generator.py): only the shape of the data matters here, not its statistics.
"""

from datetime import date
from pathlib import Path

import duckdb

from clv_platform.lib import schema


def write_landing_file(out_dir: str | Path, day: date, rows: int, bad_every: int = 200, seed: int = 7) -> Path:
    """transactions_<day>.csv with `rows` order lines (~3 lines per order); every `bad_every`-th row is broken
    in one of several ways (bad quantity, unknown country, timestamp outside the day, return to unknown order)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"transactions_{day.isoformat()}.csv"
    con = duckdb.connect()
    con.execute(f"SELECT setseed({(seed % 1000) / 1000})")
    cats, chans, ctrs = list(schema.CATEGORIES), list(schema.CHANNELS), list(schema.COUNTRIES)
    con.execute(
        f"""COPY (
        WITH base AS (
            SELECT i, i // 3 AS o, i % 3 + 1 AS ln, (hash(i // 3, {seed}) % 500000) AS c, random() AS u
            FROM range(?) t(i)
        )
        SELECT
            'O{day:%Y%m%d}' || lpad(o::VARCHAR, 8, '0') AS order_id,
            ln::VARCHAR AS line_number,
            'C' || lpad(c::VARCHAR, 7, '0') AS customer_id,
            CASE WHEN i % {bad_every} = 5 THEN '{day}T25:00:00'
                 ELSE strftime(DATE '{day}' + to_seconds((o * 37) % 86400), '%Y-%m-%dT%H:%M:%S') END AS order_ts,
            list_extract(?, 1 + (c % {len(cats)})::INT) AS category,
            CASE WHEN i % {bad_every} = 1 THEN 'two' WHEN i % {bad_every} = 3 THEN '-1'
                 ELSE (1 + (u * 4)::INT)::VARCHAR END AS quantity,
            round(1 + u * 80, 2)::VARCHAR AS unit_price,
            list_extract(?, 1 + (o % {len(chans)})::INT) AS channel,
            CASE WHEN i % {bad_every} = 2 THEN 'XX' ELSE list_extract(?, 1 + (c % {len(ctrs)})::INT) END AS country,
            CASE WHEN i % {bad_every} = 3 THEN 'O-unknown' ELSE NULL END AS original_order_id
        FROM base ORDER BY i
    ) TO '{path}' (HEADER, DELIMITER ',')""",
        [rows, cats, chans, ctrs],
    )
    con.close()
    return path
