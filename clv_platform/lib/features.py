"""Customer features as of a date, and calibration/holdout sets, computed in DuckDB.

The SQL lives in ``sql/customer_features.sql`` and ``sql/calibration_holdout.sql`` (the latter embeds the
former, so training and scoring features come from one query). Functions take ``source``: any table or
view with the columns of ``staging.transactions`` that the queries read (``SOURCE_COLUMNS``).

lifetimes conventions: a purchase day is a calendar day with at least one line of quantity > 0 (same-day
orders merge, returns never make a purchase); ``frequency`` = purchase days - 1, ``recency`` = last - first
purchase day, ``T`` = as_of - first purchase day, both divided by ``time_unit_days``; ``monetary_value`` =
mean gross amount per repeat purchase day (0 when frequency = 0). These equal
``lifetimes.utils.summary_data_from_transaction_data(purchase_lines, ..., freq="D",
freq_multiplier=time_unit_days)`` fed with the purchase lines only.

Behavioural columns (days are calendar days, money net of returns unless called gross; NaN where undefined,
e.g. a std over fewer than two values): orders (purchase orders), total_spend, gross_spend,
avg_order_value, avg_order_value_std (gross per purchase order), inter_purchase_days_mean/_std (gaps between
purchase days), days_since_last_order, tenure_days, spend_last_90d, spend_prev_90d (net, days
(as_of-90, as_of] and (as_of-180, as_of-90]), spend_trend ((last - prev) / (|last| + |prev|), 0 when both
are 0), category_diversity (distinct categories bought), channel_share_web/app/store/phone and weekend_share
(shares of purchase orders), return_rate (returned / gross amount), avg_basket_size (items per purchase
order), avg_lines_per_order, country (of the latest order naming one; same-day ties to the last name), as_of_date.
"""

import datetime as dt
import re

import duckdb
import numpy as np
import pandas as pd

from clv_platform.lib import warehouse

SOURCE_COLUMNS = ("customer_id", "order_id", "order_ts", "amount", "quantity", "category", "channel", "country")
SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")
HOLDOUT_COLUMNS = ("frequency_holdout", "spend_holdout", "duration_holdout")
FEATURES_TABLE = "features.customer_features"

_IDENT_PART = r"[A-Za-z_][A-Za-z0-9_$]*"
_IDENT_RE = re.compile(rf"^{_IDENT_PART}(\.{_IDENT_PART}){{0,2}}$")


def quote_identifier(name: str) -> str:
    """`schema.table` (or `table`, `db.schema.table`) as a safely quoted SQL name; ValueError otherwise."""
    if not isinstance(name, str) or not _IDENT_RE.match(name):
        raise ValueError(f"not a plain table name: {name!r} (expected [db.][schema.]table of letters, digits, _)")
    return ".".join(f'"{part}"' for part in name.split("."))


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _check_unit(time_unit_days: float) -> float:
    time_unit_days = float(time_unit_days)
    if not time_unit_days > 0:
        raise ValueError(f"time_unit_days must be > 0, got {time_unit_days}")
    return time_unit_days


def query_frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pd.DataFrame:
    """The result of `sql` as the DataFrame `.df()` gives (same columns, dtypes and values), built without
    pandas' block consolidation, which copies every numeric column once more (about a second on 1M rows x
    28 columns). NULLs come out as `.df()` makes them: NaN in floats, None in objects, NaT in datetimes,
    nullable Int/boolean arrays for integers and booleans."""
    columns = {}
    for name, values in con.execute(sql, params).fetchnumpy().items():
        if isinstance(values, np.ma.MaskedArray):
            mask = np.ma.getmaskarray(values)
            data = values.data
            if not mask.any():
                values = data
            elif data.dtype.kind == "f":
                values = np.where(mask, np.nan, data)
            elif data.dtype.kind in "iu":
                values = pd.arrays.IntegerArray(data, mask)
            elif data.dtype.kind == "b":
                values = pd.arrays.BooleanArray(data, mask)
            elif data.dtype.kind == "M":
                values = np.where(mask, np.datetime64("NaT"), data).astype(data.dtype)
            elif data.dtype == object:
                values = data.copy()
                values[mask] = None
            else:  # anything else: let DuckDB's own conversion decide
                return con.execute(sql, params).df()
        columns[name] = values
    return pd.DataFrame(columns, copy=False)


def customer_features_sql(source: str = "staging.transactions") -> str:
    """The customer-features SELECT for `source` (parameters $as_of, $time_unit)."""
    return warehouse.read_sql("customer_features").replace("{source}", quote_identifier(source))


def calibration_holdout_sql(source: str = "staging.transactions") -> str:
    """The calibration/holdout SELECT for `source` (parameters $as_of, $horizon_days, $time_unit)."""
    return (
        warehouse.read_sql("calibration_holdout")
        .replace("{customer_features}", warehouse.read_sql("customer_features"))
        .replace("{source}", quote_identifier(source))
    )


def customer_features(
    con: duckdb.DuckDBPyConnection,
    as_of,
    source: str = "staging.transactions",
    time_unit_days: float = 1.0,
) -> pd.DataFrame:
    """One row per customer whose first purchase day is on or before `as_of`, using only lines dated on or
    before `as_of`. Columns: customer_id, frequency, recency, T, monetary_value (lifetimes convention,
    recency/T in units of `time_unit_days` days), behavioural features, as_of_date. Sorted by customer_id."""
    params = {"as_of": _as_date(as_of), "time_unit": _check_unit(time_unit_days)}
    return query_frame(con, customer_features_sql(source), params)


def calibration_holdout(
    con: duckdb.DuckDBPyConnection,
    cutoff,
    horizon_days: int,
    source: str = "staging.transactions",
    time_unit_days: float = 1.0,
) -> pd.DataFrame:
    """customer_features(con, cutoff, ...) plus, for the same customers, frequency_holdout (purchase days in
    (cutoff, cutoff + horizon_days]), spend_holdout (net spend in that window) and duration_holdout
    (horizon_days in time units). Customers first seen after the cutoff are excluded."""
    horizon_days = int(horizon_days)
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
    params = {"as_of": _as_date(cutoff), "horizon_days": horizon_days, "time_unit": _check_unit(time_unit_days)}
    return query_frame(con, calibration_holdout_sql(source), params)


def latest_order_date(con: duckdb.DuckDBPyConnection, source: str = "staging.transactions") -> dt.date | None:
    """The date of the latest order line in `source` (None when it is empty): the scoring as-of date."""
    row = con.execute(f"SELECT CAST(max(order_ts) AS DATE) FROM {quote_identifier(source)}").fetchone()
    return row[0] if row else None


def write_customer_features(
    con: duckdb.DuckDBPyConnection,
    as_of=None,
    source: str = "staging.transactions",
    table: str = FEATURES_TABLE,
    time_unit_days: float = 1.0,
) -> tuple[dt.date | None, int]:
    """Replace `table` with the customer features as of `as_of` (default: the latest order date in `source`),
    in one transaction. Returns (as_of, number of customers)."""
    if as_of is None:
        as_of = latest_order_date(con, source)
    target = quote_identifier(table)
    # With no data at all, still leave a table with the right columns (as of today, zero rows).
    as_of_date = _as_date(as_of) if as_of is not None else dt.date.today()
    params = {"as_of": as_of_date, "time_unit": _check_unit(time_unit_days)}
    with warehouse.transaction(con):
        con.execute(f"CREATE OR REPLACE TABLE {target} AS {customer_features_sql(source)}", params)
        (rows,) = con.execute(f"SELECT count(*) FROM {target}").fetchall()[0]
    return (as_of_date if as_of is not None else None), int(rows)
