"""Data-quality checks of staging.transactions: a Great Expectations suite plus SQL checks, per partition.

The row-level quarantine happens at load (lib/ingest.py, lib/sql/ingest_row_rules.sql); this module is the
second line of defence on the loaded, typed rows and feeds the blocking asset checks and the data-quality
history (staging.validation_results).

Speed: GX's pandas engine copies its batch per metric and falls back to per-value Python for some dtypes, so
the batch handed to it is built for it: only the needed columns, strings as pandas Categoricals, integers as
int64 and timestamps as datetime64[ns] (the dtypes GX vectorises). All partitions of a run are validated as
ONE batch; GX's unexpected row indices are mapped back to partitions for the per-partition history.
"""

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from clv_platform.lib import quarantine_acceptance, schema, warehouse
from clv_platform.lib.ingest import MAX_QUANTITY, MAX_UNIT_PRICE, RETURN_WINDOW_DAYS
from clv_platform.lib.settings import Settings, get_settings

MIN_ROWS_FOR_SHARE = 20      # smaller files never fail on their quarantined share (Settings.max_quarantine_share)


def share_too_high(rows_read: int, rows_rejected: int, max_share: float) -> bool:
    """Whether a file's quarantined share fails its day's blocking check (files of MIN_ROWS_FOR_SHARE rows or
    more only): the rule of the check, `clv accept-quarantine` and the warnings of `clv import-history`."""
    return rows_read >= MIN_ROWS_FOR_SHARE and rows_rejected > max_share * rows_read
EXAMPLES = 5

# check name (a predicate, as the Dagster asset check is called) -> description
CHECKS = {
    "transactions_match_schema": "staging rows have the contract's columns and types",
    "transactions_have_keys": "order_id, line_number, customer_id, order_ts, quantity, unit_price, amount are set",
    "transactions_have_unique_order_lines": "(order_id, line_number) is unique",
    "transactions_have_plausible_quantities_and_prices":
        f"quantity is a non-zero integer within ±{MAX_QUANTITY}, 0 <= unit_price <= {MAX_UNIT_PRICE}, "
        "amount = round(quantity * unit_price, 2)",
    "transactions_returns_refer_to_known_orders":
        f"negative lines carry original_order_id of a sale of the same customer in the {RETURN_WINDOW_DAYS} days "
        "before; sales carry none",
    "transactions_are_inside_their_partition_day": "order_ts is on the partition's day and not in the future",
    "transactions_use_known_vocabularies": "channel, country and category are in the contract's vocabularies",
    "transactions_quarantine_share_is_acceptable":
        f"at most CLV_MAX_QUARANTINE_SHARE (default {Settings.max_quarantine_share:.0%}) of a file's rows were "
        f"quarantined (files of >= {MIN_ROWS_FOR_SHARE} rows), unless accepted for that file (clv accept-quarantine)",
}

# The GX batch. Identifiers are high-cardinality strings that pandas/GX handle slowly, so the batch carries
# a 63-bit hash of each (NULL kept NULL). The order key, checked for uniqueness, is taken from md5: DuckDB's
# hash() collides on structured ids (CDNOW-12953-19980318-1 and CDNOW-15953-19970318-1 hash alike), which
# failed real data; md5's bits are uniform (collision odds ~n^2/2^64). The other keys are only null-checked.
# ("Int64" columns are plain int64 in a batch where they hold no NULL.)
FRAME_COLUMNS = {
    "order_key": "Int64", "line_number": "int64", "customer_key": "Int64", "original_order_key": "Int64",
    "order_ts": "datetime64[ns]", "seconds_into_day": "int64", "quantity": "int64", "unit_price": "float64",
    "amount": "float64", "amount_recomputed": "float64", "channel": "category", "country": "category",
    "category": "category",
}

@dataclass
class ExpectationOutcome:
    check: str
    expectation: str
    column: str | None
    success: bool
    element_count: int
    unexpected_count: int
    examples: list = field(default_factory=list)
    partitions_failed: list[str] = field(default_factory=list)
    per_partition: dict[date, tuple[int, int]] = field(default_factory=dict)   # day -> (elements, unexpected)


@dataclass
class ValidationRun:
    partitions: list[date]
    rows: int
    seconds: float
    outcomes: list[ExpectationOutcome]

    def checks(self) -> dict[str, list[ExpectationOutcome]]:
        out: dict[str, list[ExpectationOutcome]] = {name: [] for name in CHECKS}
        for o in self.outcomes:
            out[o.check].append(o)
        return out

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)


# --- the GX suite --------------------------------------------------------------------------------------


def _suite_definition(vocabularies: schema.Vocabularies):
    """(check name, expectation) pairs; `now` is a suite parameter."""
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    E = gx.expectations
    return [
        ("transactions_match_schema", E.ExpectTableColumnsToMatchSet(column_set=list(FRAME_COLUMNS))),
        *[
            ("transactions_have_keys", E.ExpectColumnValuesToNotBeNull(column=c))
            for c in ("order_key", "line_number", "customer_key", "order_ts", "quantity", "unit_price", "amount")
        ],
        ("transactions_have_unique_order_lines",
         E.ExpectCompoundColumnsToBeUnique(column_list=["order_key", "line_number"])),
        ("transactions_have_plausible_quantities_and_prices",
         E.ExpectColumnValuesToNotBeInSet(column="quantity", value_set=[0])),
        ("transactions_have_plausible_quantities_and_prices",
         E.ExpectColumnValuesToBeBetween(column="quantity", min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY)),
        ("transactions_have_plausible_quantities_and_prices",
         E.ExpectColumnValuesToBeBetween(column="unit_price", min_value=0, max_value=MAX_UNIT_PRICE)),
        ("transactions_have_plausible_quantities_and_prices",
         E.ExpectColumnValuesToBeBetween(column="line_number", min_value=1, max_value=None)),
        ("transactions_have_plausible_quantities_and_prices",
         E.ExpectColumnPairValuesToBeEqual(column_A="amount", column_B="amount_recomputed")),
        ("transactions_returns_refer_to_known_orders",
         E.ExpectColumnValuesToNotBeNull(column="original_order_key", row_condition=Column("quantity") < 0)),
        ("transactions_returns_refer_to_known_orders",
         E.ExpectColumnValuesToBeNull(column="original_order_key", row_condition=Column("quantity") > 0)),
        ("transactions_are_inside_their_partition_day",
         E.ExpectColumnValuesToBeBetween(column="seconds_into_day", min_value=0, max_value=86399)),
        ("transactions_are_inside_their_partition_day",
         E.ExpectColumnValuesToBeBetween(column="order_ts", min_value=datetime(1900, 1, 1),
                                         max_value={"$PARAMETER": "now"})),
    ] + [("transactions_use_known_vocabularies", exp) for exp in _vocabulary_expectations(E, vocabularies)]


def _vocabulary_expectations(E, vocabularies: schema.Vocabularies) -> list:
    """channel, country, category in their vocabulary; "*" (any value): not null (blank ones never load)."""
    out = []
    for key, column in schema.VOCABULARY_COLUMNS.items():
        allowed = vocabularies.allowed(key)
        out.append(E.ExpectColumnValuesToNotBeNull(column=column) if allowed is None
                   else E.ExpectColumnValuesToBeInSet(column=column, value_set=list(allowed)))
    return out


def _columns_of(exp) -> tuple[str, ...]:
    kw = exp.configuration.kwargs
    cols = [kw.get("column"), *(kw.get("column_list") or []), kw.get("column_A"), kw.get("column_B")]
    if exp.expectation_type == "expect_table_columns_to_match_set":
        return tuple(FRAME_COLUMNS)
    if kw.get("row_condition") is not None:
        cols.append("quantity")
    return tuple(dict.fromkeys(c for c in cols if c))


# Column groups validated on one shared frame: each frame costs GX a batch and a validator, which outweighs the
# copies of these narrow columns (Categorical codes; the key beside the pair).
_SHARED_FRAMES = {
    ("channel",): ("channel", "country", "category"), ("country",): ("channel", "country", "category"),
    ("category",): ("channel", "country", "category"), ("order_key",): ("order_key", "line_number"),
}


@cache
def _gx(vocabularies: schema.Vocabularies = schema.DEFAULT_VOCABULARIES):
    """Ephemeral GX context, pandas data source, and the suite split by the columns each expectation reads:
    GX copies its batch per metric, so each group is validated on a frame of only its columns. One per
    vocabularies (they are values, compared by content)."""
    import logging

    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # GX fingerprints every pandas batch below HASH_THRESHOLD bytes (md5 of pd.util.hash_pandas_object: ~40% of
    # the suite's time here) for the batch markers only; no expectation reads it. 0 = never fingerprint.
    pandas_execution_engine.HASH_THRESHOLD = 0
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}
    batch_def = (
        ctx.data_sources.add_pandas("warehouse")
        .add_dataframe_asset("staging_transactions")
        .add_batch_definition_whole_dataframe("partitions")
    )
    groups: dict[tuple[str, ...], list] = defaultdict(list)
    for check, exp in _suite_definition(vocabularies):
        cols = _columns_of(exp)
        groups[_SHARED_FRAMES.get(cols, cols)].append((check, exp))
    suites = []
    for i, (cols, pairs) in enumerate(groups.items()):
        suite = ctx.suites.add(gx.ExpectationSuite(
            name=f"staging_transactions_{i}", expectations=[e for _, e in pairs]))
        check_of = {exp.id: check for (check, _), exp in zip(pairs, suite.expectations, strict=True)}
        suites.append((list(cols), suite, check_of))
    return batch_def, suites


def staging_frame(con: duckdb.DuckDBPyConnection, partition_dates: list[date]) -> pd.DataFrame:
    """The GX batch: staging rows of the partitions with GX-friendly dtypes, plus `_partition` and `_line`
    (source_line) to locate unexpected rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tbl = con.sql(
        """SELECT
               CASE WHEN order_id IS NOT NULL THEN CAST(md5_number(order_id) >> 65 AS BIGINT) END AS order_key,
               line_number,
               CASE WHEN customer_id IS NOT NULL THEN CAST(hash(customer_id) >> 1 AS BIGINT) END AS customer_key,
               CASE WHEN original_order_id IS NOT NULL THEN CAST(hash(original_order_id) >> 1 AS BIGINT) END
                   AS original_order_key,
               CAST(order_ts AS TIMESTAMP_NS) AS order_ts,      -- arrives as datetime64[ns], no pandas astype
               CAST(epoch(order_ts) - epoch(CAST(partition_date AS TIMESTAMP)) AS BIGINT) AS seconds_into_day,
               quantity, CAST(unit_price AS DOUBLE) AS unit_price, CAST(amount AS DOUBLE) AS amount,
               CAST(round(quantity * unit_price, 2) AS DOUBLE) AS amount_recomputed,
               channel, country, category, partition_date AS _partition, source_line AS _line
        FROM staging.transactions WHERE list_contains($days, partition_date)""",
        params={"days": partition_dates},
    ).to_arrow_table()
    columns = {}
    for name in tbl.column_names:
        col, want = tbl[name], FRAME_COLUMNS.get(name)
        if want == "category" or name == "_partition":      # (not 1M date objects)
            columns[name] = pc.dictionary_encode(col).to_pandas()
        elif want == "Int64" and col.null_count:    # nullable Int64 straight from Arrow (a float detour would
            columns[name] = col.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)    # lose hash bits)
        else:           # plain int64 for a key without NULL (pandas hashes and de-duplicates it ~2x faster)
            columns[name] = col.to_pandas()
    df = pd.DataFrame(columns, copy=False)
    for name, want in FRAME_COLUMNS.items():
        if want not in ("category", "Int64") and str(df[name].dtype) != want:
            df[name] = df[name].astype(want)
    return df


def run_suite(
    df: pd.DataFrame, now: datetime | None = None,
    vocabularies: schema.Vocabularies = schema.DEFAULT_VOCABULARIES,
) -> list[ExpectationOutcome]:
    """Validate a staging frame with the GX suite; outcomes carry per-partition counts and examples
    located by partition and source line."""
    from great_expectations.validator.v1_validator import Validator as V1Validator

    batch_def, suites = _gx(vocabularies)
    now = now or datetime.now()
    partitions = df["_partition"]
    lines = df["_line"]
    totals = partitions.value_counts(sort=False)
    outcomes = []
    def validate_group(cols, suite):
        frame = pd.DataFrame({c: df[c] for c in cols}, copy=False)     # (df[cols] would copy the columns)
        if len(cols) == len(FRAME_COLUMNS):     # table-level (schema) expectations only read the columns
            frame = frame.iloc[:0]
        # V1Validator is what Batch.validate builds internally; creating it directly builds the batch once
        # instead of twice (get_batch + validate).
        return V1Validator(
            batch_definition=batch_def, batch_parameters={"dataframe": frame},
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": EXAMPLES},
        ).validate_expectation_suite(suite, expectation_parameters={"now": now})

    for cols, suite, check_of in suites:     # (threads do not help: GX's own Python work holds the GIL)
        for res in validate_group(cols, suite).results:
            outcomes.append(_outcome(res, check_of, partitions, lines, totals, len(df)))
    return outcomes


def _outcome(res, check_of, partitions, lines, totals, n_rows) -> ExpectationOutcome:
    cfg = res.expectation_config
    kw = cfg.kwargs
    column = kw.get("column") or ",".join(kw.get("column_list") or [x for x in (kw.get("column_A"),
                                                                                 kw.get("column_B")) if x])
    r = res.result or {}
    idx = r.get("unexpected_index_list") or []
    if idx and isinstance(idx[0], dict):      # compound/pair expectations report dicts
        idx = [d.get("index", d) for d in idx]
    pos = np.asarray(idx, dtype=np.int64)
    bad_parts = partitions.iloc[pos].value_counts() if len(pos) else pd.Series(dtype=int)
    per_partition = {day: (int(n), int(bad_parts.get(day, 0))) for day, n in totals.items()}
    unexpected = int(r.get("unexpected_count") or 0)
    if not res.success and not unexpected and not len(pos):      # table-level expectation failed
        per_partition = {day: (n, n) for day, (n, _) in per_partition.items()}
    values = r.get("partial_unexpected_list") or []
    if cfg.type == "expect_table_columns_to_match_set" and not res.success:
        examples = [str(r.get("details", r.get("observed_value")))]
    else:
        examples = [
            {"partition": str(partitions.iloc[p]), "source_line": int(lines.iloc[p]),
             **({"value": _plain(values[i])} if i < len(values) and not column.endswith("_key") else {})}
            for i, p in enumerate(pos[:EXAMPLES])
        ]
    return ExpectationOutcome(
        check=check_of[cfg.id], expectation=cfg.type, column=column or None, success=bool(res.success),
        element_count=int(r.get("element_count") or n_rows), unexpected_count=unexpected, examples=examples,
        partitions_failed=sorted(str(d) for d, (_, u) in per_partition.items() if u),
        per_partition=per_partition,
    )


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (pd.Timestamp, datetime, date)):
        return x.isoformat()
    if isinstance(x, np.generic):
        return x.item()
    return x if isinstance(x, (int, float, str, bool, type(None))) else str(x)


# --- SQL checks (cross-table rules GX cannot express on one frame) ------------------------------------


def sql_outcomes(con: duckdb.DuckDBPyConnection, partition_dates: list[date]) -> list[ExpectationOutcome]:
    out = []
    # returns must point at an earlier (or same-file) sale of the same customer: those of the partitions checked,
    # and those of the RETURN_WINDOW_DAYS after them, whose sale a reloaded partition may have taken away
    rows = con.execute(
        """SELECT r.partition_date, count(*) AS n,
               count(*) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM staging.transactions s
                   WHERE s.order_id = r.original_order_id AND s.customer_id = r.customer_id
                     AND s.quantity > 0 AND s.partition_date <= r.partition_date
                     AND s.partition_date >= r.partition_date - $window)) AS bad,
               list(r.order_id || '/' || r.line_number ORDER BY r.source_line) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM staging.transactions s
                   WHERE s.order_id = r.original_order_id AND s.customer_id = r.customer_id
                     AND s.quantity > 0 AND s.partition_date <= r.partition_date
                     AND s.partition_date >= r.partition_date - $window))[1:5] AS examples
        FROM staging.transactions r
        WHERE r.quantity < 0 AND (list_contains($days, r.partition_date)
              OR r.partition_date BETWEEN list_min($days) AND list_max($days) + $window)
        GROUP BY r.partition_date""",
        {"days": partition_dates, "window": RETURN_WINDOW_DAYS},
    ).fetchall()
    per = {d: (n, bad) for d, n, bad, _ in rows}
    out.append(ExpectationOutcome(
        check="transactions_returns_refer_to_known_orders", expectation="returns_match_known_sales_sql",
        column="original_order_id", success=all(b == 0 for _, b in per.values()),
        element_count=sum(n for n, _ in per.values()), unexpected_count=sum(b for _, b in per.values()),
        examples=[e for *_, ex in rows for e in (ex or [])][:EXAMPLES],
        partitions_failed=sorted(str(d) for d, (_, b) in per.items() if b), per_partition=per,
    ))
    rows = con.execute(
        "SELECT partition_date, source_file, rows_read, rows_rejected, sha256 FROM raw.load_audit "
        "WHERE list_contains(?, partition_date) ORDER BY partition_date",
        [partition_dates],
    ).fetchall()
    per, bad = {}, []
    settings = get_settings()
    max_share, accepted = settings.max_quarantine_share, quarantine_acceptance.accepted(settings.data_dir)
    for d, f, read, rejected, sha in rows:
        # (`clv accept-quarantine`: this file of this day)
        too_many = share_too_high(read, rejected, max_share) and (str(d), sha) not in accepted
        per[d] = (int(read), int(rejected) if too_many else 0)
        if too_many:
            bad.append(f"{f}: {rejected}/{read} rows quarantined ({rejected / read:.0%}; at most {max_share:.0%} "
                       "allowed, CLV_MAX_QUARANTINE_SHARE)")
    out.append(ExpectationOutcome(
        check="transactions_quarantine_share_is_acceptable", expectation="quarantine_share_at_most_sql",
        column=None, success=not bad, element_count=sum(r for r, _ in per.values()),
        unexpected_count=sum(u for _, u in per.values()), examples=bad[:EXAMPLES],
        partitions_failed=sorted(str(d) for d, (_, u) in per.items() if u), per_partition=per,
    ))
    # schema of the warehouse table itself (GX sees a pandas copy)
    declared = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'staging' AND table_name = 'transactions'"
    ).fetchall())
    expected = {"order_id": "VARCHAR", "line_number": "INTEGER", "customer_id": "VARCHAR", "order_ts": "TIMESTAMP",
                "quantity": "INTEGER", "unit_price": "DECIMAL(18,6)", "amount": "DECIMAL(18,2)"}
    wrong = [f"{c}: {declared.get(c)} (expected {t})" for c, t in expected.items() if declared.get(c) != t]
    out.append(ExpectationOutcome(
        check="transactions_match_schema", expectation="warehouse_column_types_sql", column=None,
        success=not wrong, element_count=len(expected), unexpected_count=len(wrong), examples=wrong,
    ))
    return out


# --- one call for the asset checks ----------------------------------------------------------------------


def validate_partitions(
    con: duckdb.DuckDBPyConnection, partition_dates: list[date | str], now: datetime | None = None,
    record: bool = True, vocabularies: schema.Vocabularies | None = None,
) -> ValidationRun:
    """GX suite + SQL checks on the staging rows of the partitions; records staging.validation_results.
    `vocabularies` default: the settings' (Settings.vocabularies), the same the load used."""
    started = time.perf_counter()
    days = sorted({d if isinstance(d, date) else date.fromisoformat(str(d)) for d in partition_dates})
    now = now or datetime.now()
    df = staging_frame(con, days)
    vocabularies = vocabularies or get_settings().vocabularies()
    outcomes = run_suite(df, now, vocabularies) if len(df) else []
    outcomes += sql_outcomes(con, days)
    run = ValidationRun(partitions=days, rows=len(df), seconds=time.perf_counter() - started, outcomes=outcomes)
    if record:
        record_results(con, run, now)
    return run


def record_results(con: duckdb.DuckDBPyConnection, run: ValidationRun, checked_at: datetime) -> None:
    """Replace the partitions' rows in staging.validation_results (one row per partition and expectation). An
    expectation that also looked at other partitions (the returns of the days after) replaces its own rows of
    those."""
    rows, others = [], []
    for o in run.outcomes:
        name = f"{o.check}:{o.expectation}"
        per = o.per_partition or {}
        for day in run.partitions:
            elements, unexpected = per.get(day, (0, 0))
            ok = unexpected == 0 and (o.success or bool(per))
            rows.append((day, name, o.column, ok, elements, unexpected, checked_at))
        for day in sorted(set(per) - set(run.partitions)):
            elements, unexpected = per[day]
            rows.append((day, name, o.column, unexpected == 0, elements, unexpected, checked_at))
            others.append((day, name))
    frame = pd.DataFrame(rows, columns=["partition_date", "expectation", "column_name", "success", "element_count",
                                        "unexpected_count", "checked_at"])
    with warehouse.transaction(con, _validation_rows=frame):
        con.execute("DELETE FROM staging.validation_results WHERE list_contains(?, partition_date)", [run.partitions])
        for day, name in others:
            con.execute("DELETE FROM staging.validation_results WHERE partition_date = ? AND expectation = ?",
                        [day, name])
        if rows:
            con.execute("INSERT INTO staging.validation_results SELECT * FROM _validation_rows")


NOT_VALIDATED = "not validated since its load"


def partitions_not_passed(con: duckdb.DuckDBPyConnection) -> list[tuple[date, str, str | None]]:
    """(day, why, source file) of each loaded partition whose rows have not passed the blocking checks: one
    failing its latest validation (staging.validation_results), or loaded since its last validation (a run
    stopped between its load and its checks). Nothing downstream (features, training, scoring) may use them."""
    return [tuple(row) for row in con.execute("""
        SELECT a.partition_date,
               CASE WHEN v.checked_at IS NULL OR v.checked_at < a.loaded_at THEN $not_validated
                    ELSE 'fails ' || v.failing END,
               a.source_file
        FROM raw.load_audit AS a
        LEFT JOIN (SELECT partition_date, max(checked_at) AS checked_at,
                          string_agg(CASE WHEN NOT success THEN expectation END, ', ' ORDER BY expectation) AS failing
                   FROM staging.validation_results GROUP BY 1) AS v USING (partition_date)
        WHERE v.checked_at IS NULL OR v.checked_at < a.loaded_at OR v.failing IS NOT NULL
        ORDER BY 1""", {"not_validated": NOT_VALIDATED}).fetchall()]


def name_days(rows: list[tuple], shown: int | None = None) -> str:
    """"day what (file)" for (day, what, source file) rows such as partitions_not_passed's, joined by "; ": the
    first `shown` of them and " ..." when there are more (all of them when `shown` is None)."""
    named = "; ".join(f"{day} {what} ({Path(source).name if source else 'no file'})" for day, what, source in
                      rows[:shown])
    return named + (" ..." if shown is not None and len(rows) > shown else "")


def reconcile(con: duckdb.DuckDBPyConnection, partition_dates: list[date | str]) -> dict:
    """Reconciliation of raw.load_audit with the tables: per partition, rows_read = loaded + rejected and
    the counts of raw.transactions / staging.transactions / raw.rejected_transactions match the audit."""
    days = sorted({d if isinstance(d, date) else date.fromisoformat(str(d)) for d in partition_dates})
    rows = con.execute(
        """WITH a AS (SELECT * FROM raw.load_audit WHERE list_contains($days, partition_date)),
        r AS (SELECT partition_date, count(*) n FROM raw.transactions WHERE list_contains($days, partition_date) GROUP BY 1),
        j AS (SELECT partition_date, count(*) n FROM raw.rejected_transactions WHERE list_contains($days, partition_date) GROUP BY 1),
        s AS (SELECT partition_date, count(*) n FROM staging.transactions WHERE list_contains($days, partition_date) GROUP BY 1)
        SELECT a.partition_date, a.source_file, a.rows_read, a.rows_loaded, a.rows_rejected,
               coalesce(r.n, 0), coalesce(s.n, 0), coalesce(j.n, 0)
        FROM a LEFT JOIN r USING (partition_date) LEFT JOIN s USING (partition_date) LEFT JOIN j USING (partition_date)
        ORDER BY a.partition_date""",
        {"days": days},
    ).fetchall()
    problems = []
    for day, f, read, loaded, rejected, n_raw, n_stg, n_rej in rows:
        if read != loaded + rejected:
            problems.append(f"{day} {f}: rows_read {read} != loaded {loaded} + rejected {rejected}")
        if (n_raw, n_stg, n_rej) != (read, loaded, rejected):
            problems.append(f"{day} {f}: tables raw/staging/rejected = {n_raw}/{n_stg}/{n_rej}, "
                            f"audit says {read}/{loaded}/{rejected}")
    return {
        "partitions": len(rows), "rows_read": sum(r[2] for r in rows), "rows_loaded": sum(r[3] for r in rows),
        "rows_rejected": sum(r[4] for r in rows), "problems": problems, "passed": not problems,
    }
