"""Benchmark: validating 1,000,000 landing rows (row-rule quarantine + the GX suite), goal <= 3 s on 2 cores.

Measured side by side in one run on one synthetic file (benchmarks/landing_synth.py, 1 bad row in 200):
  check_file      file-level checks + row rules, no warehouse (what `clv validate` does)
  load_partition  the same + writing raw/rejected/staging/audit in one transaction (the quarantine at load)
  gx_suite        lib.validation.validate_partitions on the loaded partition (GX batch build + suite + SQL checks)
GX's one-off import/context cost is reported separately (it is paid once per process).
"""

import os
import shutil
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

DAY = date(2024, 3, 1)


def run(rows: int = 1_000_000, bad_every: int = 200, repeats: int = 2) -> dict:
    from benchmarks.landing_synth import write_landing_file
    from clv_platform.lib import ingest, validation, warehouse

    tmp = Path(tempfile.mkdtemp(prefix="clv_bench_validate_"))
    try:
        path = write_landing_file(tmp / "landing", DAY, rows, bad_every=bad_every)
        now = datetime(2030, 1, 1)
        t = time.perf_counter()
        validation._gx()
        gx_init = time.perf_counter() - t
        con = warehouse.connect(tmp / "warehouse.duckdb")
        best: dict[str, float] = {}
        for _ in range(repeats):
            t = time.perf_counter()
            report = ingest.check_file(path, now=now)
            check_s = time.perf_counter() - t
            t = time.perf_counter()
            load = ingest.load_partition(con, DAY, path.parent, now=now)
            load_s = time.perf_counter() - t
            t = time.perf_counter()
            vrun = validation.validate_partitions(con, [DAY], now=now)
            gx_s = time.perf_counter() - t
            for k, v in (("check_file", check_s), ("load_partition", load_s), ("gx_suite", gx_s)):
                best[k] = min(best.get(k, v), v)
        con.close()
        total = best["load_partition"] + best["gx_suite"]
        return {
            "rows": rows, "rows_rejected": load.rows_rejected, "reasons": load.reason_counts,
            "file_mb": path.stat().st_size / 1e6, "cpus": os.cpu_count(),
            "gx_import_and_context_s": gx_init,
            "check_file_s": best["check_file"], "load_partition_s": best["load_partition"],
            "gx_suite_s": best["gx_suite"], "gx_rows_validated": vrun.rows,
            "quarantine_plus_gx_s": total, "rows_per_s": rows / total,
            "validate_only_s": best["check_file"] + best["gx_suite"],
            "suite_passed": vrun.success, "report_rows_rejected": report.rows_rejected,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    for k, v in run().items():
        print(f"{k}: {v}")
