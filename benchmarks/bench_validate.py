"""Benchmark: validating 1,000,000 landing rows (row-rule quarantine + the GX suite), goal <= 3 s on 2 cores.

Measured side by side in one run on one synthetic file (benchmarks/landing_synth.py, 1 bad row in 200):
  check_file      file-level checks + row rules, no warehouse (what `clv validate` does)
  load_partition  the same + writing raw/rejected/staging/audit in one transaction (the quarantine at load)
  gx_suite        lib.validation.validate_partitions on the loaded partition (GX batch build + suite + SQL checks)
GX's one-off import/context cost is reported separately (it is paid once per process).
"""

import os
import resource
import shutil
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

DAY = date(2024, 3, 1)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)   # all threads of this process (DuckDB's too)
    return r.ru_utime + r.ru_stime


def run(rows: int = 1_000_000, bad_every: int = 200, repeats: int = 2) -> dict:
    from benchmarks.landing_synth import write_landing_file
    from clv_platform.lib import ingest, validation, warehouse

    tmp = Path(tempfile.mkdtemp(prefix="clv_bench_validate_"))
    try:
        path = write_landing_file(tmp / "landing", DAY, rows, bad_every=bad_every)
        now = datetime(2030, 1, 1)
        load_before = os.getloadavg()[0]  # before our own work raises it
        t = time.perf_counter()
        validation._gx()
        gx_init = time.perf_counter() - t
        con = warehouse.connect(tmp / "warehouse.duckdb")
        best: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for _ in range(repeats):
            t, c = time.perf_counter(), _cpu()
            report = ingest.check_file(path, now=now)
            check_s, check_c = time.perf_counter() - t, _cpu() - c
            t, c = time.perf_counter(), _cpu()
            load = ingest.load_partition(con, DAY, path.parent, now=now)
            load_s, load_c = time.perf_counter() - t, _cpu() - c
            t, c = time.perf_counter(), _cpu()
            vrun = validation.validate_partitions(con, [DAY], now=now)
            gx_s, gx_c = time.perf_counter() - t, _cpu() - c
            for k, v, vc in (("check_file", check_s, check_c), ("load_partition", load_s, load_c),
                             ("gx_suite", gx_s, gx_c)):
                if v < best.get(k, float("inf")):
                    best[k], cpu[k] = v, vc
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
            "cpu_check_file_s": cpu["check_file"], "cpu_load_partition_s": cpu["load_partition"],
            "cpu_gx_suite_s": cpu["gx_suite"], "load_average_1min": load_before,
            "suite_passed": vrun.success, "report_rows_rejected": report.rows_rejected,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    for k, v in run().items():
        print(f"{k}: {v}")
