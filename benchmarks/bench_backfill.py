"""Backfill half of `clv bench ingest`: load every landing file of a folder in one process, in date order,
exactly as the single-run backfill of raw/transactions does (lib.ingest.load_partition per day, one warehouse
connection), into a temporary warehouse. Returns rows/s."""

import shutil
import tempfile
import time
from pathlib import Path

from clv_platform.lib import ingest, schema, validation, warehouse


def _load_all(con, days, landing_dir, bar, failed, totals) -> None:
    for day in days:
        try:
            r = ingest.load_partition(con, day, landing_dir)
            totals[0] += r.rows_read
            totals[1] += r.rows_rejected
        except ingest.LandingFileError as exc:
            failed.append(str(exc))
        if bar:
            bar.update(1)


def run_backfill_bench(landing_dir, validate: bool = True, progress: bool = True) -> dict:
    landing_dir = Path(landing_dir)
    days = sorted(m.group(1) for p in landing_dir.iterdir() if (m := schema.LANDING_FILE_RE.match(p.name)))
    tmp = Path(tempfile.mkdtemp(prefix="clv_bench_backfill_"))
    try:
        con = warehouse.connect(tmp / "warehouse.duckdb")
        totals = [0, 0]
        failed: list[str] = []
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(days), desc="backfill", unit="file")
        t0 = time.perf_counter()
        with ingest.bulk_load(con):
            _load_all(con, days, landing_dir, bar, failed, totals)
        load_s = time.perf_counter() - t0
        if bar:
            bar.close()
        rows, rejected = totals
        out = {"files": len(days), "rows": rows, "rows_rejected": rejected, "files_failed": len(failed),
               "load_seconds": load_s, "rows_per_s": rows / load_s if load_s else 0.0,
               "warehouse_mb": (tmp / "warehouse.duckdb").stat().st_size / 1e6}
        if validate and days:
            t1 = time.perf_counter()
            validation._gx()                       # GX import + context, once per process
            out["gx_import_seconds"] = time.perf_counter() - t1
            t1 = time.perf_counter()
            run = validation.validate_partitions(con, days)
            out["validate_seconds"] = time.perf_counter() - t1
            out["validate_rows_per_s"] = run.rows / out["validate_seconds"]
            out["validation_passed"] = run.success
            out["validated_rows"] = run.rows
        con.close()
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import sys

    for k, v in run_backfill_bench(sys.argv[1]).items():
        print(f"{k}: {v}")
