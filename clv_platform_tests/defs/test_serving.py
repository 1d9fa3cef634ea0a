"""serving/segment_history and serving/customer_scores end to end on a small simulated warehouse, with tiny real
models registered and promoted in a temporary MLflow registry."""

import datetime as dt
import json
import os

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest

from clv_platform.defs.resources import default_resources
from clv_platform.defs.serving.assets import (
    STABILITY_CHECK,
    _stability_check,
    customer_scores,
    segment_history,
)
from clv_platform.lib import registry, scoring, segmentation, snapshot, warehouse
from clv_platform_tests.lib.mlflow_store import new_store

START = dt.date(2024, 1, 1)
END = dt.date(2024, 12, 20)


# -- tiny real models (pickled by reference: this module is importable) ------------------------------------


class TinyClv:
    horizon_days = 273  # the CLV model's horizon: the manifest records it

    def __init__(self, factor: float):
        self.factor = factor

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        base = df["btyd_clv"].fillna(0.0).astype(float) * self.factor
        return pd.DataFrame(
            {"predicted_clv": base, "predicted_clv_p10": base * 0.5, "predicted_clv_p90": base * 1.5}, index=df.index
        )


class TinySegments:
    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        active = df["p_alive"].astype(float) >= 0.5
        return pd.DataFrame(
            {"segment_id": np.where(active, 1, 2), "segment_name": np.where(active, "active", "dormant")},
            index=df.index,
        )


class Wrapper(mlflow.pyfunc.PythonModel):
    def __init__(self, model):
        self._model = model

    def load_context(self, context):
        self.model = self._model

    def predict(self, context, model_input, params=None):
        return self.model.predict(pd.DataFrame(model_input))


def _register(uri, root, name, metric, value, model) -> str:
    registry.configure(uri)
    experiment_id = registry.ensure_experiment("tests", root / "mlartifacts", uri)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric(metric, value)
        mlflow.pyfunc.log_model(name="model", python_model=Wrapper(model), pip_requirements=[])
    version = registry.register(run.info.run_id, "model", name, tracking_uri=uri)
    assert registry.promote(name, metric, force=True, tracking_uri=uri).promoted
    return version


def _simulate_transactions(n: int = 300, seed: int = 7) -> pd.DataFrame:
    """BG/NBD-like purchases in days: Poisson(λ) arrivals, drop-out with prob. p after each purchase."""
    rng = np.random.default_rng(seed)
    horizon = (END - START).days
    rows = []
    for c in range(n):
        lam, p = rng.gamma(0.6, 1 / 20), rng.beta(1.0, 4.0)
        t = float(rng.integers(0, 200))
        first = True
        while t <= horizon:
            day = START + dt.timedelta(days=int(t))
            qty = int(rng.integers(1, 4))
            price = round(float(rng.gamma(2.0, 15.0)), 2)
            rows.append((day, f"o{c}-{len(rows)}", 1, f"c{c:04d}", dt.datetime.combine(day, dt.time(12)), "music",
                         qty, price, round(qty * price, 2), "web", "US", None, "sim.csv", len(rows) + 2))
            if not first and rng.random() < p:
                break
            first = False
            t += rng.exponential(1 / lam)
    cols = ["partition_date", "order_id", "line_number", "customer_id", "order_ts", "category", "quantity",
            "unit_price", "amount", "channel", "country", "original_order_id", "source_file", "source_line"]
    return pd.DataFrame(rows, columns=cols)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    mp = pytest.MonkeyPatch()
    mp.setenv("CLV_DATA_DIR", str(root))
    mp.delenv("CLV_SNAPSHOT_ROOT", raising=False)
    resources = default_resources()
    assert new_store(root) == resources["mlflow"].tracking_uri
    con = warehouse.connect(resources["warehouse"].database)
    tx = _simulate_transactions()
    con.register("tx", tx)
    con.execute("INSERT INTO staging.transactions SELECT * FROM tx")
    con.execute(
        "INSERT INTO staging.validation_results VALUES "
        "('2024-12-19', 'expect_column_values_to_be_between', 'amount', true, 10, 0, now()),"
        "('2024-12-20', 'expect_column_values_to_not_be_null', 'customer_id', true, 12, 0, now())"
    )
    con.close()
    uri = resources["mlflow"].tracking_uri
    versions = {
        "clv_model": _register(uri, root, "clv_model", "holdout_normalized_gini", 0.7, TinyClv(1.1)),
        "segment_model": _register(uri, root, "segment_model", "stability_weighted_silhouette", 0.4, TinySegments()),
    }
    yield {"root": root, "resources": resources, "versions": versions, "customers": tx["customer_id"].nunique(),
           "as_of": tx["partition_date"].max()}
    mp.undo()


def _no_running_mlflow_runs(uri: str) -> None:
    c = registry.client(uri)
    experiments = [e.experiment_id for e in c.search_experiments()]
    assert not c.search_runs(experiments, filter_string="attributes.status = 'RUNNING'")


def test_segment_history_backfill_then_scores_and_snapshot(env, monkeypatch):
    resources, root = env["resources"], env["root"]
    con_path = resources["warehouse"].database

    # Two months backfilled as ONE run (single-run backfill policy), then a third month on its own.
    result = dg.materialize(
        [segment_history],
        resources=resources,
        tags={"dagster/asset_partition_range_start": "2024-09-01", "dagster/asset_partition_range_end": "2024-10-01"},
    )
    assert result.success
    # Then Nov 2024 .. Jan 2025: December is taken as of the latest order day, January (no data) is skipped.
    result = dg.materialize(
        [segment_history],
        resources=resources,
        tags={"dagster/asset_partition_range_start": "2024-11-01", "dagster/asset_partition_range_end": "2025-01-01"},
    )
    assert result.success
    by_month = {m.partition: m.metadata for m in result.asset_materializations_for_node("serving__segment_history")}
    assert by_month["2024-11-01"]["run_skipped"].value == ["2025-01"]
    # each month its own figures: customers of that month, or why it has none
    assert "customers" not in by_month["2025-01-01"] and "nothing written" in by_month["2025-01-01"]["skipped"].value
    assert 0 < by_month["2024-11-01"]["customers"].value < by_month["2024-11-01"]["run_customers"].value
    # the MLflow run of each backfill names its partition range and what it wrote
    c = registry.client(resources["mlflow"].tracking_uri)
    runs = c.search_runs([e.experiment_id for e in c.search_experiments()],
                         filter_string="tags.dagster_asset = 'serving/segment_history'", order_by=["start_time"])
    assert [r.data.tags["dagster_partition"] for r in runs] == ["2024-09-01..2024-10-01", "2024-11-01..2025-01-01"]
    assert runs[1].data.params["months_written"] == "2024-11,2024-12" and runs[1].data.params["months_skipped"] == "2025-01"
    assert runs[1].data.metrics["customers_written"] == by_month["2024-11-01"]["run_customers"].value
    with warehouse.connect(con_path) as con:
        months = con.execute(
            "SELECT month, min(as_of_date), count(*) FROM serving.segment_history GROUP BY month ORDER BY month"
        ).fetchall()
        migration = con.execute("SELECT * FROM serving.segment_migration").df()
    assert [(m, d) for m, d, _ in months] == [
        ("2024-09", dt.date(2024, 9, 30)), ("2024-10", dt.date(2024, 10, 31)), ("2024-11", dt.date(2024, 11, 30)),
        ("2024-12", env["as_of"]),
    ]
    assert months[0][2] <= months[1][2] <= months[2][2] <= months[3][2] == env["customers"]
    assert set(zip(migration["from_month"], migration["to_month"], strict=True)) == {
        ("2024-09", "2024-10"), ("2024-10", "2024-11"), ("2024-11", "2024-12")
    }
    per_pair = migration.groupby(["from_month", "to_month"])["customers"].sum()
    # Every customer of the later month (and every one of the earlier month) is counted once.
    assert per_pair[("2024-09", "2024-10")] >= months[1][2]

    # Scores as of the latest day with the production models, published as a snapshot.
    result = dg.materialize([customer_scores], resources=resources)
    assert result.success
    meta = result.asset_materializations_for_node("serving__customer_scores")[0].metadata
    snapshot_id = meta["snapshot_id"].value
    (first_check,) = result.get_asset_check_evaluations()      # nothing to compare with yet: passes, says so
    assert first_check.check_name == STABILITY_CHECK and first_check.passed
    assert first_check.description == "first scoring: nothing to compare with"

    with warehouse.connect(con_path) as con:
        scores = con.execute("SELECT * FROM serving.customer_scores ORDER BY customer_id").df()
    assert len(scores) == env["customers"] and scores["customer_id"].is_unique
    assert list(scores.columns[: len(scoring.SCORE_COLUMNS)]) == scoring.SCORE_COLUMNS
    as_of = env["as_of"]
    assert (scores["as_of_date"] == pd.Timestamp(as_of)).all()
    assert (scores["predicted_clv_p10"] <= scores["predicted_clv"]).all()
    assert (scores["predicted_clv"] <= scores["predicted_clv_p90"]).all()
    assert np.allclose(scores["predicted_clv"], scores["btyd_clv"] * 1.1)
    assert scores["predicted_clv_p50"].isna().all()  # TinyClv has no median forecast: the column stays empty
    assert set(scores["segment_name"]) <= {"active", "dormant"}
    assert (scores["clv_model_version"] == env["versions"]["clv_model"]).all()
    # segment_since goes back through the monthly history while the segment stays the same.
    with warehouse.connect(con_path) as con:
        hist = con.execute("SELECT customer_id, as_of_date, segment_name FROM serving.segment_history").df()
    expected = scoring.with_segment_since(scores.assign(segment_since=None), hist)["segment_since"]
    assert (pd.to_datetime(scores["segment_since"]) == pd.to_datetime(expected)).all()
    assert (pd.to_datetime(scores["segment_since"]) < pd.Timestamp(as_of)).any()

    reader = snapshot.SnapshotReader(root / "serving")
    snap = reader.get()
    assert snap.snapshot_id == snapshot_id
    assert set(snapshot.CONTRACT_TABLES) <= set(snap.table_names)
    manifest = snap.manifest
    assert manifest["as_of_date"] == as_of.isoformat()
    assert manifest["model_versions"] == env["versions"]
    assert manifest["row_counts"]["customer_scores"] == env["customers"]
    assert manifest["metrics"]["clv_model.holdout_normalized_gini"] == 0.7
    assert manifest["clv_horizon_days"] == 273                  # what the dashboard states the total CLV over
    assert manifest["data_quality"] == {"days": scoring.DQ_DAYS, "partitions_validated": 2}
    served = snap.table("customer_scores")
    assert len(served) == env["customers"] and served["as_of_date"].iloc[0] == as_of
    assert snap.table("segment_summary")["customers"].sum() == env["customers"]
    assert set(snap.table("model_metrics")["model"]) == {"clv_model", "segment_model"}
    quality = snap.table("data_quality")
    assert len(quality) == 2 and {"expectation", "success", "rows_read", "rows_rejected"} <= set(quality.columns)
    served_history = snap.table("segment_history")
    assert len(served_history) == sum(n for _, _, n in months)
    assert list(served_history.columns) == scoring.SNAPSHOT_HISTORY_COLUMNS  # the median forecast included
    assert len(snap.table("segment_migration")) == len(migration)
    assert json.loads((snap.path / "manifest.json").read_text())["snapshot_id"] == snapshot_id

    # Re-scoring: segment_since is carried over from the previous scores; a new snapshot is swapped in. Drift
    # is measured against the scores served: a scoring killed after writing serving.customer_scores but before
    # publishing (simulated: other values in that table) must not be what the next one compares with.
    with warehouse.connect(con_path) as con:
        con.execute("UPDATE serving.customer_scores SET predicted_clv = predicted_clv * 3 + 1, p_alive = 0.01")
    monkeypatch.setenv("CLV_SNAPSHOTS_KEPT", "1")                 # only the one served stays on disk
    result = dg.materialize([customer_scores], resources=resources)
    assert result.success
    (check,) = result.get_asset_check_evaluations()            # same data, same models: nothing moved
    psi = check.metadata["psi"].value
    assert check.passed and set(psi) == {*scoring.DRIFT_COLUMNS, "segment_name"} and max(psi.values()) == 0.0
    assert reader.get().manifest["metrics"]["psi.predicted_clv"] == 0.0
    with warehouse.connect(con_path) as con:
        again = con.execute("SELECT customer_id, segment_since FROM serving.customer_scores ORDER BY customer_id").df()
    assert (again["segment_since"].to_numpy() == scores["segment_since"].to_numpy()).all()
    assert reader.get().snapshot_id != snapshot_id
    assert snapshot.list_snapshots(root / "serving") == [reader.get().snapshot_id]
    assert os.path.islink(root / "serving" / "current")

    # Every materialisation above logged to MLflow (the score runs): none is left RUNNING.
    _no_running_mlflow_runs(resources["mlflow"].tracking_uri)


def test_a_large_shift_since_the_previous_scoring_warns_and_names_the_scores():
    rng = np.random.default_rng(1)
    before = pd.DataFrame({"predicted_clv": rng.gamma(2, 50, 5000), "p_alive": rng.uniform(0, 1, 5000),
                           "segment_name": rng.choice(["loyal", "at risk"], 5000)})
    after = before.assign(predicted_clv=before["predicted_clv"] * 3)     # e.g. a new model that triples values
    drift = scoring.score_drift(before, after)
    assert drift["p_alive"] == 0.0 and drift["segment_name"] == 0.0 and drift["predicted_clv"] > 0.25
    check = _stability_check(drift, before)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.description.startswith("large shift since the previous scoring") and "predicted_clv" in check.description
    assert "p_alive" not in check.description
    assert scoring.score_drift(None, after) == {}


def test_with_segment_since_walks_back_the_current_run():
    scores = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"],
        "segment_name": ["x", "x", "y", "x"],
        "as_of_date": pd.Timestamp("2024-04-15"),
    })
    earlier = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "b", "c"],
        "as_of_date": pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31", "2024-02-29", "2024-03-31",
                                      "2024-03-31"]),
        "segment_name": ["x", "y", "x", "x", "x", "x"],
    })
    since = scoring.with_segment_since(scores, earlier)["segment_since"]
    assert list(since) == [pd.Timestamp("2024-03-31"), pd.Timestamp("2024-02-29"), pd.Timestamp("2024-04-15"),
                           pd.Timestamp("2024-04-15")]
    # A previous score row's own segment_since extends the run further back.
    prev = pd.DataFrame({"customer_id": ["b"], "as_of_date": [pd.Timestamp("2024-04-01")], "segment_name": ["x"],
                         "segment_since": [pd.Timestamp("2023-06-30")]})
    since = scoring.with_segment_since(scores, pd.concat([earlier, prev]))["segment_since"]
    assert since.iloc[1] == pd.Timestamp("2023-06-30")


def test_new_customers_are_in_their_segment_since_their_first_purchase():
    from clv_platform_tests.lib.test_segmentation import population

    pop = population(600).assign(days_since_last_order=lambda d: d["days_since_last_order"].round())
    seg = segmentation.fit(pop, k_range=[3], n_bootstrap=1)
    scores = scoring.score(pop.rename(columns={"predicted_clv": "btyd_clv"}), TinyClv(1.0), seg,
                           dt.date(2024, 4, 15))
    new = (scores["segment_name"] == segmentation.NEW_CUSTOMERS).to_numpy()
    assert 0 < new.sum() < len(pop)
    first_purchase = pd.Timestamp("2024-04-15") - pd.to_timedelta(pop["days_since_last_order"], unit="D")
    assert (scores["segment_since"][new] == first_purchase[new]).all()
    assert (scores["segment_since"][~new] == pd.Timestamp("2024-04-15")).all()
    # a month-end in the same segment does not move it later; an earlier run of the segment wins as before
    one = scores[new].head(1)
    month_end = pd.DataFrame({"customer_id": one["customer_id"], "as_of_date": one["segment_since"] + pd.Timedelta(days=1),
                              "segment_name": one["segment_name"], "segment_since": one["segment_since"]})
    assert scoring.with_segment_since(one, month_end.assign(segment_since=pd.NaT))["segment_since"].iloc[0] \
        == one["segment_since"].iloc[0]
    earlier = month_end.assign(segment_since=one["segment_since"] - pd.Timedelta(days=40))
    assert scoring.with_segment_since(one, earlier)["segment_since"].iloc[0] == earlier["segment_since"].iloc[0]


def test_scores_fail_clearly_without_production_models(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    new_store(tmp_path)
    result = dg.materialize([customer_scores], resources=default_resources(), raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.message
    # nothing trained yet: train first, then promote (not "promote" alone, which would find nothing)
    assert "no clv_model or segment_model trained yet: train first (training_job, `clv materialize train`), " \
           "then promote (`clv promote clv`, `clv promote segment`)" in failure


def test_model_metrics_table_splits_compared_models():
    table = scoring.model_metrics_table({
        "clv_model": {"version": "3", "run_id": "r1", "metrics": {
            "holdout_normalized_gini": 0.71, "clv_model_normalized_gini": 0.71, "btyd_normalized_gini": 0.66,
            "naive_mae": 40.0, "clv_model_median_mae": 30.0}},
        "segment_model": {"version": "2", "run_id": "r2", "metrics": {"stability_weighted_silhouette": 0.4}},
        "missing_model": None,
    })
    rows = {(r.model, r.metric): (r.value, r.registered_model, r.version) for r in table.itertuples()}
    assert rows[("clv_model", "normalized_gini")] == (0.71, "clv_model", "3")
    assert rows[("btyd", "normalized_gini")] == (0.66, "clv_model", "3")
    assert rows[("naive", "mae")] == (40.0, "clv_model", "3")
    assert rows[("clv_model_median", "mae")] == (30.0, "clv_model", "3")  # longest model prefix wins
    assert rows[("clv_model", "holdout_normalized_gini")][0] == 0.71
    assert rows[("segment_model", "stability_weighted_silhouette")] == (0.4, "segment_model", "2")


def test_warehouse_writes_survive_a_half_fetched_result(tmp_path):
    # DuckDB 2 refuses register() while a result is not fully fetched (e.g. after fetchone()).
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        scores = pd.DataFrame({"customer_id": ["a"], "as_of_date": [pd.Timestamp("2024-01-31")], "segment_name": ["x"],
                               "segment_since": [pd.Timestamp("2024-01-31")]})
        con.execute("SELECT * FROM range(10)").fetchone()
        assert scoring.write_scores(con, scores) == 1
        con.execute("SELECT * FROM range(10)").fetchone()
        assert scoring.write_history_month(con, "2024-01", scores) == 1
        con.execute("SELECT * FROM range(10)").fetchone()
        scoring.refresh_migrations(con, ["2024-01"])
        assert scoring.previous_scores(con)["segment_since"].iloc[0] == pd.Timestamp("2024-01-31")


def test_a_month_whose_btyd_refit_fails_is_skipped_and_the_others_are_written(env, monkeypatch):
    from clv_platform.lib import btyd

    real = scoring.scoring_inputs

    def failing_in_july(con, as_of, *args, **kwargs):       # fault injection: a fit that does not converge
        if as_of.month == 7:
            raise btyd.BtydFitError("Gamma-Gamma did not converge after 7 attempts\n(details)")
        return real(con, as_of, *args, **kwargs)

    monkeypatch.setattr(scoring, "scoring_inputs", failing_in_july)
    result = dg.materialize(
        [segment_history], resources=env["resources"],
        tags={"dagster/asset_partition_range_start": "2024-07-01", "dagster/asset_partition_range_end": "2024-08-01"},
    )
    assert result.success
    meta = result.asset_materializations_for_node("serving__segment_history")[0].metadata
    assert meta["run_skipped"].value == ["2024-07"] and list(meta["run_months"].value) == ["2024-08"]


def test_migrations_are_between_consecutive_calendar_months_only(tmp_path):
    """History of 2024-01, 2024-02 and 2024-05: no "migration" from February to May; once March and April are
    backfilled, every month-over-month pair is there."""
    def month(con, name):
        end = pd.Period(name, "M").end_time.normalize()
        scores = pd.DataFrame({"customer_id": ["a", "b"], "as_of_date": [end, end], "segment_name": ["x", "y"],
                               "segment_since": [end, end]})
        scoring.write_history_month(con, name, scores)

    def pairs(con):
        return sorted(set(con.execute("SELECT from_month, to_month FROM serving.segment_migration").fetchall()))

    with warehouse.connect(tmp_path / "w.duckdb") as con:
        for name in ("2024-01", "2024-02", "2024-05"):
            month(con, name)
        scoring.refresh_migrations(con, ["2024-01", "2024-02", "2024-05"])
        assert pairs(con) == [("2024-01", "2024-02")]
        for name in ("2024-03", "2024-04"):
            month(con, name)
        scoring.refresh_migrations(con, ["2024-03", "2024-04"])
        assert pairs(con) == [("2024-01", "2024-02"), ("2024-02", "2024-03"), ("2024-03", "2024-04"),
                              ("2024-04", "2024-05")]
