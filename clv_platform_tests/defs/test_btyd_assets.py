"""models/bgnbd, models/gamma_gamma, features/btyd_predictions materialised on the CDNOW sample."""

from pathlib import Path

import dagster as dg
import pytest

from clv_platform.defs.btyd import assets as btyd_assets
from clv_platform.defs.features.assets import customer_features
from clv_platform.defs.resources import MlflowResource, WarehouseResource
from clv_platform.lib import btyd, cdnow_frame, registry, warehouse
from clv_platform_tests.lib.elsewhere import run_without_clv_platform


@pytest.fixture(scope="module")
def materialised(tmp_path_factory):
    root = tmp_path_factory.mktemp("btyd_assets")
    mp = pytest.MonkeyPatch()
    mp.setenv("CLV_DATA_DIR", str(root))
    db = root / "warehouse.duckdb"
    con = warehouse.connect(db)
    cdnow_frame.load_cdnow(con, sample=True)
    con.close()
    resources = {
        "warehouse": WarehouseResource(database=str(db)),
        "mlflow": MlflowResource(tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                                 artifact_root=str(root / "mlartifacts")),
    }
    result = dg.materialize(
        [customer_features, btyd_assets.bgnbd, btyd_assets.gamma_gamma, btyd_assets.btyd_predictions],
        resources=resources,
    )
    yield result, root, db, resources["mlflow"]
    mp.undo()


def _metadata(result, key):
    [mat] = [m for m in result.asset_materializations_for_node(key)]
    return mat.metadata


def test_assets_materialise_with_metadata(materialised):
    result, root, _, _ = materialised
    assert result.success
    meta = _metadata(result, "models__bgnbd")
    params = meta["params"].value
    assert set(params) == {"r", "alpha", "a", "b"} and meta["n_customers"].value == 2357
    assert set(meta["std_errors"].value) == {"r", "alpha", "a", "b"}
    assert meta["log_likelihood"].value < 0 and meta["n_compressed_rows"].value < 2357
    assert "pareto_nbd_log_likelihood" in meta
    for name in ("calibration_histogram", "conditional_holdout", "p_alive_matrix", "cumulative_tracking"):
        assert meta[f"plot_{name}"].value.startswith(f"![{name}](data:image/png;base64,")
        path = meta[f"plot_{name}_path"].value
        assert path.startswith(str(root)) and path.endswith(".png")
    gg = _metadata(result, "models__gamma_gamma")
    assert gg["n_customers"].value > 900 and set(gg["params"].value) == {"p", "q", "v"}


def test_predictions_table(materialised):
    _, _, db, _ = materialised
    con = warehouse.connect(db, read_only=True)
    try:
        preds = con.execute("SELECT * FROM features.btyd_predictions").df()
        params = con.execute(f"SELECT * FROM {btyd.PARAMS_TABLE}").df()
    finally:
        con.close()
    assert len(preds) == 2357 and preds["customer_id"].is_unique
    assert list(preds.columns) == btyd.PREDICTION_COLUMNS + ["as_of_date"]
    assert str(preds["as_of_date"].iloc[0])[:10] == "1998-06-30"
    assert preds["p_alive"].between(0, 1).all() and (preds["btyd_clv"] >= 0).all()
    assert (preds["expected_purchases_365d"] >= preds["expected_purchases_90d"]).all()
    assert set(params["model"]) == {"bgnbd", "gamma_gamma"}


def test_mlflow_runs_finished_with_artifacts(materialised):
    _, _, _, mlflow_resource = materialised
    client = registry.client(mlflow_resource.tracking_uri)
    exp = client.get_experiment_by_name(mlflow_resource.experiment_name)
    runs = client.search_runs([exp.experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    assert {"bgnbd", "gamma_gamma"} <= set(by_name)
    assert all(r.info.status == "FINISHED" for r in runs)
    run = by_name["bgnbd"]
    assert float(run.data.params["r"]) > 0 and "log_likelihood" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/bgnbd.dill", "model/bgnbd_params.json"} <= artifacts
    # the saved fitters are lifetimes' own classes: they load with lifetimes alone and give the run's parameters
    local = Path(client.download_artifacts(run.info.run_id, "model"))
    gg_run = by_name["gamma_gamma"]
    gg = Path(client.download_artifacts(gg_run.info.run_id, "model"))
    done = run_without_clv_platform(f"""
import numpy as np
from lifetimes import BetaGeoFitter, GammaGammaFitter
bg, gg = BetaGeoFitter(), GammaGammaFitter()
bg.load_model({str(local / "bgnbd.dill")!r})
gg.load_model({str(gg / "gamma_gamma.dill")!r})
assert type(bg) is BetaGeoFitter and type(gg) is GammaGammaFitter
print(bg.params_["r"], gg.params_["p"], np.ravel(bg.conditional_probability_alive(2, 30, 60))[0])
""", local)
    assert done.returncode == 0, done.stderr[-3000:]
    r, p, _ = map(float, done.stdout.split())
    assert r == pytest.approx(float(run.data.params["r"]), rel=1e-6)
    assert p == pytest.approx(float(gg_run.data.params["p"]), rel=1e-6)
    assert len(client.list_artifacts(run.info.run_id, "diagnostics")) == 4
