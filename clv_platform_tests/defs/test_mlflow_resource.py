"""MlflowResource: runs tagged with the Dagster run, always ended; compatible with end_mlflow_on_run_finished."""

from pathlib import Path

import dagster as dg
import mlflow
import pytest
from dagster_mlflow import end_mlflow_on_run_finished

from clv_platform.defs.resources import MlflowResource, default_resources
from clv_platform.lib import registry
from clv_platform_tests.lib.mlflow_store import new_store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[MlflowResource, Path]:
    root = tmp_path_factory.mktemp("mlflow")
    resource = MlflowResource(tracking_uri=new_store(root), artifact_root=str(root / "mlartifacts"))
    return resource, root


def _runs(resource: MlflowResource, dagster_run_id: str):
    c = registry.client(resource.tracking_uri)
    experiment = c.get_experiment_by_name(resource.experiment_name)
    return c.search_runs([experiment.experiment_id], filter_string=f"tags.dagster_run_id = '{dagster_run_id}'")


parts = dg.StaticPartitionsDefinition(["2024-01", "2024-02"])


@dg.asset(key=["models", "logs_something"], partitions_def=parts)
def logs_something(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> None:
    import mlflow as mlf

    with mlflow.start_run(context, run_name="train") as run:
        mlf.log_param("k", 3)
        mlf.log_metric("score", 0.5)
        mlf.log_text("hello", "notes/hello.txt")
        context.add_output_metadata({"mlflow_run_id": run.info.run_id})


@dg.asset(key=["models", "fails_inside_run"])
def fails_inside_run(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> None:
    import mlflow as mlf

    with mlflow.start_run(context, run_name="boom"):
        mlf.start_run(nested=True)  # a nested run the body forgets to end: ended too
        raise ValueError("boom")


@dg.asset(key=["models", "leaks_a_run"], config_schema={"fail": bool})
def leaks_a_run(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> None:
    # Legacy style: a run started by hand and never ended. The hook must end it.
    import mlflow as mlf

    mlf.start_run(experiment_id=mlflow.experiment_id(), tags={"dagster_run_id": context.run_id})
    mlf.log_metric("x", 1.0)
    if context.op_config["fail"]:
        raise RuntimeError("failed after leaking a run")


@dg.asset(key=["models", "leaks_in_a_thread"])
def leaks_in_a_thread(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> None:
    # A run left open in another thread (MLflow's active-run stack is per thread): found by its dagster_run_id tag.
    import threading

    import mlflow as mlf

    experiment_id = mlflow.experiment_id()

    def work():
        mlf.start_run(experiment_id=experiment_id, tags={"dagster_run_id": context.run_id})

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def test_hook_ends_a_run_left_open_in_another_thread(store):
    resource, _ = store
    job = dg.define_asset_job("thread_job", selection=[leaks_in_a_thread], hooks={end_mlflow_on_run_finished})
    defs = dg.Definitions(assets=[leaks_in_a_thread], jobs=[job], resources={"mlflow": resource})
    result = defs.resolve_job_def("thread_job").execute_in_process()
    assert result.success
    (run,) = _runs(resource, result.run_id)
    assert run.info.status == "FINISHED"


def test_default_resources_register_mlflow_under_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    resource = default_resources()["mlflow"]
    assert isinstance(resource, MlflowResource)
    assert resource.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert resource.tracking_uri.startswith("sqlite:////")  # absolute
    assert resource.artifact_root == str(tmp_path / "mlartifacts")
    assert resource.experiment_name == "clv_platform"


def test_materialisation_that_logs_leaves_no_run_running(store):
    resource, root = store
    result = dg.materialize([logs_something], resources={"mlflow": resource}, partition_key="2024-02")
    assert result.success
    (run,) = _runs(resource, result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["dagster_asset"] == "models/logs_something"
    assert run.data.tags["dagster_partition"] == "2024-02"
    assert run.data.tags["mlflow.runName"] == "train"
    # in one of our jobs the run's name says which (the BTYD fits run in training_job and in scoring_job)
    job = dg.define_asset_job("scoring_job", [logs_something], partitions_def=parts)
    named = dg.Definitions(assets=[logs_something], jobs=[job], resources={"mlflow": resource}).resolve_job_def(
        "scoring_job").execute_in_process(partition_key="2024-01")
    assert _runs(resource, named.run_id)[0].data.tags["mlflow.runName"] == "train · scoring_job"
    assert run.data.metrics == {"score": 0.5}
    # The experiment and the artifacts live under the artifact root, not under the working directory.
    experiment = registry.client(resource.tracking_uri).get_experiment_by_name("clv_platform")
    assert experiment.artifact_location == (root / "mlartifacts" / "clv_platform").as_uri()
    assert Path(run.info.artifact_uri.removeprefix("file://"), "notes", "hello.txt").read_text() == "hello"
    assert mlflow.active_run() is None


def test_failing_step_marks_its_runs_failed(store):
    resource, _ = store
    result = dg.materialize([fails_inside_run], resources={"mlflow": resource}, raise_on_error=False)
    assert not result.success
    runs = _runs(resource, result.run_id)
    assert len(runs) == 1  # the nested run has the parent's tags only through mlflow.parentRunId
    assert {r.info.status for r in runs} == {"FAILED"}
    c = registry.client(resource.tracking_uri)
    children = c.search_runs(
        [runs[0].info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{runs[0].info.run_id}'"
    )
    assert [r.info.status for r in children] == ["FAILED"]
    assert mlflow.active_run() is None


@pytest.mark.parametrize("fail", [False, True])
def test_end_mlflow_on_run_finished_hook_ends_leaked_runs(store, fail):
    resource, _ = store
    job = dg.define_asset_job("leaky_job", selection=[leaks_a_run], hooks={end_mlflow_on_run_finished})
    defs = dg.Definitions(assets=[leaks_a_run], jobs=[job], resources={"mlflow": resource})
    result = defs.resolve_job_def("leaky_job").execute_in_process(
        run_config={"ops": {"models__leaks_a_run": {"config": {"fail": fail}}}}, raise_on_error=False
    )
    assert result.success is (not fail)
    (run,) = _runs(resource, result.run_id)
    assert run.info.status == ("FAILED" if fail else "FINISHED")
    assert mlflow.active_run() is None


def test_end_run_outside_dagster_ends_the_active_run(store):
    resource, _ = store
    registry.configure(resource.tracking_uri)
    run = mlflow.start_run(experiment_id=resource.experiment_id())
    assert resource.end_run() == [run.info.run_id]
    assert registry.client(resource.tracking_uri).get_run(run.info.run_id).info.status == "FINISHED"


def test_a_run_left_running_by_a_killed_process_is_ended_by_the_next_materialisation(store):
    resource, _ = store
    instance = dg.DagsterInstance.ephemeral()
    killed = instance.create_run_for_job(dg.GraphDefinition(name="training_job").to_job())
    instance.report_run_failed(killed, "the run worker was killed")         # Dagster noticed; MLflow did not
    registry.configure(resource.tracking_uri)
    c = registry.client(resource.tracking_uri)
    experiment_id = resource.experiment_id()
    orphan = c.create_run(experiment_id, tags={"dagster_run_id": killed.run_id}).info.run_id
    in_progress = instance.create_run_for_job(dg.GraphDefinition(name="scoring_job").to_job())
    instance.handle_run_event(in_progress.run_id, dg.DagsterEvent(
        event_type_value="PIPELINE_START", job_name=in_progress.job_name, message="started"))
    running = c.create_run(experiment_id, tags={"dagster_run_id": in_progress.run_id}).info.run_id

    result = dg.materialize([logs_something], partition_key="2024-01", resources={"mlflow": resource},
                            instance=instance)
    assert result.success
    assert c.get_run(orphan).info.status == "KILLED"
    assert c.get_run(running).info.status == "RUNNING"             # its Dagster run is still going
    c.set_terminated(running, "FINISHED")
