"""promotion_job and the sensors around it, on a real MLflow registry in a temporary SQLite: the gate promotes a
first or better model, refuses a worse one without failing, and only a promotion that promoted asks for a
rescore."""

import dagster as dg
import pytest

from clv_platform.defs.models.promotion import PROMOTED_TAG, promotion_job
from clv_platform.defs.resources import MlflowResource
from clv_platform.defs.sensors import promote_after_training_sensor, rescore_after_ingestion_sensor
from clv_platform.lib import registry
from clv_platform_tests.lib.mlflow_store import new_store
from clv_platform_tests.lib.test_registry import _log

CLV = registry.MODELS["clv"]


@pytest.fixture
def env(tmp_path):
    uri = new_store(tmp_path)
    resources = {"mlflow": MlflowResource(tracking_uri=uri, artifact_root=str(tmp_path / "mlartifacts"))}
    return uri, tmp_path, resources, dg.DagsterInstance.ephemeral()


def _stage(uri, root, value):
    return registry.register(_log(uri, root, CLV.metric, value, value, sklearn=True), "model", CLV.name,
                             tracking_uri=uri)


def _sensor_context(sensor, instance, run, event):
    return dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_event=event,
                                              dagster_instance=instance, dagster_run=run)


def test_gate_promotes_then_refuses_and_rescoring_follows_only_a_promotion(env):
    uri, root, resources, instance = env
    _stage(uri, root, 0.60)
    first = promotion_job.execute_in_process(resources=resources, instance=instance)
    assert first.success and first.output_for_node("promote_staging_models") == ["clv_model"]
    assert registry.alias_version(CLV.name, "production", uri) == "1"
    run = instance.get_run_by_id(first.run_id)
    assert run.tags[PROMOTED_TAG] == "clv_model"                 # segment_model had no staging version
    rescore = rescore_after_ingestion_sensor(_sensor_context(
        rescore_after_ingestion_sensor, instance, run, first.get_run_success_event()))
    assert isinstance(rescore, dg.RunRequest) and rescore.run_key == first.run_id

    _stage(uri, root, 0.55)                                         # worse: the gate refuses
    second = promotion_job.execute_in_process(resources=resources, instance=instance)
    assert second.success and second.output_for_node("promote_staging_models") == []
    assert registry.alias_version(CLV.name, "production", uri) == "1"
    run = instance.get_run_by_id(second.run_id)
    assert PROMOTED_TAG not in run.tags
    outcomes = second.events_for_node("promote_staging_models")
    meta = next(e for e in outcomes if e.is_successful_output).step_output_data.metadata
    assert "refused" in meta["outcomes"].value["clv_model"] and "0.5500" in meta["outcomes"].value["clv_model"]
    skip = rescore_after_ingestion_sensor(_sensor_context(
        rescore_after_ingestion_sensor, instance, run, second.get_run_success_event()))
    assert skip is None                                             # passed over (see the sensor's docstring)


def test_a_finished_run_that_trained_a_model_asks_for_the_gated_promotion(env):
    """Whatever started it: a "Materialize" of the model asset in the UI runs as __ASSET_JOB, not training_job."""
    _, _, resources, instance = env

    @dg.asset(key=["models", "clv_model"])
    def clv_model_stand_in() -> None:
        """(stands for the model asset: the sensor reads the run's materializations)"""

    trained = dg.materialize([clv_model_stand_in], instance=instance)
    training_run = instance.get_run_by_id(trained.run_id)
    assert training_run.job_name != "training_job"
    request = promote_after_training_sensor(_sensor_context(
        promote_after_training_sensor, instance, training_run, trained.get_run_success_event()))
    assert isinstance(request, dg.RunRequest) and request.run_key == training_run.run_id
    promotion = promotion_job.execute_in_process(resources=resources, instance=instance)     # trains nothing
    assert promote_after_training_sensor(_sensor_context(
        promote_after_training_sensor, instance, instance.get_run_by_id(promotion.run_id),
        promotion.get_run_success_event())) is None


def test_the_gate_does_not_promote_a_rolled_back_version_again(env):
    uri, root, resources, instance = env
    for value in (0.60, 0.70):
        _stage(uri, root, value)
        assert promotion_job.execute_in_process(resources=resources, instance=instance).success
    assert registry.rollback(CLV.name, uri).to_version == "1"       # v2 misbehaves: rolled back, still staging

    again = promotion_job.execute_in_process(resources=resources, instance=instance)
    assert again.success and again.output_for_node("promote_staging_models") == []
    assert registry.alias_version(CLV.name, "production", uri) == "1"
    assert PROMOTED_TAG not in instance.get_run_by_id(again.run_id).tags
