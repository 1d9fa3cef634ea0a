"""The code location loads, with the whole asset graph, jobs, sensors and schedules of the design."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from clv_platform.definitions import defs

REPO = Path(__file__).resolve().parents[2]
EXPECTED_ASSETS = {
    "raw/transactions": "ingestion",
    "raw/rejected_transactions": "ingestion",
    "raw/load_audit": "ingestion",
    "staging/transactions": "ingestion",
    "features/customer_features": "features",
    "models/bgnbd": "btyd",
    "models/gamma_gamma": "btyd",
    "features/btyd_predictions": "btyd",
    "models/clv_model": "models",
    "models/segment_model": "models",
    "serving/customer_scores": "serving",
    "serving/segment_history": "serving",
}


def test_definitions_load_with_every_asset_job_sensor_and_schedule():
    repo = defs().get_repository_def()
    graph = repo.asset_graph
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    for key, group in EXPECTED_ASSETS.items():
        assert groups.get(key) == group, f"{key}: expected group {group}, found {groups.get(key)}"
    assert {"ingestion_job", "training_job", "scoring_job", "segment_history_job"} <= set(repo.job_names)
    assert {s.name for s in repo.sensor_defs} >= {"landing_files_sensor", "rescore_after_ingestion_sensor"}
    assert {s.name for s in repo.schedule_defs} >= {"daily_ingestion_schedule", "weekly_training_schedule"}
    raw = graph.get(dg.AssetKey(["raw", "transactions"]))
    assert raw.partitions_def is not None and raw.backfill_policy == dg.BackfillPolicy.single_run()
    staging = dg.AssetKey(["staging", "transactions"])
    blocking = [graph.get_check_spec(key) for key in graph.asset_check_keys if key.asset_key == staging]
    assert blocking and all(spec.blocking for spec in blocking)


def test_dagster_cli_validates_the_workspace():
    result = subprocess.run(
        [Path(sys.executable).parent / "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
