"""Blocking data-quality checks on staging/transactions (Great Expectations suite + SQL checks, lib/validation.py)
and the reconciliation check on raw/load_audit. A failed check stops the assets downstream in the same run, and
`require_passed_checks` stops them in later runs too."""

import dagster as dg

from clv_platform.defs.ingestion.assets import RAW_LOAD_AUDIT, STAGING_TRANSACTIONS
from clv_platform.defs.resources import WarehouseResource
from clv_platform.lib import validation


def _run_days(context) -> list[str] | None:
    """Partitions of the run (single key or a range); None when the run is not partitioned."""
    try:
        if context.has_partition_key_range or context.has_partition_key:
            return list(context.partition_keys)
    except Exception:  # noqa: BLE001 - unpartitioned run of a check
        pass
    tags = context.run.tags
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        from clv_platform.defs.partitions import daily_partitions

        return daily_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
    return None


def _all_loaded_days(con) -> list[str]:
    return [str(d) for (d,) in con.execute("SELECT partition_date FROM raw.load_audit ORDER BY 1").fetchall()]


def _days_to_check(context, con) -> list[str]:
    """The run's days that hold a loaded file (a day of the range without a file has nothing to validate: it
    was recorded as validated, and counted so in the snapshot), or every loaded day for an unpartitioned run."""
    loaded = _all_loaded_days(con)
    run_days = _run_days(context)
    if run_days is None:
        return loaded
    have = set(loaded)
    return [day for day in run_days if day in have] or run_days


def _table(outcomes) -> str:
    lines = ["| expectation | column | ok | rows | unexpected | partitions failing | examples |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for o in outcomes:
        ex = "; ".join(str(x) for x in o.examples[:3]).replace("|", "/")
        parts = ", ".join(o.partitions_failed[:5]) + (" ..." if len(o.partitions_failed) > 5 else "")
        lines.append(f"| {o.expectation} | {o.column or ''} | {'yes' if o.success else 'NO'} | {o.element_count} "
                     f"| {o.unexpected_count} | {parts} | {ex} |")
    return "\n".join(lines)


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset=STAGING_TRANSACTIONS, blocking=True, description=description)
        for name, description in validation.CHECKS.items()
    ],
)
def staging_transactions_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Runs the GX suite once over all partitions of the run and reports one result per check."""
    with warehouse.connect() as con:
        days = _days_to_check(context, con)
        run = validation.validate_partitions(con, days)
    context.log.info(f"validated {run.rows} staging rows of {len(days)} partition(s) in {run.seconds:.2f}s")
    for name, outcomes in run.checks().items():
        failed = [o for o in outcomes if not o.success]
        yield dg.AssetCheckResult(
            asset_key=STAGING_TRANSACTIONS,
            check_name=name,
            passed=not failed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=_failure(failed),
            metadata={
                "partitions": dg.MetadataValue.int(len(days)),
                "rows_validated": dg.MetadataValue.int(run.rows),
                "expectations": dg.MetadataValue.int(len(outcomes)),
                "failed_expectations": dg.MetadataValue.json([o.expectation for o in failed]),
                "unexpected_rows": dg.MetadataValue.int(sum(o.unexpected_count for o in outcomes)),
                "examples": dg.MetadataValue.json([x for o in failed for x in o.examples][:10]),
                "partitions_failing": dg.MetadataValue.json(
                    sorted({p for o in failed for p in o.partitions_failed})[:50]),
                "results": dg.MetadataValue.md(_table(outcomes)),
                "seconds": dg.MetadataValue.float(round(run.seconds, 3)),
            },
        )


def _failure(failed) -> str | None:
    """A failed check in one line: the first failing expectation, its unexpected values and on how many days."""
    if not failed:
        return None
    first = failed[0]
    days = {p for o in failed for p in o.partitions_failed}
    return (f"{first.expectation} on {first.column or 'table'}: {first.unexpected_count:,} unexpected"
            + (f" on {len(days):,} day(s)" if days else "")
            + (f", e.g. {first.examples[0]}" if first.examples else ""))


@dg.asset_check(asset=RAW_LOAD_AUDIT, blocking=True,
                description="For every file: rows read = loaded + rejected, and the tables hold exactly those rows.")
def load_audit_reconciles_with_tables(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    with warehouse.connect() as con:
        days = _days_to_check(context, con)
        result = validation.reconcile(con, days)
    return dg.AssetCheckResult(
        passed=result["passed"],
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "files": dg.MetadataValue.int(result["partitions"]),
            "rows_read": dg.MetadataValue.int(result["rows_read"]),
            "rows_loaded": dg.MetadataValue.int(result["rows_loaded"]),
            "rows_rejected": dg.MetadataValue.int(result["rows_rejected"]),
            "problems": dg.MetadataValue.json(result["problems"][:20]),
        },
    )


def require_passed_checks(con) -> None:
    """The checks on staging/transactions block what is downstream in their own run only; a later run (a load of
    another day, the rescore sensor, `clv materialize score`) would compute from a day that failed them. So the
    features (the first step of training and scoring) and the segment history refuse while any loaded day has
    not passed them."""
    bad = validation.partitions_not_passed(con)
    if bad:
        raise dg.Failure(description=(
            f"{len(bad)} loaded partition(s) have not passed the blocking checks: {validation.name_days(bad, 3)}"
            f". Fix the file(s) and load the day(s) again (`clv materialize ingest --from {bad[0][0]} --to "
            f"{bad[-1][0]}`; `clv validate FILE` and `clv status` say what is wrong; a day's quarantine share you "
            "accept: `clv accept-quarantine DAY --reason ...`): nothing downstream uses a day that failed its checks."))
