"""Real data through the very same path as the daily files: the CDNOW sample as landing files, loaded and
validated by the ingestion job, then the BTYD backtest on the warehouse reproduces the published fit."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from clv_platform_tests.e2e import clean_environ

REPO = Path(__file__).resolve().parents[2]
CLV = Path(sys.executable).parent / "clv"


@pytest.mark.slow
def test_cdnow_sample_landing_files_to_warehouse_reproduce_the_published_bgnbd(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "clv_platform" / "dagster.yaml", home / "dagster.yaml")
    env = {**clean_environ(), "DAGSTER_HOME": str(home), "CLV_DATA_DIR": str(tmp_path / "data"),
           "CLV_PARTITIONS_START": "1997-01-01"}

    def clv(*args: str) -> str:
        result = subprocess.run([CLV, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    clv("import-cdnow", "--sample")
    clv("materialize", "ingest")
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)
    try:
        files, read, loaded, rejected = con.execute(
            "SELECT count(*), sum(rows_read), sum(rows_loaded), sum(rows_rejected) FROM raw.load_audit").fetchone()
        customers = con.execute("SELECT count(DISTINCT customer_id) FROM staging.transactions").fetchone()[0]
    finally:
        con.close()
    assert (files, read, loaded, rejected, customers) == (546, 6919, 6919, 0, 2357)

    out = clv("backtest", "--dataset", "warehouse", "--cutoff", "1997-09-30", "--horizon-days", "273",
              "--folds", "1", "--no-pareto")
    bgnbd = json.loads(out)["params"]["bgnbd"]
    published = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
    for name, value in published.items():
        assert bgnbd["params"][name] == pytest.approx(value, abs=1e-3)
    assert bgnbd["log_likelihood"] == pytest.approx(-9582.43, abs=1e-2)
