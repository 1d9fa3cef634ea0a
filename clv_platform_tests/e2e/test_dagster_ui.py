"""The Dagster UI as a user runs it (`make dev`): dagster-webserver + dagster-daemon as two processes.

Landing files are dropped in, the daemon's landing_files_sensor launches an ingestion run on its own,
and the webserver's GraphQL API shows the asset graph, partitions, sensor, schedules and the finished run.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import requests

from clv_platform_tests.e2e import clean_environ

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HEADER = "order_id,line_number,customer_id,order_ts,category,quantity,unit_price,channel,country,original_order_id\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def step_errors(port: int, run_id: str) -> str:
    """The failed steps' error messages of a run, for a readable assertion."""
    query = ('{ logsForRun(runId: "' + run_id + '") { ... on EventConnection { events {'
             " ... on ExecutionStepFailureEvent { stepKey error { message } } } } } }")
    events = graphql(port, query)["logsForRun"]["events"]
    return "\n".join(f"{e['stepKey']}: {e['error']['message']}" for e in events if e.get("error"))


LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def wait_for_code_location(port: int, deadline: float) -> None:
    """The webserver answers before its code server has loaded the definitions (slower on a busy machine):
    wait until every code location is LOADED, and fail with the load error if one did not load."""
    entries = []
    while time.time() < deadline:
        body = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": LOCATIONS}, timeout=30).json()
        entries = ((body.get("data") or {}).get("workspaceOrError") or {}).get("locationEntries") or []
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e for e in entries if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]
            assert not errors, f"code location failed to load: {errors}"
            return
        time.sleep(1)
    pytest.fail(f"code location not loaded in time: {entries}")


@pytest.fixture()
def dagster_ui(tmp_path):
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    shutil.copy(REPO / "clv_platform" / "dagster.yaml", home / "dagster.yaml")
    landing = data / "landing"
    landing.mkdir(parents=True)
    for day in ("2024-05-01", "2024-05-02"):
        rows = [f"O{day}-{i},1,C{i:03d},{day}T1{i % 10}:00:00,books,1,12.50,web,US,\n" for i in range(20)]
        (landing / f"transactions_{day}.csv").write_text(HEADER + "".join(rows))
    env = {**clean_environ(), "DAGSTER_HOME": str(home), "CLV_DATA_DIR": str(data)}
    port = free_port()
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("daemon", "webserver")}
    # as `make dev`: the instance storage first, so the two processes do not both create it (two alembic heads)
    subprocess.run([BIN / "dagster", "instance", "migrate"], cwd=REPO, env=env, check=True, capture_output=True,
                   timeout=120)
    procs = [
        subprocess.Popen([BIN / "dagster-daemon", "run", "-w", "workspace.yaml"], cwd=REPO, env=env,
                         stdout=logs["daemon"], stderr=subprocess.STDOUT, start_new_session=True),
        subprocess.Popen([BIN / "dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                         cwd=REPO, env=env, stdout=logs["webserver"], stderr=subprocess.STDOUT,
                         start_new_session=True),
    ]
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    break
            except requests.RequestException:  # not listening yet, or too busy starting to answer in time
                pass
            time.sleep(1)
        else:
            pytest.fail("webserver did not come up:\n" + (tmp_path / "webserver.log").read_text()[-3000:])
        wait_for_code_location(port, deadline)
        yield port, data, tmp_path
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for log in logs.values():
            log.close()


@pytest.mark.slow
def test_sensor_launches_ingestion_and_ui_shows_everything(dagster_ui):
    port, data, tmp = dagster_ui
    nodes = graphql(port, "{ assetNodes { assetKey { path } groupName isPartitioned } }")["assetNodes"]
    keys = {"/".join(node["assetKey"]["path"]): node for node in nodes}
    for key in ("raw/transactions", "staging/transactions", "features/customer_features", "models/bgnbd",
                "models/clv_model", "models/segment_model", "serving/customer_scores"):
        assert key in keys, f"{key} missing from the asset graph: {sorted(keys)}"
    assert keys["raw/transactions"]["isPartitioned"] and keys["raw/transactions"]["groupName"] == "ingestion"

    repo = graphql(port, """{ repositoriesOrError { ... on RepositoryConnection { nodes {
        sensors { name sensorState { status } } schedules { name } } } } }""")["repositoriesOrError"]["nodes"][0]
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert sensors["landing_files_sensor"] == "RUNNING"
    # the automation that needs production models or a decision waits to be switched on
    assert sensors["promote_after_training_sensor"] == sensors["rescore_after_ingestion_sensor"] == "STOPPED"
    assert sensors["rescore_after_failed_load_sensor"] == "STOPPED"
    assert {"daily_ingestion_schedule", "weekly_training_schedule"} <= {s["name"] for s in repo["schedules"]}

    # The daemon ticks the sensor, which queues one ranged run for the two consecutive days; the run queue runs it.
    query = """{ runsOrError(filter: {pipelineName: "ingestion_job"}) { ... on Runs { results {
        runId status tags { key value } } } } }"""
    deadline, runs = time.time() + 240, []
    while time.time() < deadline:
        runs = graphql(port, query)["runsOrError"]["results"]
        if runs and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(3)
    assert runs, "the sensor launched no run:\n" + (tmp / "daemon.log").read_text()[-3000:]
    assert runs[0]["status"] == "SUCCESS", json.dumps(runs[0]) + step_errors(port, runs[0]["runId"])
    tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
    assert tags.get("dagster/asset_partition_range_start") == "2024-05-01"
    assert tags.get("dagster/asset_partition_range_end") == "2024-05-02"

    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        by_day = dict(con.execute(
            "SELECT partition_date::VARCHAR, count(*) FROM staging.transactions GROUP BY 1").fetchall())
    finally:
        con.close()
    assert by_day == {"2024-05-01": 20, "2024-05-02": 20}
