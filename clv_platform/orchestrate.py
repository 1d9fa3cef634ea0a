"""Run the Dagster jobs from the command line against the real instance (runs show up in the UI).

Used by `clv run` (the whole pipeline, `make run`) and `clv materialize <stage>`.
"""

import os
import socket
import sys
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import dagster as dg
import duckdb

from clv_platform.lib import ingest, warehouse
from clv_platform.lib.landing import (
    changed_since_loaded,
    contiguous_ranges,
    list_landing_files,
    name_list,
    outside_partitions,
)
from clv_platform.lib.settings import get_settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Which `clv` process runs a job in-process, so that a run whose process was killed can be told apart.
PID_TAG, HOST_TAG = "clv/pid", "clv/host"
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


@cache
def definitions() -> dg.Definitions:
    from clv_platform.definitions import defs

    return defs()


INSTANCE_SETTINGS = Path(__file__).with_name("dagster.yaml")    # telemetry off, one run at a time


def home() -> Path:
    """The Dagster instance's folder: $DAGSTER_HOME, else `.dagster_home` next to the data dir (where the
    Makefile puts it), so a `clv` command run without make uses the same instance as `make` and the UI."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"]).expanduser().resolve()
    return get_settings().data_dir.parent / ".dagster_home"


def instance() -> dg.DagsterInstance:
    """The persistent instance at home(), created with the platform's settings (dagster.yaml) if new."""
    path = home()
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "dagster.yaml").exists():
        if not any(path.iterdir()):     # a new instance records its data dir, as the Makefile's does
            (path / ".data_dir").write_text(f"{get_settings().data_dir}\n")
        (path / "dagster.yaml").write_text(INSTANCE_SETTINGS.read_text())
    return dg.DagsterInstance.from_config(str(path))


FAILURE = f"{dg.Failure.__module__}.{dg.Failure.__name__}"   # an asset's deliberate failure: its message is enough


class JobFailed(RuntimeError):
    pass


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:     # someone else's process: alive
        pass
    return True


def abandoned_runs(inst: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Runs a `clv` command on this machine ran in its own process, whose process is gone (kill -9, a closed
    terminal) while the run still says STARTED. The daemon counts them against the run limit (one at a time,
    dagster.yaml): no queued run starts while one stays."""
    runs = inst.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS, tags={HOST_TAG: socket.gethostname()}))
    return [run for run in runs if run.tags.get(PID_TAG, "").isdigit() and not _alive(int(run.tags[PID_TAG]))]


def fail_abandoned_runs(inst: dg.DagsterInstance, echo=print) -> list[str]:
    """Mark abandoned_runs() failed (which frees the daemon's queue); returns their run ids."""
    failed = []
    for run in abandoned_runs(inst):
        inst.report_run_failed(run, f"the clv process that ran it (pid {run.tags[PID_TAG]}) is gone")
        echo(f"marked run {run.run_id[:8]} ({run.job_name}) failed: the clv process that ran it "
             f"(pid {run.tags[PID_TAG]}) is gone")
        failed.append(run.run_id)
    return failed


def failing_instigators(inst: dg.DagsterInstance) -> list[tuple[str, str, datetime, str]]:
    """(sensor|schedule, name, when, first line of the error) for each switched-on sensor or schedule whose
    latest tick failed: the daemon keeps ticking, so nothing else says that it does nothing."""
    from dagster._core.scheduler.instigation import InstigatorStatus, TickStatus

    out = []
    for state in inst.all_instigator_state(
            instigator_statuses={InstigatorStatus.RUNNING, InstigatorStatus.DECLARED_IN_CODE}):
        ticks = inst.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
        if ticks and ticks[0].status == TickStatus.FAILURE:
            error = _cause(ticks[0].error).splitlines()[0] if ticks[0].error else "no error recorded"
            out.append((state.instigator_type.value.lower(), state.instigator_name,
                        datetime.fromtimestamp(ticks[0].timestamp, UTC), error))
    return out


def switched_on(inst: dg.DagsterInstance, name: str) -> bool:
    """Whether the sensor or schedule `name` was switched on in the instance (the UI's toggle)."""
    from dagster._core.scheduler.instigation import InstigatorStatus

    return any(state.instigator_name == name
               for state in inst.all_instigator_state(instigator_statuses={InstigatorStatus.RUNNING}))


RUNS_WAIT_SECONDS = 1800.0


def wait_for_runs(inst: dg.DagsterInstance, seconds: float = RUNS_WAIT_SECONDS, poll: float = 2.0,
                  echo=print) -> None:
    """Return once no other run is in progress. The daemon starts one run at a time (dagster.yaml) and counts
    `clv`'s in-process runs too, but a `clv` command does not queue: without this wait it would start next to
    a daemon run (a long training, a backfill) and fail after the warehouse lock's 60 s."""
    import time

    runs = inst.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS))
    if not runs:
        return
    names = ", ".join(f"{run.run_id[:8]} ({run.job_name})" for run in runs)
    echo(f"waiting up to {seconds / 60:.0f} min for the run(s) in progress to finish: {names} "
         "(one run at a time writes the warehouse; Ctrl-C stops waiting)")
    deadline = time.monotonic() + seconds
    while inst.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS), limit=1):
        fail_abandoned_runs(inst, echo=echo)     # a clv process killed meanwhile: its run never ends by itself
        if time.monotonic() > deadline:
            raise JobFailed(f"run(s) still in progress after {seconds / 60:.0f} min: {names}; try again when "
                            "they end, or stop them in the Dagster UI (Runs)")
        time.sleep(poll)


RUN_LOCK = ".clv-run.lock"     # in the data dir: held by the `clv` process whose run writes the warehouse


@contextmanager
def one_clv_run(seconds: float = RUNS_WAIT_SECONDS, echo=print):
    """One `clv` run at a time per data dir. Two commands started together both found no run in progress and
    ran side by side (wait_for_runs sees a run only once it exists): an exclusive lock on a file of the data dir,
    held from that check to the run's end, makes the second one wait. The OS drops it if the process dies."""
    import fcntl
    import time

    def taken(lock) -> bool:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    path = get_settings().ensure_data_dir() / RUN_LOCK
    with open(path, "a+") as lock:
        if not taken(lock):
            lock.seek(0)
            holder = lock.read().strip() or "another clv command"
            echo(f"waiting up to {seconds / 60:.0f} min for {holder} to finish its run (one run at a time writes "
                 "the warehouse; Ctrl-C stops waiting)")
            deadline = time.monotonic() + seconds
            while not taken(lock):
                if time.monotonic() > deadline:
                    raise JobFailed(f"{holder} still runs after {seconds / 60:.0f} min; try again when it ends")
                time.sleep(1.0)
        lock.seek(0)
        lock.truncate()
        lock.write(f"clv process {os.getpid()} ({' '.join(sys.argv[1:3]) or 'clv'})")
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()
            fcntl.flock(lock, fcntl.LOCK_UN)


def wait_for_warehouse(seconds: float = 60.0, echo=print) -> None:
    """Return once the warehouse can be written; while another process holds it, say so and wait up to
    `seconds`, then JobFailed in one line (the run's own resource would wait as long, then fail in a trace)."""
    path = get_settings().warehouse_path
    try:
        warehouse.connect(path).close()
    except warehouse.WarehouseBusyError as exc:
        echo(f"waiting up to {seconds:.0f} s for the warehouse: {exc}")
        try:
            warehouse.connect(path, wait_seconds=seconds).close()
        except warehouse.WarehouseBusyError as again:
            raise JobFailed(f"{again}; try again when it ends") from None
    except duckdb.Error as exc:     # read-only, damaged, a full disk: one line, not the run's trace
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise JobFailed(f"the warehouse {path} cannot be opened for writing ({first}): check its permissions and "
                        "the disk; `clv status` says more") from None


def run_job(
    name: str,
    tags: dict | None = None,
    partition_key: str | None = None,
    asset_keys: list[tuple[str, ...]] | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute a job (or some of its assets) in this process; on failure raise with the steps' errors."""
    from clv_platform.defs.jobs import QUIET_LOGS

    job = definitions().resolve_job_def(name)
    inst = instance()
    with one_clv_run(echo=_stderr):     # (a clv command killed while this one waited for it left its run behind)
        fail_abandoned_runs(inst, echo=_stderr)
        wait_for_runs(inst, echo=_stderr)
        wait_for_warehouse(echo=_stderr)
        result = job.execute_in_process(
            # A ranged run of a partitioned job takes its config from the partitions, not the job's default.
            run_config=QUIET_LOGS if job.partitions_def is not None else None,
            instance=inst,
            tags={**(tags or {}), PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()},
            partition_key=partition_key,
            asset_selection=[dg.AssetKey(list(key)) for key in asset_keys] if asset_keys else None,
            raise_on_error=False,
        )
    if not result.success:
        errors = [
            f"{event.step_key}: {_cause(event.event_specific_data.error)}"
            for event in result.all_events
            if event.is_step_failure and event.event_specific_data and event.event_specific_data.error
        ] + [
            f"check {check.check_name} failed: {check.description}"
            for check in result.get_asset_check_evaluations() if not check.passed and check.description
        ]
        raise JobFailed(f"{name} failed (run {result.run_id}):\n  " + "\n  ".join(errors or ["see the Dagster UI"]))
    return result


def _cause(error) -> str:
    """The innermost cause of a step's error: a plain exception in an asset reaches Dagster as
    "DagsterExecutionStepExecutionError: Error occurred while executing op ...", its message in `cause`."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip().removeprefix(f"{FAILURE}: ")


def ingest_range(start: date, end: date, tags: dict | None = None) -> dg.ExecuteInProcessResult:
    """All partitions start..end as ONE run (the assets' BackfillPolicy.single_run())."""
    if start == end:
        return run_job("ingestion_job", tags=tags, partition_key=start.isoformat())
    return run_job("ingestion_job", tags={**(tags or {}), RANGE_START_TAG: start.isoformat(),
                                          RANGE_END_TAG: end.isoformat()})


def ingest_landing(start: date | None = None, end: date | None = None, new_only: bool = False, echo=print,
                   tags: dict | None = None) -> list[tuple[date, date]]:
    """Load the landing files' days start..end (default: every landing file's) as one run, and return the
    ranges loaded ([] when there is nothing to load). new_only: the days whose file is not loaded yet or changed
    since it was loaded, one run per stretch of consecutive days, as the landing sensor requests them (a
    correction to a day months back, delivered with today's file, reloaded every day in between). Files dated
    outside the daily partitions are left out, and `echo` names them."""
    settings = get_settings()
    files = list_landing_files(settings.landing_dir)
    if not files:
        raise JobFailed(f"no landing files in {settings.landing_dir}: run `clv import-history EXPORT` (your "
                        "history), `clv generate` (a demo) or `clv import-cdnow`")
    first_day = date.fromisoformat(settings.partitions_start)
    early, future = outside_partitions(files, first_day, datetime.now(UTC).date())
    if early or future:
        echo(f"left out: {len(early) + len(future)} landing file(s) dated outside the daily partitions "
             f"({first_day}..today): {name_list([f.path.name for f in early + future])}; set "
             "CLV_PARTITIONS_START to an earlier date for older files, and check the date in the name of files "
             "dated in the future")
        files = [f for f in files if f not in early and f not in future]
    if new_only:
        wait_for_warehouse(echo=echo)
        loaded = ingest.read_loaded_files(settings.warehouse_path)
        files = [f for f in files if f.day not in loaded] + changed_since_loaded(files, loaded)
    days = sorted({f.day for f in files if (start is None or f.day >= start) and (end is None or f.day <= end)})
    if not days:
        return []
    ranges = contiguous_ranges(days) if new_only else [(days[0], days[-1])]
    for first, last in ranges:
        if len(ranges) > 1:
            echo(f"loading {first}..{last}" if first != last else f"loading {first}")
        ingest_range(first, last, tags=tags)
    return ranges


def run_pipeline(customers: int, days: int, seed: int, echo=print) -> None:
    """`make run`: every stage in order, each a Dagster run on the real instance."""
    from clv_platform.defs.sensors import SCORED_BY_CALLER_TAG
    from clv_platform.lib import generator, registry

    settings = get_settings()
    if not list_landing_files(settings.landing_dir):
        if ours := _not_a_demo_dir(settings):
            raise JobFailed(
                f"no landing files in {settings.landing_dir}, but {settings.data_dir} holds your own set-up ("
                f"{ours}): the demo is generated only into a new data dir, so it is never mixed with your data. "
                "Put your daily files in the landing folder (`clv import-history EXPORT` splits an export), or "
                "start the demo elsewhere (another CLV_DATA_DIR, or `make clean` to delete this one)")
        echo(f"[1/6] generating demo data: {customers:,} customers over {days} days -> {settings.landing_dir}")
        generator.generate(settings.landing_dir, customers=customers, days=days, seed=seed)
    else:
        echo(f"[1/6] using the landing files already in {settings.landing_dir}")
    echo("[2/6] ingesting and validating the landing files' partitions (one ranged run)")
    (loaded,) = ingest_landing(echo=echo, tags={SCORED_BY_CALLER_TAG: "clv run"}) or [None]
    if loaded is None:
        raise JobFailed(f"no landing file in {settings.landing_dir} is dated inside the daily partitions")
    echo(f"  partitions {loaded[0]}..{loaded[1]} loaded")
    echo("[3/6] training: features, BG/NBD + Gamma-Gamma, LightGBM CLV model, segment model")
    run_job("training_job")
    echo("[4/6] promotion: `production` goes to the new models only on the first run (later: make promote-*)")
    gate_sensor = "promote_after_training_sensor"
    gated = switched_on(instance(), gate_sensor)
    for model, spec in registry.MODELS.items():
        if registry.alias_version(spec.name, registry.PRODUCTION):
            echo(f"  {spec.name}: production already set; the new version waits as `staging` " + (
                f"({gate_sensor} is on: the daemon runs the promotion gate on it after this job, and the "
                "snapshot published below has production's scores until a rescore)" if gated
                else f"(make promote-{model})"))
        else:
            echo("  " + registry.promote_spec(spec).message)
    echo("[5/6] monthly segment history (as-of month ends, with the production models)")
    run_segment_history(loaded[1])
    echo("[6/6] scoring every customer and publishing the serving snapshot")
    run_job("scoring_job")
    echo(summary_text())


def _not_a_demo_dir(settings) -> str:
    """What in the data dir says it holds someone's own data ('' when nothing does): its vocabularies file,
    what an import set aside or replaced, a warehouse with loaded files."""
    from clv_platform.lib.history_import import REJECTS_DIR, REPLACED_DIR

    signs = [str(p) for p in (settings.vocabularies_path, settings.landing_dir / REJECTS_DIR,
                              settings.landing_dir / REPLACED_DIR) if p.exists()]
    if settings.warehouse_path.exists():
        wait_for_warehouse(echo=_stderr)
        if loaded := len(ingest.read_loaded_files(settings.warehouse_path)):
            signs.append(f"a warehouse with {loaded:,} loaded day(s)")
    return ", ".join(signs)


def latest_loaded_day() -> date:
    """The latest day of staging.transactions (the as-of date of scoring)."""
    con = warehouse.connect(get_settings().warehouse_path, read_only=True, wait_seconds=60)
    try:
        return con.execute("SELECT max(partition_date) FROM staging.transactions").fetchall()[0][0]
    finally:
        con.close()


def run_segment_history(last_day: date, months: int = 6) -> None:
    """Backfill the last few monthly as-of partitions of serving/segment_history (one ranged run)."""
    from clv_platform.defs.partitions import monthly_partitions

    keys = [key for key in monthly_partitions.get_partition_keys() if key <= last_day.isoformat()][-months:]
    if keys:
        run_job("segment_history_job", tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]})


def summary_text() -> str:
    """A short report read from the published snapshot and the warehouse (opened read-only, after the runs). A
    part that cannot be read (the warehouse taken by the next run, a damaged snapshot) becomes a line saying so:
    the jobs have succeeded by now, and a traceback here would make them look failed."""
    settings = get_settings()
    lines = ["", "== clv_platform summary =="]
    for part in (_warehouse_lines, lambda s: snapshot_lines(s.snapshot_root), lambda s: waiting_model_lines(
            s.mlflow_uri) if s.mlflow_store_exists else []):
        try:
            lines.extend(part(settings))
        except Exception as exc:  # noqa: BLE001 (a report: say what could not be read, never fail)
            lines.append(f"(not shown: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                         "`clv status` reads it again)")
    port = {name: os.environ.get(f"{name}_PORT") or default         # the Makefile's port settings, as make uses them
            for name, default in (("DAGSTER", "3000"), ("MLFLOW", "5000"), ("API", "8000"), ("DASHBOARD", "8501"))}
    lines.append(
        f"next        Dagster UI: make dev (http://127.0.0.1:{port['DAGSTER']}) | MLflow: make mlflow-ui "
        f"(http://127.0.0.1:{port['MLFLOW']})\n"
        f"            API: make serve-api (POST http://127.0.0.1:{port['API']}/predict) | "
        f"dashboard: make serve-dashboard (http://127.0.0.1:{port['DASHBOARD']})\n"
        "            where things stand: .venv/bin/clv status | running it every day: docs/operations.md"
    )
    return "\n".join(lines)


def _warehouse_lines(settings) -> list[str]:
    if not settings.warehouse_path.exists():
        return []
    con = warehouse.connect(settings.warehouse_path, read_only=True, wait_seconds=10)
    try:
        partitions, read, loaded, rejected = con.execute(
            "SELECT count(*), sum(rows_read), sum(rows_loaded), sum(rows_rejected) FROM raw.load_audit"
        ).fetchone()
        customers, first, last = con.execute(
            "SELECT count(DISTINCT customer_id), min(partition_date), max(partition_date) FROM staging.transactions"
        ).fetchone()
    finally:
        con.close()
    return [f"warehouse   {settings.warehouse_path}\n"
            f"partitions  {partitions:,} ({first}..{last})\n"
            f"rows        read {read or 0:,} = loaded {loaded or 0:,} + quarantined {rejected or 0:,}\n"
            f"customers   {customers:,}"]


def waiting_model_lines(tracking_uri: str) -> list[str]:
    """A trained version that is not production (the gate refused it, or it waits for `clv promote`): the
    snapshot's figures are production's, so say what the new version scored and how to use it."""
    from clv_platform.lib import registry

    lines = []
    for key, spec in registry.MODELS.items():
        info = registry.status(spec.name, tracking_uri)
        aliases = info.get("aliases", {})
        staging, production = aliases.get(registry.STAGING), aliases.get(registry.PRODUCTION)
        if staging is None or staging == production:
            continue
        new, old, how = registry.gate_figures(spec.name, spec.metric, staging, production, tracking_uri)
        # (a version the gate has judged: why it waits, not an invitation the gate would refuse)
        then = registry.staging_note(key, info) or (f"`clv promote {key}` uses it if at least as good "
                                                    "(`clv models` has the rest)")
        lines.append(f"waiting     {spec.name} v{staging} is staging, not production: {spec.metric} "
                     f"{registry.format_metric(new)} vs production"
                     f"{f' v{production}' if production else ''} {registry.format_metric(old)}{how}; {then}")
    return lines + [f"attention   {problem}" for problem in registry.pairing_problems(tracking_uri)]


def snapshot_lines(snapshot_root: Path) -> list[str]:
    from clv_platform.lib import registry
    from clv_platform.lib.snapshot import SnapshotNotFoundError, SnapshotReader

    try:
        snapshot = SnapshotReader(snapshot_root, preload=None).get()
    except SnapshotNotFoundError:
        return ["snapshot    none published yet"]
    lines = [f"snapshot    {snapshot.snapshot_id} as of {snapshot.as_of_date} -> {snapshot_root}/current"]
    tables = {name: snapshot.table(name) for name in snapshot.table_names}
    metrics = tables.get("model_metrics")
    if metrics is not None and len(metrics):
        wide = metrics.pivot_table(index=["registered_model", "metric"], columns="model", values="value")
        for registered_model, block in wide.groupby(level=0):
            block = block.droplevel(0).dropna(axis=1, how="all")
            version = snapshot.model_versions.get(registered_model)
            # the CLV model is judged on customers held out of its training; the segments are fitted and judged
            # on every customer but the new ones, who are segmented by rule (silhouette, stability, BIC describe
            # the fit, there is nothing to hold out)
            judged = ("on held-out customers" if registered_model == registry.MODELS["clv"].name
                      else "of the clustering (every customer but the new ones)")
            lines.append(f"{registered_model}{f' v{version}' if version else ''} (scored this snapshot) metrics "
                         f"{judged}:")
            lines.extend("  " + line for line in block.to_string(float_format="{:.3f}".format).splitlines())
    segments = tables.get("segment_summary")
    if segments is not None and len(segments):
        columns = ["segment_name", "customers", "share", "value_share", "avg_predicted_clv", "avg_p_alive",
                   "avg_days_since_last_order"]
        segments = segments[[c for c in columns if c in segments.columns]]
        lines.append("segments:")
        lines.extend("  " + line for line in segments.to_string(index=False, float_format="{:.2f}".format).splitlines())
    return lines
