"""Customer scores with the production models, segment history/migration, and the serving snapshot tables.

No dagster import: defs/serving/ calls these. The models are anything with ``.predict(df) -> DataFrame``
(``registry.LoadedModel`` of ``clv_model`` / ``segment_model``):

* CLV model:     predict(features + BTYD predictions) -> predicted_clv, predicted_clv_p10, predicted_clv_p90
                 (and predicted_clv_p50, the median forecast, when the model has one)
* segment model: predict(the same + the CLV predictions) -> segment_id, segment_name
"""

import datetime as dt
from collections.abc import Mapping
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from clv_platform.lib import btyd, features, metrics, segmentation, warehouse
from clv_platform.lib.warehouse import table_exists

SCORES_TABLE = "serving.customer_scores"
# Scores whose distribution each scoring compares with the previous scoring's (score_drift), with segment shares.
DRIFT_COLUMNS = ["predicted_clv", "p_alive", "expected_purchases_365d", "btyd_clv"]
HISTORY_TABLE = "serving.segment_history"
MIGRATION_TABLE = "serving.segment_migration"
BTYD_TABLE = "features.btyd_predictions"
FEATURES_TABLE = "features.customer_features"

# serving.customer_scores / customer_scores.parquet (docs/architecture.md), in this order, then extras.
SCORE_COLUMNS = [
    "customer_id", "as_of_date", "predicted_clv", "predicted_clv_p10", "predicted_clv_p50", "predicted_clv_p90",
    "btyd_clv", "p_alive", "expected_purchases_30d", "expected_purchases_90d", "expected_purchases_365d",
    "segment_id", "segment_name", "segment_since", "clv_model_version", "segment_model_version",
    "frequency", "recency", "T", "monetary_value", "orders", "total_spend", "days_since_last_order",
]
EXTRA_COLUMNS = ["expected_avg_order_value", "avg_order_value"]
HISTORY_COLUMNS = [
    "month", "as_of_date", "customer_id", "predicted_clv", "predicted_clv_p10", "predicted_clv_p50",
    "predicted_clv_p90", "btyd_clv", "p_alive", "segment_id", "segment_name", "clv_model_version",
    "segment_model_version",
]

# segment_history.parquet in the snapshot: what the dashboard shows of a customer's months
SNAPSHOT_HISTORY_COLUMNS = ["month", "as_of_date", "customer_id", "segment_id", "segment_name", "predicted_clv",
                            "predicted_clv_p50", "p_alive"]

HISTORY_DDL = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    month VARCHAR NOT NULL, as_of_date DATE NOT NULL, customer_id VARCHAR NOT NULL,
    predicted_clv DOUBLE, predicted_clv_p10 DOUBLE, predicted_clv_p50 DOUBLE, predicted_clv_p90 DOUBLE,
    btyd_clv DOUBLE, p_alive DOUBLE, segment_id BIGINT, segment_name VARCHAR, clv_model_version VARCHAR,
    segment_model_version VARCHAR
);
-- warehouses made before the median forecast existed
ALTER TABLE {HISTORY_TABLE} ADD COLUMN IF NOT EXISTS predicted_clv_p50 DOUBLE;
CREATE TABLE IF NOT EXISTS {MIGRATION_TABLE} (
    from_month VARCHAR NOT NULL, to_month VARCHAR NOT NULL, from_segment VARCHAR NOT NULL,
    to_segment VARCHAR NOT NULL, customers BIGINT NOT NULL, share DOUBLE
);
"""


class ScoringError(RuntimeError):
    """Scoring cannot run (no customers, no production model, ...)."""


# -- inputs -------------------------------------------------------------------------------------------


def scoring_inputs(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None) -> tuple[dt.date, pd.DataFrame]:
    """Features + BTYD predictions of every customer as of ``as_of`` (default: the latest order day).

    Uses features.customer_features / features.btyd_predictions when they hold that as-of date; otherwise
    computes the features with the same SQL and fits BTYD as of that date (history months, tests).
    """
    if as_of is None:
        as_of = features.latest_order_date(con)
        if as_of is None:
            raise ScoringError("staging.transactions is empty: nothing to score")
    as_of = pd.Timestamp(as_of).date()

    feats = None
    if table_exists(con, FEATURES_TABLE):
        got = con.execute(f"SELECT max(as_of_date) FROM {FEATURES_TABLE}").fetchall()[0][0]
        if got is not None and pd.Timestamp(got).date() == as_of:
            feats = con.execute(f"SELECT * FROM {FEATURES_TABLE} ORDER BY customer_id").df()
    if feats is None:
        feats = features.customer_features(con, as_of)
    if feats.empty:
        raise ScoringError(f"no customers as of {as_of}")

    preds = None
    if table_exists(con, BTYD_TABLE):
        cols = [r[0] for r in con.execute(f"DESCRIBE {BTYD_TABLE}").fetchall()]
        same_day = True
        if "as_of_date" in cols:
            got = con.execute(f"SELECT max(as_of_date) FROM {BTYD_TABLE}").fetchall()[0][0]
            same_day = got is not None and pd.Timestamp(got).date() == as_of
        if same_day:
            preds = con.execute(f"SELECT * FROM {BTYD_TABLE}").df().drop(columns=["as_of_date"], errors="ignore")
    if preds is None:
        preds = btyd.predict(btyd.fit_btyd(feats), feats)
    return as_of, with_btyd(feats, preds)


def with_btyd(feats: pd.DataFrame, preds: pd.DataFrame) -> pd.DataFrame:
    """``feats`` with the BTYD prediction columns of ``preds`` (by customer_id; columns ``feats`` already
    has are kept from ``feats``). When ``preds`` is row for row in ``feats``' order (fresh predictions), the
    columns are attached by position: a merge of 1M rows costs seconds and copies every column."""
    extra = [c for c in preds.columns if c not in feats.columns]
    ids = feats["customer_id"].to_numpy()
    if len(preds) == len(feats) and np.array_equal(preds["customer_id"].to_numpy(), ids):
        columns = {c: feats[c].to_numpy() for c in feats.columns}
        columns.update({c: preds[c].to_numpy() for c in extra})
        return pd.DataFrame(columns, copy=False)
    return feats.merge(preds[["customer_id", *extra]], on="customer_id", how="left", validate="one_to_one")


# -- scores -------------------------------------------------------------------------------------------


def score(
    frame: pd.DataFrame,
    clv_model: Any,
    segment_model: Any,
    as_of: dt.date,
    clv_version: str | None = None,
    segment_version: str | None = None,
) -> pd.DataFrame:
    """Scores of every row of ``frame`` (features + BTYD): CLV with interval, segment, versions, as-of date.

    ``segment_since`` is set to ``as_of``, but to the first purchase day in the segment model's "new customers"
    (they are in it from that day); ``with_segment_since`` carries it over from earlier scores.
    """
    clv = clv_model.predict(frame)
    missing = {"predicted_clv", "predicted_clv_p10", "predicted_clv_p90"} - set(clv.columns)
    if missing:
        raise ScoringError(f"the CLV model's predict() returned no {sorted(missing)}")
    # The output is built column by column from arrays: copying or re-indexing the whole input frame makes
    # pandas consolidate all its columns, about a second per million customers.
    n = len(frame)
    columns = {col: frame[col].to_numpy() for col in SCORE_COLUMNS + EXTRA_COLUMNS if col in frame.columns}
    for col in ("predicted_clv", "predicted_clv_p10", "predicted_clv_p50", "predicted_clv_p90"):
        columns[col] = clv[col].to_numpy(dtype="float64") if col in clv.columns else np.full(n, np.nan)
    seg = segment_model.predict(pd.DataFrame({**columns, **{
        col: frame[col].to_numpy() for col in frame.columns if col not in columns}}, copy=False))
    if not {"segment_id", "segment_name"} <= set(seg.columns):
        raise ScoringError("the segment model's predict() must return segment_id and segment_name")
    columns["segment_id"] = seg["segment_id"].to_numpy().astype("int64")
    columns["segment_name"] = seg["segment_name"].astype(str).to_numpy()
    columns["as_of_date"] = np.full(n, pd.Timestamp(as_of).to_datetime64())
    columns["segment_since"] = columns["as_of_date"].copy()
    new_segment_id = getattr(getattr(segment_model, "native", segment_model), "new_segment_id", None)
    if new_segment_id is not None and "days_since_last_order" in columns:
        new = columns["segment_id"] == new_segment_id
        days = np.asarray(columns["days_since_last_order"][new], dtype="int64").astype("timedelta64[D]")
        columns["segment_since"][new] = columns["as_of_date"][new] - days
    for col, version in (("clv_model_version", clv_version), ("segment_model_version", segment_version)):
        columns[col] = np.full(n, None if version is None else str(version), dtype=object)
    for col in SCORE_COLUMNS + EXTRA_COLUMNS:
        if col not in columns:
            columns[col] = np.full(n, np.nan)
    return pd.DataFrame({col: columns[col] for col in SCORE_COLUMNS + EXTRA_COLUMNS}, copy=False)


def with_segment_since(scores: pd.DataFrame, earlier: pd.DataFrame | None) -> pd.DataFrame:
    """Set ``segment_since`` = first as-of date of the customer's current run of the same segment name, or the
    row's own ``segment_since`` when that is earlier (``score`` dates new customers from their first purchase).

    ``earlier``: rows (customer_id, as_of_date, segment_name[, segment_since]) from previous scores and the
    monthly segment history. Walking back from the newest earlier row, the run continues while the name is
    the current one; a row's own ``segment_since`` (previous scores) extends it further back.
    """
    scores = scores.copy()
    as_of = pd.to_datetime(scores["as_of_date"])
    own = pd.to_datetime(scores["segment_since"]) if "segment_since" in scores.columns else as_of
    own = own.where(own.notna() & (own < as_of), as_of)
    scores["segment_since"] = own
    if earlier is None or earlier.empty:
        return scores
    hist = earlier[["customer_id", "as_of_date", "segment_name"]].copy()
    hist["as_of_date"] = pd.to_datetime(hist["as_of_date"])
    since = earlier["segment_since"] if "segment_since" in earlier.columns else hist["as_of_date"]
    hist["since"] = pd.to_datetime(since).fillna(hist["as_of_date"])
    cur = pd.DataFrame({"customer_id": scores["customer_id"], "cur_name": scores["segment_name"], "cur_as_of": as_of})
    hist = hist.merge(cur, on="customer_id", how="inner")
    hist = hist[hist["as_of_date"] <= hist["cur_as_of"]]
    if hist.empty:
        return scores
    hist = hist.sort_values(["customer_id", "as_of_date"], ascending=[True, False], kind="stable")
    broken = (hist["segment_name"].astype(str) != hist["cur_name"].astype(str)).astype("int8")
    hist = hist[broken.groupby(hist["customer_id"]).cummax() == 0]
    first = hist.groupby("customer_id")["since"].min()
    carried = scores["customer_id"].map(first)
    scores["segment_since"] = carried.where(carried.notna() & (carried < own), own)
    return scores


# -- summaries ----------------------------------------------------------------------------------------


def segment_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per segment: size, share, value and behaviour, sorted by average predicted CLV."""
    g = scores.groupby(["segment_id", "segment_name"], dropna=False)
    out = g.agg(
        customers=("customer_id", "size"),
        total_predicted_clv=("predicted_clv", "sum"),
        avg_predicted_clv=("predicted_clv", "mean"),
        avg_predicted_clv_p10=("predicted_clv_p10", "mean"),
        avg_predicted_clv_p90=("predicted_clv_p90", "mean"),
        avg_btyd_clv=("btyd_clv", "mean"),
        avg_p_alive=("p_alive", "mean"),
        avg_expected_purchases_365d=("expected_purchases_365d", "mean"),
        avg_frequency=("frequency", "mean"),
        avg_days_since_last_order=("days_since_last_order", "mean"),
        avg_total_spend=("total_spend", "mean"),
    ).reset_index()
    out.insert(3, "share", out["customers"] / max(len(scores), 1))
    total = out["total_predicted_clv"].sum()
    out.insert(5, "value_share", out["total_predicted_clv"] / total if total else 0.0)
    return out.sort_values("avg_predicted_clv", ascending=False).reset_index(drop=True)


def migration_rows(prev: pd.DataFrame, cur: pd.DataFrame, from_month: str, to_month: str) -> pd.DataFrame:
    """Long migration table between two as-of snapshots (segmentation.segment_migration)."""
    long = segmentation.migration_long(segmentation.segment_migration(prev, cur))
    long = long.astype({"from_segment": str, "to_segment": str})
    long["customers"] = long["customers"].astype("int64")
    long["share"] = long["customers"] / long.groupby("from_segment")["customers"].transform("sum")
    long.insert(0, "to_month", to_month)
    long.insert(0, "from_month", from_month)
    return long[["from_month", "to_month", "from_segment", "to_segment", "customers", "share"]]


# -- warehouse writes ---------------------------------------------------------------------------------


def write_scores(con: duckdb.DuckDBPyConnection, scores: pd.DataFrame) -> int:
    """Replace serving.customer_scores with ``scores`` (one transaction)."""
    with warehouse.transaction(con, _scores_df=scores):
        con.execute(
            f"CREATE OR REPLACE TABLE {SCORES_TABLE} AS SELECT * REPLACE ("
            "CAST(as_of_date AS DATE) AS as_of_date, CAST(segment_since AS DATE) AS segment_since) FROM _scores_df"
        )
    return len(scores)


def previous_scores(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """The scores the last scoring wrote: what segment_since carries over and what score_drift compares with."""
    if not table_exists(con, SCORES_TABLE):
        return None
    have = {row[0] for row in con.execute(f"DESCRIBE {SCORES_TABLE}").fetchall()}
    columns = ["customer_id", "as_of_date", "segment_name", "segment_since", *(c for c in DRIFT_COLUMNS if c in have)]
    return con.execute(f"SELECT {', '.join(columns)} FROM {SCORES_TABLE}").df()


def published_scores(snapshot_root) -> pd.DataFrame | None:
    """The drift columns of the scores readers are served now (the current snapshot), None without a readable
    one. Drift is measured against these, not against serving.customer_scores: a scoring killed between writing
    that table and publishing would otherwise make the next one compare with scores nobody was served."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clv_platform.lib import snapshot

    try:
        path = snapshot.current_snapshot_dir(snapshot_root) / "customer_scores.parquet"
        have = set(pq.read_schema(path).names)
        return pd.read_parquet(path, columns=[c for c in ["segment_name", *DRIFT_COLUMNS] if c in have])
    except (snapshot.SnapshotNotFoundError, OSError, pa.ArrowException):
        return None


def score_drift(previous: pd.DataFrame | None, scores: pd.DataFrame) -> dict[str, float]:
    """How far this scoring's distributions moved from the previous one's (every customer of each): PSI of
    each DRIFT_COLUMNS column and of the segment shares (`segment_name`). {} without a previous scoring."""
    if previous is None or previous.empty:
        return {}
    drift = {c: metrics.psi(previous[c], scores[c]) for c in DRIFT_COLUMNS if c in previous and c in scores}
    if "segment_name" in previous and "segment_name" in scores:
        drift["segment_name"] = metrics.psi_categorical(previous["segment_name"], scores["segment_name"])
    return {k: round(v, 4) for k, v in drift.items() if v == v}


def history_rows(con: duckdb.DuckDBPyConnection, columns: str = "*") -> pd.DataFrame | None:
    if not table_exists(con, HISTORY_TABLE):
        return None
    return con.execute(f"SELECT {columns} FROM {HISTORY_TABLE} ORDER BY as_of_date, customer_id").df()


def month_end(month: str) -> dt.date:
    """Last day of month ``YYYY-MM`` (or a partition key ``YYYY-MM-01``)."""
    first = pd.Timestamp(month[:7] + "-01")
    return (first + pd.offsets.MonthEnd(0)).date()


def write_history_month(con: duckdb.DuckDBPyConnection, month: str, scores: pd.DataFrame) -> int:
    """Replace month ``YYYY-MM`` of serving.segment_history with ``scores`` (one transaction)."""
    rows = scores.assign(month=month)
    for col in HISTORY_COLUMNS:
        if col not in rows.columns:
            rows[col] = None
    rows = rows[HISTORY_COLUMNS]
    con.execute(HISTORY_DDL)
    with warehouse.transaction(con, _hist_df=rows):
        con.execute(f"DELETE FROM {HISTORY_TABLE} WHERE month = ?", [month])
        con.execute(f"INSERT INTO {HISTORY_TABLE} BY NAME SELECT * FROM _hist_df")
    return len(rows)


def refresh_migrations(con: duckdb.DuckDBPyConnection, months: list[str]) -> pd.DataFrame:
    """Recompute serving.segment_migration for every pair of consecutive calendar months of the history touching
    ``months`` (months with a gap between them in the history are no month-over-month migration)."""
    con.execute(HISTORY_DDL)
    have = [r[0] for r in con.execute(f"SELECT DISTINCT month FROM {HISTORY_TABLE} ORDER BY month").fetchall()]
    valid = [(a, b) for a, b in zip(have, have[1:], strict=False)
             if (pd.Period(a, "M") + 1).strftime("%Y-%m") == b]
    pairs = [(a, b) for a, b in valid if a in months or b in months]
    frames = []
    for a, b in pairs:
        prev = con.execute(f"SELECT customer_id, segment_name FROM {HISTORY_TABLE} WHERE month = ?", [a]).df()
        cur = con.execute(f"SELECT customer_id, segment_name FROM {HISTORY_TABLE} WHERE month = ?", [b]).df()
        frames.append(migration_rows(prev, cur, a, b))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["from_month", "to_month", "from_segment", "to_segment", "customers", "share"]
    )
    with warehouse.transaction(con, _mig_df=out):
        for a, b in pairs:
            con.execute(f"DELETE FROM {MIGRATION_TABLE} WHERE from_month = ? AND to_month = ?", [a, b])
        # Pairs that are not consecutive months of the history (any more) go too.
        con.execute(f"DELETE FROM {MIGRATION_TABLE} WHERE NOT list_contains(?, from_month || '>' || to_month)",
                    [[f"{a}>{b}" for a, b in valid]])
        if len(out):
            con.execute(f"INSERT INTO {MIGRATION_TABLE} SELECT * FROM _mig_df")
    return out


# -- snapshot tables ----------------------------------------------------------------------------------


DQ_DAYS = 90  # days of validation results the snapshot carries


def validated_partitions(con: duckdb.DuckDBPyConnection) -> int:
    """How many partitions have validation results at all (the snapshot carries the last DQ_DAYS days)."""
    if not table_exists(con, "staging.validation_results"):
        return 0
    return int(con.execute("SELECT count(DISTINCT partition_date) FROM staging.validation_results").fetchone()[0])


def data_quality(con: duckdb.DuckDBPyConnection, days: int = DQ_DAYS) -> pd.DataFrame:
    """staging.validation_results of the last ``days`` partitions (empty frame with columns if none)."""
    if not table_exists(con, "staging.validation_results"):
        return pd.DataFrame(columns=["partition_date", "expectation", "column_name", "success",
                                     "element_count", "unexpected_count", "checked_at"])
    audit = table_exists(con, "raw.load_audit")
    return con.execute(
        "SELECT v.*" + (", a.rows_read, a.rows_loaded, a.rows_rejected" if audit else "")
        + " FROM staging.validation_results v"
        + (" LEFT JOIN raw.load_audit a USING (partition_date)" if audit else "")
        + " WHERE v.partition_date > (SELECT max(partition_date) FROM staging.validation_results) - ?::INTEGER"
        " ORDER BY v.partition_date, v.expectation, v.column_name",
        [days],
    ).df()


# Run metrics named "<model>_<metric>" (the CLV training run logs clv_model_/clv_model_median_/btyd_/naive_ on
# the same held-out customers) are split so the table compares the models side by side (longest prefix first).
COMPARED_MODELS = ("clv_model_median", "clv_model", "btyd", "naive")
MODEL_METRICS_COLUMNS = ["model", "metric", "value", "registered_model", "version", "run_id"]


def model_metrics_table(
    metrics: Mapping[str, Mapping[str, Any] | None], compared: tuple[str, ...] = COMPARED_MODELS
) -> pd.DataFrame:
    """Long table (model, metric, value, registered_model, version, run_id) from the production versions'
    run metrics {registered_model: {version, run_id, metrics}}."""
    rows = []
    for registered, info in metrics.items():
        if not info:
            continue
        for name, value in sorted((info.get("metrics") or {}).items()):
            model, metric = registered, name
            for prefix in compared:
                if name.startswith(prefix + "_"):
                    model, metric = prefix, name[len(prefix) + 1:]
                    break
            rows.append({"model": model, "metric": metric, "value": float(value), "registered_model": registered,
                         "version": str(info.get("version")), "run_id": info.get("run_id")})
    return pd.DataFrame(rows, columns=MODEL_METRICS_COLUMNS)


def snapshot_tables(
    con: duckdb.DuckDBPyConnection, scores: pd.DataFrame, model_metrics: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """Every table of the serving contract, ready for snapshot.publish."""
    hist = history_rows(con, ", ".join(SNAPSHOT_HISTORY_COLUMNS))
    if hist is None:
        hist = pd.DataFrame(columns=SNAPSHOT_HISTORY_COLUMNS)
    if table_exists(con, MIGRATION_TABLE):
        migration = con.execute(f"SELECT * FROM {MIGRATION_TABLE} ORDER BY from_month, from_segment, to_segment").df()
    else:
        migration = pd.DataFrame(columns=["from_month", "to_month", "from_segment", "to_segment", "customers", "share"])
    out = scores.copy()
    for col in ("as_of_date", "segment_since"):
        out[col] = pd.to_datetime(out[col]).dt.date
    return {
        "customer_scores": out,
        "segment_summary": segment_summary(scores),
        "segment_migration": migration,
        "model_metrics": model_metrics,
        "data_quality": data_quality(con),
        "segment_history": hist,
    }
