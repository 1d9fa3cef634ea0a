"""raw/transactions, raw/rejected_transactions, raw/load_audit, staging/transactions: one daily-partitioned
multi-asset that loads landing files (lib/ingest.py does the work). A backfill is ONE run over
context.partition_keys; a file-level failure of one day does not undo the other days of the run."""

import json
import time

import dagster as dg

from clv_platform.defs.partitions import daily_partitions
from clv_platform.defs.resources import LandingResource, WarehouseResource
from clv_platform.lib import ingest, schema, validation
from clv_platform.lib.settings import get_settings

RAW_TRANSACTIONS = dg.AssetKey(["raw", "transactions"])
RAW_REJECTED = dg.AssetKey(["raw", "rejected_transactions"])
RAW_LOAD_AUDIT = dg.AssetKey(["raw", "load_audit"])
STAGING_TRANSACTIONS = dg.AssetKey(["staging", "transactions"])
INGESTION_KEYS = (RAW_TRANSACTIONS, RAW_REJECTED, RAW_LOAD_AUDIT, STAGING_TRANSACTIONS)


def _spec(key: dg.AssetKey, description: str, deps=()) -> dg.AssetSpec:
    return dg.AssetSpec(
        key, description=description, deps=list(deps), group_name="ingestion", kinds={"duckdb"}, skippable=True
    )


@dg.multi_asset(
    name="transactions_ingestion",
    specs=[
        _spec(RAW_TRANSACTIONS, "Every row of the day's landing file as text, with source_file and source_line."),
        _spec(RAW_REJECTED, "Quarantined rows of raw.transactions with comma-separated reason codes.",
              deps=[RAW_TRANSACTIONS]),
        _spec(RAW_LOAD_AUDIT, "One row per loaded file: sha256, rows read = loaded + rejected, load time.",
              deps=[RAW_TRANSACTIONS]),
        _spec(STAGING_TRANSACTIONS, "Typed, valid order lines (amount = round(quantity * unit_price, 2)); "
              "the only source of everything downstream.", deps=[RAW_TRANSACTIONS]),
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
)
def transactions_ingestion(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, landing: LandingResource
):
    """Load each partition's landing file in date order; days without a file are skipped with a warning."""
    days = sorted(context.partition_keys)
    try:
        vocabularies = get_settings().vocabularies()
    except schema.VocabularyFileError as exc:
        raise dg.Failure(description=f"vocabularies file unusable, nothing loaded: {exc}") from None
    context.log.info(f"vocabularies (allowed channels, countries, categories): {vocabularies.source}")
    loaded: list[ingest.LoadResult] = []
    skipped: list[str] = []
    failed: dict[str, str] = {}
    started = time.perf_counter()
    every = max(1, len(days) // 20)
    with warehouse.connect() as con, ingest.bulk_load(con):
        for i, day in enumerate(days, 1):
            try:
                result = ingest.load_partition(con, day, landing.path, vocabularies=vocabularies)
            except ingest.MissingLandingFileError as exc:
                skipped.append(day)
                context.log.warning(f"{day}: no landing file, partition skipped ({exc.problem})")
                continue
            except ingest.LandingFileError as exc:
                failed[day] = str(exc)
                context.log.error(f"{day}: file rejected: {exc}")
                continue
            loaded.append(result)
            if i % every == 0 or i == len(days) or result.rows_rejected:
                context.log.info(
                    f"[{i}/{len(days)}] {day}: {result.rows_read} rows read, {result.rows_loaded} loaded, "
                    f"{result.rows_rejected} quarantined ({time.perf_counter() - started:.1f}s)"
                )
        writing = time.perf_counter()
    # (leaving bulk_load checkpoints: the run's rows are written into the warehouse file only now)
    context.log.info(f"warehouse file written (checkpoint) in {time.perf_counter() - writing:.1f}s")
    metadata = _metadata(days, loaded, skipped, failed, time.perf_counter() - started)
    samples = _rejected_samples(warehouse, [r.partition_date for r in loaded if r.rows_rejected])
    if failed:
        # Keep what was loaded: report each good partition as materialized, then fail the step. The step's
        # asset checks will not run, so validate the loaded partitions here: staging.validation_results (clv
        # status, the data-quality page) then describes what the warehouse holds now, not the previous load.
        failing = ""
        if loaded:
            days_loaded = {r.partition_date for r in loaded}
            with warehouse.connect() as con:
                run = validation.validate_partitions(con, sorted(days_loaded), vocabularies=vocabularies)
                reconciled = validation.reconcile(con, sorted(days_loaded))
                bad = [row for row in validation.partitions_not_passed(con) if row[0] in days_loaded]
            # named as the checks would name them: the day, what fails, the file (they show "execution failed")
            failing = validation.name_days(bad, 5)
            context.log.info(f"validated the {len(loaded)} loaded partition(s): "
                             + ("every expectation met" if run.success else
                                f"{sum(not o.success for o in run.outcomes)} expectation(s) failed: {failing}"))
            if not reconciled["passed"]:
                context.log.error(f"load audit does not reconcile: {reconciled['problems'][:5]}")
                failing += f"{'; ' if failing else ''}load audit does not reconcile: {reconciled['problems'][:3]}"
        for result in loaded:
            for key in INGESTION_KEYS:
                yield dg.AssetMaterialization(asset_key=key, partition=result.partition_date.isoformat(),
                                              metadata=_day_metadata(result, samples if key == RAW_REJECTED else {}))
        raise dg.Failure(
            description=f"{len(failed)} of {len(days)} landing file(s) rejected: "
            + "; ".join(failed[d] for d in sorted(failed))
            + (f". Loaded, but failing their checks (scoring refuses them until reloaded): {failing}" if failing
               else ""),
            metadata={**metadata, "failed_files": dg.MetadataValue.json(failed),
                      **({"loaded_days_failing_checks": dg.MetadataValue.text(failing)} if failing else {})},
        )
    # A ranged run materialises every partition of its range at once: each partition gets its own day's figures
    # (or why nothing was loaded), and the run's totals are the run_* entries of all of them.
    for key in INGESTION_KEYS:
        for result in loaded:
            context.add_asset_metadata(_day_metadata(result, samples if key == RAW_REJECTED else {}), asset_key=key,
                                       partition_key=result.partition_date.isoformat())
        for day in skipped:
            context.add_asset_metadata({"skipped": "no landing file: nothing loaded for this day"}, asset_key=key,
                                       partition_key=day)
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


def _day_metadata(result: ingest.LoadResult, samples: dict | None = None) -> dict:
    meta = {"rows_read": result.rows_read, "rows_loaded": result.rows_loaded, "rows_rejected": result.rows_rejected,
            "reasons": dg.MetadataValue.json(result.reason_counts), "file": result.source_file}
    if samples and result.partition_date in samples:
        meta["rejected_rows"] = dg.MetadataValue.md(samples[result.partition_date])
    return meta


REJECTED_SAMPLE = 10


def _rejected_samples(warehouse: WarehouseResource, days: list) -> dict:
    """day -> markdown table of its first REJECTED_SAMPLE quarantined rows (line, reasons, the row as read), so
    the UI shows what was wrong, not only how many (all of them: raw.rejected_transactions, `clv validate FILE`)."""
    if not days:
        return {}
    as_read = ", ".join(f"coalesce({column}, '')" for column in schema.LANDING_COLUMNS)   # the file's columns
    with warehouse.connect() as con:
        rows = con.execute(f"""
            SELECT partition_date, source_line, reasons, concat_ws(',', {as_read}) AS row
            FROM raw.rejected_transactions WHERE list_contains($days, partition_date)
            QUALIFY row_number() OVER (PARTITION BY partition_date ORDER BY source_line) <= $n
            ORDER BY partition_date, source_line""", {"days": days, "n": REJECTED_SAMPLE}).fetchall()
    tables: dict = {}
    for day, line, reasons, row in rows:
        cell = row.replace("|", "/").replace("`", "'")[:200]
        tables.setdefault(day, ["| line | reasons | row as read |", "| --- | --- | --- |"]).append(
            f"| {line} | {reasons} | `{cell}` |")
    return {day: "\n".join(lines) for day, lines in tables.items()}


def _metadata(days, loaded, skipped, failed, seconds) -> dict:
    """The run's totals (prefixed run_: in a ranged run every partition carries them next to its own figures)."""
    reasons: dict[str, int] = {}
    for r in loaded:
        for code, n in r.reason_counts.items():
            reasons[code] = reasons.get(code, 0) + n
    rows_read = sum(r.rows_read for r in loaded)
    meta = {
        "run_partitions": dg.MetadataValue.int(len(days)),
        "run_files_loaded": dg.MetadataValue.int(len(loaded)),
        "run_rows_read": dg.MetadataValue.int(rows_read),
        "run_rows_loaded": dg.MetadataValue.int(sum(r.rows_loaded for r in loaded)),
        "run_rows_rejected": dg.MetadataValue.int(sum(r.rows_rejected for r in loaded)),
        "run_reasons": dg.MetadataValue.json(reasons),
        "run_seconds": dg.MetadataValue.float(round(seconds, 3)),
        "run_rows_per_second": dg.MetadataValue.float(round(rows_read / seconds, 1) if seconds else 0.0),
        "run_files": dg.MetadataValue.text(
            ", ".join(r.source_file for r in loaded[:10]) + (f" ... (+{len(loaded) - 10})" if len(loaded) > 10 else "")
        ),
    }
    if skipped:
        meta["warning_days_without_file"] = dg.MetadataValue.text(
            f"{len(skipped)} day(s) without a landing file were skipped: "
            + json.dumps(skipped[:20]) + (" ..." if len(skipped) > 20 else "")
        )
    if failed:
        meta["run_files_failed"] = dg.MetadataValue.int(len(failed))
    return meta
