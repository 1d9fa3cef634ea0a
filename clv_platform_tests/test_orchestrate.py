"""`clv run`/`clv materialize`: failures end in one line per failed step that carries the cause, and a run whose
`clv` process was killed is found, named by `clv status` and marked failed by the next command."""

import os
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._utils.error import serializable_error_info_from_exc_info

from clv_platform import orchestrate


def test_a_plain_exception_in_an_asset_is_reported_by_its_own_message():
    @dg.asset
    def breaks():
        raise ValueError("actual and predicted must be finite (found NaN or inf)")

    result = dg.materialize([breaks], raise_on_error=False)
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.event_specific_data.error
    assert error.cause is not None       # Dagster wraps it: "Error occurred while executing op ..."
    assert orchestrate._cause(error) == "ValueError: actual and predicted must be finite (found NaN or inf)"


def test_an_error_without_a_cause_is_its_own_message():
    try:
        raise RuntimeError("no customers as of 2024-01-01")
    except RuntimeError:
        error = serializable_error_info_from_exc_info(sys.exc_info())
    assert orchestrate._cause(error) == "RuntimeError: no customers as of 2024-01-01"


def test_a_run_whose_clv_process_was_killed_is_marked_failed_and_frees_the_queue(tmp_path):
    import socket
    import subprocess

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()                                                     # a pid that no longer runs
    instance = dg.DagsterInstance.ephemeral()

    def started(pid: int) -> str:
        run = instance.create_run_for_job(
            dg.GraphDefinition(name="ingestion_job").to_job(),
            tags={orchestrate.PID_TAG: str(pid), orchestrate.HOST_TAG: socket.gethostname()})
        instance.handle_run_event(run.run_id, dg.DagsterEvent(
            event_type_value="PIPELINE_START", job_name=run.job_name, message="started"))
        return run.run_id

    killed, running = started(gone.pid), started(os.getpid())
    assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.STARTED
    assert [r.run_id for r in orchestrate.abandoned_runs(instance)] == [killed]
    lines = []
    assert orchestrate.fail_abandoned_runs(instance, echo=lines.append) == [killed]
    assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(running).status == dg.DagsterRunStatus.STARTED    # its process is alive
    assert lines == [f"marked run {killed[:8]} (ingestion_job) failed: the clv process that ran it "
                     f"(pid {gone.pid}) is gone"]


def test_clv_status_names_a_run_whose_clv_process_is_gone(tmp_path, monkeypatch):
    import shutil
    import socket
    import subprocess

    from click.testing import CliRunner

    from clv_platform.cli import cli

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(Path(__file__).parents[1] / "clv_platform" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "data"))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with dg.DagsterInstance.get() as instance:
        run = instance.create_run_for_job(
            dg.GraphDefinition(name="scoring_job").to_job(),
            tags={orchestrate.PID_TAG: str(gone.pid), orchestrate.HOST_TAG: socket.gethostname()})
        instance.handle_run_event(run.run_id, dg.DagsterEvent(
            event_type_value="PIPELINE_START", job_name=run.job_name, message="started"))
    out = CliRunner().invoke(cli, ["status"])
    assert out.exit_code == 1
    assert f"run {run.run_id[:8]} (scoring_job) still says STARTED, but the clv process that ran it" in out.output


def test_a_busy_warehouse_is_waited_for_with_a_message_then_refused_in_one_line(tmp_path, monkeypatch):
    import pytest

    from clv_platform.lib.settings import get_settings
    from clv_platform_tests.lib.locks import hold_lock

    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    path = get_settings().warehouse_path
    lines = []
    with hold_lock(path, seconds=1.0):                              # released while we wait
        orchestrate.wait_for_warehouse(seconds=30, echo=lines.append)
    assert len(lines) == 1 and lines[0].startswith("waiting up to 30 s for the warehouse: ")
    assert "is in use by another process (PID " in lines[0]
    with hold_lock(path), pytest.raises(orchestrate.JobFailed) as failed:
        orchestrate.wait_for_warehouse(seconds=0.5, echo=lines.append)
    assert "\n" not in str(failed.value) and str(failed.value).endswith("; try again when it ends")


def test_a_clv_command_waits_for_a_run_in_progress_instead_of_starting_next_to_it():
    """A run the daemon started (a long training, a backfill) holds the warehouse: a `clv` command waits for it,
    naming it, rather than failing after the lock's 60 s; it refuses in one line when the run goes on too long."""
    import threading

    import pytest

    instance = dg.DagsterInstance.ephemeral()
    run = instance.create_run_for_job(dg.GraphDefinition(name="training_job").to_job())
    instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value="PIPELINE_START", job_name=run.job_name, message="started"))
    lines = []
    with pytest.raises(orchestrate.JobFailed) as failed:
        orchestrate.wait_for_runs(instance, seconds=0.3, poll=0.05, echo=lines.append)
    assert lines == [f"waiting up to 0 min for the run(s) in progress to finish: {run.run_id[:8]} (training_job) "
                     "(one run at a time writes the warehouse; Ctrl-C stops waiting)"]
    assert "\n" not in str(failed.value) and f"{run.run_id[:8]} (training_job)" in str(failed.value)

    ends = threading.Timer(0.5, lambda: instance.report_run_failed(run, "stopped"))
    ends.start()
    orchestrate.wait_for_runs(instance, seconds=30, poll=0.05, echo=lines.append)   # returns once it ended
    ends.join()
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE and len(lines) == 2
    orchestrate.wait_for_runs(instance, echo=lines.append)                     # nothing in progress: no wait
    assert len(lines) == 2


def test_clv_status_names_a_switched_on_sensor_whose_latest_tick_failed(tmp_path, monkeypatch):
    import shutil
    import time

    from click.testing import CliRunner
    from dagster._core.remote_origin import (
        RegisteredCodeLocationOrigin,
        RemoteInstigatorOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.scheduler.instigation import (
        InstigatorState,
        InstigatorStatus,
        InstigatorType,
        TickData,
        TickStatus,
    )
    from dagster._utils.error import SerializableErrorInfo

    from clv_platform.cli import cli

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(Path(__file__).parents[1] / "clv_platform" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "data"))
    with dg.DagsterInstance.get() as instance:                   # what the daemon records for a sensor
        origin = RemoteInstigatorOrigin(RemoteRepositoryOrigin(
            RegisteredCodeLocationOrigin("clv_platform.definitions"), "__repository__"), "rescore_after_ingestion_sensor")
        state = InstigatorState(origin, InstigatorType.SENSOR, InstigatorStatus.RUNNING)
        instance.add_instigator_state(state)
        tick = dict(instigator_origin_id=state.instigator_origin_id, instigator_name=state.instigator_name,
                    instigator_type=InstigatorType.SENSOR, selector_id=state.selector_id, run_ids=[])
        instance.create_tick(TickData(status=TickStatus.SUCCESS, timestamp=time.time() - 60, **tick))
        assert orchestrate.failing_instigators(instance) == []
        assert orchestrate.switched_on(instance, "rescore_after_ingestion_sensor")       # what `clv run` asks
        assert not orchestrate.switched_on(instance, "promote_after_training_sensor")
        cause = SerializableErrorInfo("OSError: [Errno 5] Input/output error\n", [], "OSError")
        instance.create_tick(TickData(status=TickStatus.FAILURE, timestamp=time.time(), error=SerializableErrorInfo(
            "SensorExecutionError: Error occurred during the execution of evaluation_fn\n", [],
            "SensorExecutionError", cause=cause), **tick))
    out = CliRunner().invoke(cli, ["status"])
    assert out.exit_code == 1
    assert "sensor rescore_after_ingestion_sensor: its latest tick failed (" in out.output
    assert "OSError: [Errno 5] Input/output error (Dagster UI: Automation)" in out.output     # the cause


def test_a_clv_command_waiting_for_a_busy_warehouse_says_so_first(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from clv_platform.cli import cli
    from clv_platform.lib import warehouse
    from clv_platform.lib.settings import get_settings
    from clv_platform_tests.lib.locks import hold_lock

    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    warehouse.connect(get_settings().warehouse_path).close()        # a warehouse without transactions
    with hold_lock(get_settings().warehouse_path, seconds=1.0):
        out = CliRunner().invoke(cli, ["materialize", "score"])
    assert out.exit_code == 1
    assert "waiting up to 60 s for the warehouse: " in out.output and "(PID " in out.output
    assert "staging.transactions in " in out.output and "is empty" in out.output


def test_without_dagster_home_clv_uses_the_instance_next_to_the_data_dir(tmp_path, monkeypatch):
    """`.venv/bin/clv` run without make (no DAGSTER_HOME) used a throwaway instance: its runs never reached the
    UI, and `clv status` missed a killed run. It now uses `.dagster_home` next to the data dir, as make does."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "data"))
    with orchestrate.instance() as inst:
        assert Path(inst.root_directory) == tmp_path / ".dagster_home"
        assert not inst.is_ephemeral
        assert inst.get_settings("telemetry") == {"enabled": False}
        assert inst.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    assert orchestrate.home() == tmp_path / "elsewhere"


def test_two_clv_commands_run_one_after_the_other(tmp_path, monkeypatch):
    """Two `clv materialize` started together both found no run in progress and ran side by side: the run lock
    of the data dir makes the second wait for the first, naming it, and give up after its time."""
    import subprocess

    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "data"))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.argv = ['clv', 'materialize', 'ingest']\n"
         "from clv_platform import orchestrate\nwith orchestrate.one_clv_run():\n    print('held', flush=True); "
         "time.sleep(8)"], env={**os.environ, "CLV_DATA_DIR": str(tmp_path / "data")}, stdout=subprocess.PIPE,
        text=True)
    assert holder.stdout.readline().strip() == "held"
    said = []
    with pytest.raises(orchestrate.JobFailed, match=f"clv process {holder.pid} \\(materialize ingest\\) still runs"):
        with orchestrate.one_clv_run(seconds=0.5, echo=said.append):
            pass
    assert said and f"for clv process {holder.pid} (materialize ingest) to finish" in said[0]
    with orchestrate.one_clv_run(seconds=60, echo=said.append):      # waits, then runs once the holder let go
        assert len(said) == 2 and holder.wait(timeout=30) == 0


def test_a_warehouse_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    """A damaged (or read-only) warehouse file: `clv materialize` printed DuckDB's traceback."""
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    (tmp_path / "warehouse.duckdb").write_bytes(b"not a database" * 100)
    with pytest.raises(orchestrate.JobFailed, match="warehouse .* cannot be opened for writing"):
        orchestrate.wait_for_warehouse(echo=print)


def test_a_run_whose_clv_process_dies_during_the_wait_is_marked_failed_and_not_waited_for(tmp_path, monkeypatch):
    """The first of two clv commands killed (kill -9) while the second waited for its run: the second waited
    the full 30 min for a run that could never end."""
    import socket
    import subprocess

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "data"))
    import threading

    dying = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    threading.Thread(target=dying.wait, daemon=True).start()     # reaped when it ends, as init reaps a killed clv
    with orchestrate.instance() as instance:
        run = instance.create_run_for_job(
            dg.GraphDefinition(name="training_job").to_job(),
            tags={orchestrate.PID_TAG: str(dying.pid), orchestrate.HOST_TAG: socket.gethostname()})
        instance.handle_run_event(run.run_id, dg.DagsterEvent(
            event_type_value="PIPELINE_START", job_name=run.job_name, message="started"))
        said = []
        orchestrate.wait_for_runs(instance, seconds=60, poll=0.5, echo=said.append)    # returns once it died
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert any(f"marked run {run.run_id[:8]} (training_job) failed" in line for line in said), said


@pytest.mark.parametrize("own", ["vocabularies.toml", "landing/import_rejects"])
def test_clv_run_does_not_generate_the_demo_into_a_data_dir_set_up_for_own_data(tmp_path, monkeypatch, own):
    """After a refused import (nothing written) the landing folder is empty: `clv run` must not fill the user's
    data dir with demo customers."""
    data = tmp_path / "data"
    (data / "landing").mkdir(parents=True)
    marker = data / own
    if own.endswith(".toml"):
        marker.write_text('channels = ["*"]\n')
    else:
        marker.mkdir()
    monkeypatch.setenv("CLV_DATA_DIR", str(data))
    monkeypatch.delenv("CLV_VOCABULARIES", raising=False)
    with pytest.raises(orchestrate.JobFailed) as err:
        orchestrate.run_pipeline(customers=50, days=30, seed=1, echo=lambda *_: None)
    assert f"holds your own set-up ({marker})" in str(err.value) and "clv import-history" in str(err.value)
    assert list((data / "landing").iterdir()) == ([marker] if "landing" in own else [])
