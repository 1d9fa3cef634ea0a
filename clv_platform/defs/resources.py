"""Resources: where the warehouse and the landing files are. Defaults come from CLV_DATA_DIR."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from clv_platform.lib import registry, warehouse
from clv_platform.lib.settings import get_settings


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file. Dagster is its only writer; open it only for the length of a step. A step
    that finds it held by a reader (`clv status`, the landing sensor: milliseconds) waits for it."""

    database: str
    lock_wait_seconds: float = 60.0

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = warehouse.connect(self.database, wait_seconds=self.lock_wait_seconds)
        try:
            yield con
        finally:
            con.close()


class LandingResource(dg.ConfigurableResource):
    """The folder the daily transaction files land in."""

    directory: str

    @property
    def path(self) -> Path:
        return Path(self.directory)


# --- mlflow (models + registry section) ---------------------------------------------------------------


def _run_tags(context: Any) -> dict[str, str]:
    """MLflow tags naming the Dagster run, asset(s) and partition(s) of an op/asset execution context."""
    tags = {"dagster_run_id": context.run_id}
    try:
        tags["dagster_job"] = context.job_name
    except Exception:
        pass
    try:
        keys = sorted(k.to_user_string() for k in context.selected_asset_keys)
        if keys:
            tags["dagster_asset"] = ",".join(keys)
    except Exception:
        pass
    try:
        if context.has_partition_key_range:
            rng = context.partition_key_range
            tags["dagster_partition"] = rng.start if rng.start == rng.end else f"{rng.start}..{rng.end}"
        elif context.has_partition_key:
            tags["dagster_partition"] = context.partition_key
    except Exception:
        pass
    return tags


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking and registry on an absolute SQLite URI, artifacts under the data dir.

    `start_run(context, run_name)` is a context manager: it creates the experiment (with its artifact
    location under `artifact_root`) if missing, starts a run tagged with the Dagster run id, asset key(s)
    and partition, yields the mlflow ActiveRun and ALWAYS ends it (FINISHED, or FAILED/KILLED on error).
    `end_run(status)` makes it usable by dagster-mlflow's `end_mlflow_on_run_finished` hook (the hook calls
    `context.resources.mlflow.end_run()` after the job's last step and `end_run(status="FAILED")` on a failed
    step): it ends the active run and every run still RUNNING that is tagged with this Dagster run id.
    """

    tracking_uri: str
    artifact_root: str
    experiment_name: str = registry.EXPERIMENT

    _dagster_run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._dagster_run_id = context.run_id
        self.configure()
        moved = registry.follow_moved_data_dir(self.experiment_name, self.artifact_root, self.tracking_uri)
        if moved:
            context.log.warning(moved)

    def configure(self) -> None:
        """Point every MLflow call of this process at our store (MLflow's default is a file in the cwd)."""
        os.environ["MLFLOW_TRACKING_URI"] = self.tracking_uri
        os.environ["MLFLOW_REGISTRY_URI"] = self.tracking_uri
        if "mlflow" in sys.modules:  # already imported: its global URI may point elsewhere
            registry.configure(self.tracking_uri)

    def experiment_id(self) -> str:
        registry.configure(self.tracking_uri)
        return registry.ensure_experiment(self.experiment_name, self.artifact_root, self.tracking_uri)

    @contextmanager
    def start_run(
        self, context: Any = None, run_name: str | None = None, tags: dict[str, Any] | None = None
    ) -> Iterator[Any]:
        import mlflow

        registry.configure(self.tracking_uri)
        experiment_id = self.experiment_id()
        mlflow.set_experiment(experiment_id=experiment_id)  # fluent calls in the body default to it too
        all_tags = _run_tags(context) if context is not None else {}
        all_tags.update({k: str(v) for k, v in (tags or {}).items()})
        job = all_tags.get("dagster_job", "")
        if run_name and job and not job.startswith("__"):   # "bgnbd · training_job" vs "bgnbd · scoring_job"
            run_name = f"{run_name} · {job}"
        if context is not None:
            self._dagster_run_id = context.run_id
            self.end_orphaned_runs(context.instance)
        run = mlflow.start_run(
            experiment_id=experiment_id,
            run_name=run_name,
            tags=all_tags,
            nested=mlflow.active_run() is not None,
        )
        run_id = run.info.run_id
        status = "FINISHED"
        try:
            yield run
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except BaseException:
            status = "FAILED"
            raise
        finally:
            # End runs the body left open on top of ours, then ours.
            while (active := mlflow.active_run()) is not None and active.info.run_id != run_id:
                mlflow.end_run(status)
            if mlflow.active_run() is not None:
                mlflow.end_run(status)
            else:
                registry.client(self.tracking_uri).set_terminated(run_id, status)

    def end_orphaned_runs(self, instance: dg.DagsterInstance) -> list[str]:
        """Mark KILLED the MLflow runs still RUNNING whose Dagster run (on this instance) has ended: their process
        was killed (kill -9, a lost machine), so neither start_run's `finally` nor the hook could end them. Runs
        of Dagster runs this instance does not know (another, ephemeral instance) are left alone."""
        c = registry.client(self.tracking_uri)
        experiment = c.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            return []
        ended = []
        for run in c.search_runs([experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"):
            dagster_run_id = run.data.tags.get("dagster_run_id")
            if not dagster_run_id or dagster_run_id == self._dagster_run_id:
                continue
            dagster_run = instance.get_run_by_id(dagster_run_id)
            if dagster_run is not None and dagster_run.is_finished:
                c.set_terminated(run.info.run_id, "KILLED")
                ended.append(run.info.run_id)
        return ended

    def end_run(self, status: str | None = None) -> list[str]:
        """End the active MLflow run and any run of this Dagster run still RUNNING; returns their ids."""
        import mlflow

        status = status or "FINISHED"
        ended = []
        registry.configure(self.tracking_uri)
        while (active := mlflow.active_run()) is not None:
            ended.append(active.info.run_id)
            mlflow.end_run(status)
        if self._dagster_run_id:
            c = registry.client(self.tracking_uri)
            experiment = c.get_experiment_by_name(self.experiment_name)
            if experiment is not None:
                for run in c.search_runs(
                    [experiment.experiment_id],
                    filter_string=f"tags.dagster_run_id = '{self._dagster_run_id}' and attributes.status = 'RUNNING'",
                ):
                    c.set_terminated(run.info.run_id, status)
                    ended.append(run.info.run_id)
        return ended


def default_resources() -> dict:
    settings = get_settings()
    return {
        "warehouse": WarehouseResource(database=str(settings.warehouse_path)),
        "landing": LandingResource(directory=str(settings.landing_dir)),
        "mlflow": MlflowResource(
            tracking_uri=settings.mlflow_uri, artifact_root=str(settings.mlflow_artifact_root)
        ),
    }


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources=default_resources())
