"""Benchmark: demo-data generator (customers/s, lines written) and, when benchmarks/bench_backfill.py exists,
the backfill of the very same landing files (rows/s), measured side by side in one run.

Default: 1,000,000 customers over 730 days (several million order lines) into a temporary directory that is
removed afterwards. `run_backfill_bench(landing_dir)` (bench_backfill.py, owned by ingestion) loads every file
in one process and returns rows/s (a number, or a dict with `rows_per_s`).
"""

import datetime as dt
import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path

from clv_platform.lib import generator

START = dt.date(2023, 1, 1)


def _load_backfill_bench():
    path = Path(__file__).with_name("bench_backfill.py")
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("bench_backfill", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "run_backfill_bench", None)


def _dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.iterdir() if p.is_file())


def run(customers: int = 1_000_000, days: int = 730, seed: int = 42, fmt: str = "csv", backfill: bool = True,
        keep_dir: str | None = None, progress: bool = True) -> dict:
    """Generate, then (if available) backfill; returns the figures as a dict."""
    tmp = None
    if keep_dir:
        landing = Path(keep_dir)
    else:
        tmp = tempfile.mkdtemp(prefix="clv_bench_ingest_")
        landing = Path(tmp) / "landing"
    try:
        t0 = time.perf_counter()
        s = generator.generate(landing, customers=customers, start=START, days=days, seed=seed, fmt=fmt,
                               progress=progress, clean=True)
        gen_s = time.perf_counter() - t0
        result = {
            "customers": customers, "days": days, "format": fmt, "cpus": os.cpu_count(),
            "orders": s.orders, "lines": s.lines, "return_lines": s.return_lines, "files": s.files,
            "bytes_written": _dir_bytes(landing),
            "generate_seconds": gen_s,
            "generator_customers_per_s": customers / gen_s,
            "generator_lines_per_s": s.lines / gen_s,
        }
        bench_backfill = _load_backfill_bench() if backfill else None
        if bench_backfill is None:
            result["backfill"] = "skipped" if not backfill else "benchmarks/bench_backfill.py not available"
        else:
            t1 = time.perf_counter()
            out = bench_backfill(landing)
            result["backfill_seconds"] = time.perf_counter() - t1
            if isinstance(out, dict):
                result["backfill"] = out
                rate = out.get("rows_per_s")
            else:
                rate = out
            if rate:
                result["backfill_rows_per_s"] = float(rate)
                result["generate_to_backfill_ratio"] = result["generator_lines_per_s"] / float(rate)
        return result
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    for k, v in run().items():
        print(f"{k}: {v}")
