"""`clv run` (what `make run` calls) end to end on a small demo, as a user runs it: a subprocess with its
own data dir and Dagster instance. Then the pieces a user looks at next are checked: the warehouse counts
reconcile, the snapshot is published, MLflow holds finished runs and production aliases, Dagster has the runs."""

import datetime as dt
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


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clv_run")
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "clv_platform" / "dagster.yaml", home / "dagster.yaml")
    env = {**clean_environ(), "DAGSTER_HOME": str(home), "CLV_DATA_DIR": str(tmp / "data")}
    result = subprocess.run(
        [CLV, "run", "--customers", "3000", "--days", "400", "--seed", "7"],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return tmp, env, result.stdout


@pytest.mark.slow
def test_run_prints_a_summary_with_metrics_segments_and_next_steps(demo_run):
    _, _, out = demo_run
    for text in ("[6/6]", "partitions", "quarantined", "customers", "(scored this snapshot) metrics on held-out customers", "segments", "make dev",
                 "/predict", "clv status"):
        assert text in out, f"{text!r} missing from:\n{out}"


@pytest.mark.slow
def test_run_reconciles_counts_and_publishes_a_snapshot(demo_run):
    tmp, _, _ = demo_run
    data = tmp / "data"
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        read, loaded, rejected = con.execute(
            "SELECT sum(rows_read), sum(rows_loaded), sum(rows_rejected) FROM raw.load_audit").fetchone()
        staged = con.execute("SELECT count(*) FROM staging.transactions").fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM raw.rejected_transactions").fetchone()[0]
        files = con.execute("SELECT count(*) FROM raw.load_audit").fetchone()[0]
    finally:
        con.close()
    assert files == len(list((data / "landing").glob("transactions_*.csv")))
    assert read == loaded + rejected and loaded == staged and rejected == quarantined and loaded > 10_000
    manifest = json.loads((data / "serving" / "current" / "manifest.json").read_text())
    assert manifest["row_counts"]["customer_scores"] > 1000
    assert (data / "serving" / "current" / "customer_scores.parquet").exists()


@pytest.mark.slow
def test_run_leaves_no_mlflow_run_running_and_sets_production(demo_run):
    tmp, env, _ = demo_run
    code = (
        "import mlflow, json; from mlflow import MlflowClient;"
        "from clv_platform.lib.settings import get_settings; s = get_settings();"
        "mlflow.set_tracking_uri(s.mlflow_uri); c = MlflowClient();"
        "runs = mlflow.search_runs(search_all_experiments=True, output_format='list');"
        "print(json.dumps({'statuses': sorted({r.info.status for r in runs}), 'n': len(runs),"
        "'prod': [c.get_model_version_by_alias(m, 'production').version for m in ('clv_model', 'segment_model')]}))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state["n"] >= 2 and state["statuses"] == ["FINISHED"]
    assert [str(v) for v in state["prod"]] == ["1", "1"]


@pytest.mark.slow
def test_dashboard_pages_on_the_published_snapshot(demo_run, monkeypatch):
    """Every page on the snapshot the pipeline published (the page tests use a hand-built one): no exception,
    no table or column reported missing, and the pieces that depend on pipeline columns show up."""
    from clv_platform.lib.snapshot import SnapshotReader
    from clv_platform_tests.dashboards.test_pages_apptest import PAGE_FILES, run_app, run_page, texts

    tmp, _, _ = demo_run
    root = tmp / "data" / "serving"
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp / "data"))
    monkeypatch.setenv("CLV_SNAPSHOT_ROOT", str(root))
    snap = SnapshotReader(root).get()
    scores, history = snap.table("customer_scores"), snap.table("segment_history")
    for page in PAGE_FILES:
        at = run_page(page)
        assert not at.exception, (page, at.exception)
        assert not at.warning and "has no `" not in texts(at), (page, texts(at))
    assert not run_app(REPO / "dashboards" / "streamlit_app.py").exception

    # a customer with monthly history: the lookup shows the history with the median forecast
    customer = str(history["customer_id"].iloc[-1])
    at = run_page("customer_lookup.py", customer_id=customer)
    assert not at.exception and at.subheader[0].value == f"Customer {customer}"
    shown = [t.value for t in at.table]
    assert any("median forecast" in t.columns for t in shown), [list(t.columns) for t in shown]
    # one-time buyers (P(alive) 1 under BG/NBD) are offered on the at-risk page
    assert ((scores["frequency"] == 0) & (scores["p_alive"] == 1.0)).any()
    at = run_page("at_risk.py")
    assert not at.exception and at.toggle(key="risk_one_time") is not None


@pytest.mark.slow
def test_status_after_the_run_is_all_clear(demo_run):
    tmp, env, _ = demo_run
    result = subprocess.run([CLV, "status"], cwd=tmp, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "400 daily files" in out and "0 not loaded yet" in out and "400 partitions" in out
    assert "clv_model     production v1 (holdout_normalized_gini 0." in out
    assert "3,000 customers" in out and out.rstrip().endswith("all clear")


@pytest.mark.slow
def test_api_on_the_published_snapshot(demo_run):
    """/predict on the snapshot the pipeline published (the API tests use a hand-built one): every score
    column, valid JSON, and the numbers equal the snapshot's."""
    import pandas as pd

    from api import create_app
    from clv_platform.lib.scoring import SCORE_COLUMNS
    from clv_platform.lib.snapshot import SnapshotReader

    tmp, _, _ = demo_run
    root = tmp / "data" / "serving"
    scores = SnapshotReader(root).get().table("customer_scores").set_index("customer_id", drop=False)
    ids = [str(i) for i in scores["customer_id"].iloc[[0, 17, -1]]]
    resp = create_app(snapshot_root=root).test_client().post("/predict", json={"customer_ids": ids + ["nobody"]})
    assert resp.status_code == 200
    def no_constants(name):
        raise AssertionError(f"{name} in the response: not valid JSON")

    body = json.loads(resp.get_data(as_text=True), parse_constant=no_constants)
    assert [p["customer_id"] for p in body["predictions"]] == ids and body["unknown_ids"] == ["nobody"]
    for p in body["predictions"]:
        assert set(SCORE_COLUMNS) <= set(p)
        row = scores.loc[p["customer_id"]]
        for col in ("predicted_clv", "predicted_clv_p50", "btyd_clv", "p_alive", "expected_purchases_365d"):
            assert p[col] == (None if pd.isna(row[col]) else float(row[col])), col

    # a customer's months of segment history, as the snapshot holds them
    history = SnapshotReader(root).get().table("segment_history")
    one = ids[0]
    served = create_app(snapshot_root=root).test_client().get(f"/customers/{one}/history").json["history"]
    assert [h["month"] for h in served] == sorted(history.loc[history.customer_id == one, "month"].astype(str))
    assert len(served) > 0

    # the at-risk list a CRM would pull: valuable customers slipping away, by predicted CLV
    threshold = float(scores["predicted_clv"].quantile(0.8))
    listed = create_app(snapshot_root=root).test_client().get(
        f"/customers?max_p_alive=0.5&min_predicted_clv={threshold}&limit=50").json
    expected = scores[(scores.p_alive <= 0.5) & (scores.predicted_clv >= threshold)]
    assert listed["total"] == len(expected) > 0
    assert [c["customer_id"] for c in listed["customers"]] == (
        expected.rename_axis(None).sort_values(["predicted_clv", "customer_id"], ascending=[False, True])
        .customer_id.head(50).tolist())


@pytest.mark.slow
def test_materialize_ingest_loads_only_the_days_asked_for(demo_run):
    """After the run every file is loaded: --new has nothing to do. A new day's file (an earlier day with no
    orders, header only) is then the one day --new loads; --from/--to reload just their days. (Last in this
    module: it writes to the warehouse.)"""
    tmp, env, _ = demo_run
    landing_dir = tmp / "data" / "landing"

    def clv(*args):
        return subprocess.run([CLV, *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=600)

    def audit():
        con = duckdb.connect(str(tmp / "data" / "warehouse.duckdb"), read_only=True)
        try:
            return dict(con.execute("SELECT partition_date, loaded_at FROM raw.load_audit").fetchall())
        finally:
            con.close()

    nothing = clv("materialize", "ingest", "--new")
    assert nothing.returncode == 0 and "nothing to load: every landing file is loaded already" in nothing.stdout

    files = sorted(landing_dir.glob("transactions_*.csv"))
    first = files[0].name.removeprefix("transactions_").removesuffix(".csv")
    earlier = (dt.date.fromisoformat(first) - dt.timedelta(days=1)).isoformat()
    header = files[0].read_text().splitlines()[0]
    (landing_dir / f"transactions_{earlier}.csv").write_text(header + "\n")
    before = audit()
    new = clv("materialize", "ingest", "--new")
    assert new.returncode == 0, new.stdout + new.stderr
    assert f"ingested partitions {earlier}..{earlier}" in new.stdout
    after = audit()
    assert set(after) == set(before) | {dt.date.fromisoformat(earlier)} and all(after[d] == before[d] for d in before)

    days = [dt.date.fromisoformat(f.name[13:23]) for f in files[10:13]]
    ranged = clv("materialize", "ingest", "--from", str(days[0]), "--to", str(days[-1]))
    assert ranged.returncode == 0 and f"ingested partitions {days[0]}..{days[-1]}" in ranged.stdout
    reloaded = audit()
    assert {d for d in reloaded if reloaded[d] != after[d]} == set(days)

    # loaded days' files delivered again with other content are new to --new, each stretch of days its own run
    # (not every day between them); files dated outside the daily partitions are named and left out
    for redelivered in (files[20], files[30]):
        redelivered.write_text("\n".join(redelivered.read_text().splitlines()[:-1]) + "\n")
    for day in ("1999-01-01", "2099-01-01"):
        (landing_dir / f"transactions_{day}.csv").write_text(header + "\n")
    changed = clv("materialize", "ingest", "--new")
    one, two = files[20].name[13:23], files[30].name[13:23]
    assert changed.returncode == 0 and f"ingested partitions {one}..{one}, {two}..{two}" in changed.stdout, \
        changed.stdout + changed.stderr
    assert ("left out: 2 landing file(s) dated outside the daily partitions" in changed.stderr
            and "transactions_1999-01-01.csv, transactions_2099-01-01.csv" in changed.stderr)
    latest = audit()
    assert {d for d in latest if latest[d] != reloaded[d]} == {dt.date.fromisoformat(one), dt.date.fromisoformat(two)}
    for day in ("1999-01-01", "2099-01-01"):
        (landing_dir / f"transactions_{day}.csv").unlink()

    wrong = clv("materialize", "score", "--new")
    assert wrong.returncode == 2 and "--from, --to and --new choose the days of `ingest` only" in wrong.stderr
