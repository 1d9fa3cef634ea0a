"""models/clv_model and models/segment_model materialised on a small simulated warehouse with a temporary
MLflow registry: metrics, registration as `staging`, pyfunc round trip, names carried over from production."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from clv_platform.defs.models.assets import SegmentModelConfig, clv_model_asset, segment_model_asset
from clv_platform.defs.resources import default_resources
from clv_platform.lib import clv_model, features, registry, scoring, warehouse
from clv_platform_tests.lib.clv_sim import load_staging, simulate_lines
from clv_platform_tests.lib.elsewhere import run_without_clv_platform
from clv_platform_tests.lib.mlflow_store import new_store

FAST_SEGMENTS = dg.RunConfig({"models__segment_model": SegmentModelConfig(k_max=6, n_bootstrap=1)})


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    mp = pytest.MonkeyPatch()
    mp.setenv("CLV_DATA_DIR", str(root))
    resources = default_resources()
    assert new_store(root) == resources["mlflow"].tracking_uri
    con = warehouse.connect(resources["warehouse"].database)
    load_staging(con, simulate_lines(2500, seed=0))
    features.write_customer_features(con)
    con.close()
    result = dg.materialize([clv_model_asset, segment_model_asset], resources=resources, run_config=FAST_SEGMENTS)
    yield {"root": root, "resources": resources, "result": result, "uri": resources["mlflow"].tracking_uri}
    mp.undo()


def _metadata(result, key):
    mats = result.asset_materializations_for_node(key)
    assert len(mats) == 1
    return mats[0].metadata


def _no_running_mlflow_runs(uri: str) -> None:
    c = registry.client(uri)
    experiments = [e.experiment_id for e in c.search_experiments()]
    assert c.search_runs(experiments)  # there are runs...
    assert not c.search_runs(experiments, filter_string="attributes.status = 'RUNNING'")  # ...none left open


def test_clv_model_asset_metrics_registry_and_pyfunc(env):
    assert env["result"].success
    md = _metadata(env["result"], "models__clv_model")
    for key in ("metrics", "holdout_normalized_gini", "btyd_normalized_gini", "plot_gain_chart",
                "plot_decile_calibration", "plot_feature_importance", "registered_version", "cutoff"):
        assert key in md
    assert md["holdout_normalized_gini"].value > md["btyd_normalized_gini"].value
    uri = env["uri"]
    assert registry.alias_version("clv_model", "staging", uri) == "1"
    assert registry.version_metric("clv_model", "1", "holdout_normalized_gini", uri) == pytest.approx(
        md["holdout_normalized_gini"].value)
    run = registry.client(uri).get_run(registry.version_info("clv_model", "staging", uri)["run_id"])
    assert {"btyd_normalized_gini", "naive_normalized_gini", "clv_model_mae", "clv_model_total_bias",
            "clv_model_median_mae"} <= set(run.data.metrics)
    assert run.data.tags["dagster_run_id"] == env["result"].run_id
    # the parameters of the boosters trained (Poisson count x Gamma order value), not the Tweedie defaults
    assert run.data.params["count_objective"] == "poisson" and run.data.params["order_value_objective"] == "gamma"
    assert run.data.params["model"] == "poisson purchases x gamma order value"
    assert not any(key.startswith("lgb_") for key in run.data.params)
    loaded = registry.load("clv_model", "staging", tracking_uri=uri)
    assert isinstance(loaded.native, clv_model.ClvModel)
    # logged as model code, not as a pickled object
    pyfunc_conf = loaded.pyfunc.metadata.flavors["python_function"]
    assert pyfunc_conf.get("model_code_path", "").endswith("saved_model_pyfunc.py") and "python_model" not in pyfunc_conf
    assert set(loaded.pyfunc.metadata.get_input_schema().input_names()) == set(loaded.native.input_columns)
    # the pyfunc itself (schema-enforced path) takes the warehouse's frame as it comes (integer counts) and
    # gives the same numbers as the native model; every input is required, as the model needs each one
    schema = loaded.pyfunc.metadata.get_input_schema()
    assert all(col.required for col in schema.inputs)
    assert {col.name: col.type.name for col in schema.inputs}["frequency"] == "long"
    con = warehouse.connect(env["resources"]["warehouse"].database)
    _, frame = scoring.scoring_inputs(con)
    con.close()
    assert frame["frequency"].dtype == "int64"
    via_pyfunc = loaded.pyfunc.predict(frame[loaded.native.input_columns])
    np.testing.assert_allclose(via_pyfunc["predicted_clv"].to_numpy(),
                               loaded.predict(frame)["predicted_clv"].to_numpy())
    _no_running_mlflow_runs(uri)


def test_registered_models_load_and_score_where_clv_platform_is_not_installed(env, tmp_path):
    """Someone else's Python: only mlflow and the model's requirements; the model brings its own code."""
    uri = env["uri"]
    con = warehouse.connect(env["resources"]["warehouse"].database)
    _, frame = scoring.scoring_inputs(con)
    con.close()
    clv = registry.load("clv_model", "staging", tracking_uri=uri)
    frame = frame.assign(**clv.predict(frame))
    segments = registry.load("segment_model", "staging", tracking_uri=uri)
    frame.to_parquet(tmp_path / "frame.parquet")
    done = run_without_clv_platform(f"""
import mlflow, pandas as pd
mlflow.set_tracking_uri({uri!r})
frame = pd.read_parquet("frame.parquet")
clv = mlflow.pyfunc.load_model("models:/clv_model@staging")
seg = mlflow.pyfunc.load_model("models:/segment_model@staging")
inputs = lambda model: frame[model.metadata.get_input_schema().input_names()]
clv.predict(inputs(clv)).to_parquet("clv.parquet")
seg.predict(inputs(seg)).to_parquet("seg.parquet")
""", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "clv.parquet").reset_index(drop=True),
                                  clv.predict(frame).reset_index(drop=True))
    assert (pd.read_parquet(tmp_path / "seg.parquet")["segment_name"].to_numpy()
            == segments.predict(frame)["segment_name"].to_numpy()).all()


def test_segment_model_asset_registry_and_names_carried_over(env):
    md = _metadata(env["result"], "models__segment_model")
    for key in ("algorithm", "k", "segment_sizes", "candidates", "stability_weighted_silhouette",
                "plot_selection_by_k", "registered_version"):
        assert key in md
    uri, resources = env["uri"], env["resources"]
    assert registry.alias_version("segment_model", "staging", uri) == "1"
    first = registry.load("segment_model", "staging", tracking_uri=uri)
    sizes = md["segment_sizes"].value
    assert sum(sizes.values()) > 0 and set(sizes) == set(first.native.names.values())

    # promote, retrain: the new version matches its segments to production's and keeps their names
    assert registry.promote("segment_model", "stability_weighted_silhouette", tracking_uri=uri).promoted
    again = dg.materialize([segment_model_asset], resources=resources, run_config=FAST_SEGMENTS)
    assert again.success
    md2 = _metadata(again, "models__segment_model")
    assert "v1" in md2["names_from_production"].value
    second = registry.load("segment_model", "staging", tracking_uri=uri)
    assert second.version == "2"
    con = warehouse.connect(resources["warehouse"].database)
    _, frame = scoring.scoring_inputs(con)
    con.close()
    frame = frame.assign(**registry.load("clv_model", "staging", tracking_uri=uri).predict(frame))
    a, b = first.predict(frame), second.predict(frame)
    assert (a["segment_name"] == b["segment_name"]).mean() > 0.9
    assert isinstance(a, pd.DataFrame) and len(a) == len(frame)
    _no_running_mlflow_runs(uri)


def test_a_retrain_measures_production_on_its_own_held_out_customers(env):
    """The held-out customers are the same at every retrain (by id hash, whatever the seed): a retrain scores the
    production model on them, so the gate compares like with like; on unchanged data production's figure there
    is exactly its own."""
    from clv_platform.defs.models.assets import ClvModelConfig

    uri, resources = env["uri"], env["resources"]
    if registry.alias_version("clv_model", "production", uri) is None:
        assert registry.promote_spec(registry.MODELS["clv"], tracking_uri=uri).promoted
    production = registry.alias_version("clv_model", "production", uri)
    again = dg.materialize([clv_model_asset], resources=resources,
                           run_config=dg.RunConfig({"models__clv_model": ClvModelConfig(seed=7)}))
    assert again.success
    staging = registry.alias_version("clv_model", "staging", uri)
    info = registry.version_info("clv_model", "staging", uri)
    tags = registry.client(uri).get_model_version("clv_model", staging).tags
    assert staging != production and tags[registry.COMPARED_TAG] == production
    same = info["metrics"]["holdout_normalized_gini" + registry.SAME_CUSTOMERS_SUFFIX]
    assert same == pytest.approx(registry.version_metric("clv_model", production, "holdout_normalized_gini", uri))
    assert tags[registry.HELD_OUT_TAG] == registry.HELD_OUT_BY_ID_HASH
    result = registry.promote_spec(registry.MODELS["clv"], tracking_uri=uri)
    assert "on the same held-out customers" in result.message

    # a production version trained before the held-out customers were chosen by id hash (an upgrade from then)
    # may have learnt from them: its figure there would flatter it, so the gate takes its own figure
    production = registry.alias_version("clv_model", "production", uri)
    registry.client(uri).delete_model_version_tag("clv_model", production, registry.HELD_OUT_TAG)
    assert dg.materialize([clv_model_asset], resources=resources,
                          run_config=dg.RunConfig({"models__clv_model": ClvModelConfig(seed=8)})).success
    staging = registry.alias_version("clv_model", "staging", uri)
    assert registry.COMPARED_TAG not in registry.client(uri).get_model_version("clv_model", staging).tags
    assert "on the same held-out customers" not in registry.promote_spec(registry.MODELS["clv"], tracking_uri=uri).message
    _no_running_mlflow_runs(uri)
