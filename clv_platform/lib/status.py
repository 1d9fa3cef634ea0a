"""Where the platform stands, in one look (`clv status`): landing files (waiting, changed since loaded, dated
outside the daily partitions, misnamed), what the warehouse loaded and quarantined, the last validation, the
registered models and the published snapshot. Read only: the warehouse is opened read-only (and reported busy
while a run writes it), the MLflow store is not created when absent; its one write: after the data dir moved,
MLflow's stored artifact paths follow it (registry.follow_moved_data_dir)."""

import csv
import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from clv_platform.lib import (
    ingest,
    landing,
    quarantine_acceptance,
    registry,
    schema,
    snapshot,
    validation,
    warehouse,
)
from clv_platform.lib.history_import import REJECTS_DIR
from clv_platform.lib.metrics import PSI_LARGE, psi_metrics
from clv_platform.lib.settings import Settings, SettingsError


@dataclass
class Status:
    data_dir: str
    vocabularies: str
    landing: dict = field(default_factory=dict)
    warehouse: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    snapshot: dict = field(default_factory=dict)
    attention: list[str] = field(default_factory=list)   # what a person should look at
    refused_files: dict = field(default_factory=dict)      # day -> (file, sha256, problem) of raw.load_failures
    accepted_quarantine: list = field(default_factory=list)  # `clv accept-quarantine`: days used despite their share


def to_json(st: Status) -> str:
    """`clv status --json`: the collected facts as one JSON object, with `state` ("attention" or "all clear")
    for monitors that read the output rather than the exit code. Dates and times are ISO strings."""
    def plain(value):
        if isinstance(value, dict):        # keys too (refused_files is keyed by day)
            return {k.isoformat() if isinstance(k, dt.date) else k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        if hasattr(value, "item"):        # numpy scalars
            return value.item()
        return value if value is None or isinstance(value, str | int | float | bool) else str(value)
    body = dataclasses.asdict(st)
    body["refused_files"] = {day: dict(zip(("file", "sha256", "problem"), refused, strict=True))
                             for day, refused in st.refused_files.items()}
    return json.dumps(plain({"state": "attention" if st.attention else "all clear", **body}), indent=2)


def collect(settings: Settings, now: dt.datetime | None = None) -> Status:
    now = now or dt.datetime.now(dt.UTC)
    try:
        vocab = settings.vocabularies().source
    except schema.VocabularyFileError as exc:
        vocab = f"UNUSABLE: {exc}"
    st = Status(data_dir=str(settings.data_dir), vocabularies=vocab)
    if vocab.startswith("UNUSABLE"):
        st.attention.append("the vocabularies file is unusable: ingestion will refuse to run")
    files = _landing(settings, st, now.date())
    loaded = _warehouse(settings, st)
    if files and loaded is not None:
        waiting = sorted({f.day for f in files} - loaded.keys())
        st.landing["not_loaded"] = len(waiting)
        changed = sorted(f.day for f in landing.changed_since_loaded(files, loaded))
        # a waiting or changed file whose very bytes were refused at its last load: another load would refuse it
        # again (a re-delivery of a loaded day too: the day keeps its earlier rows)
        by_day = {f.day: f for f in files}
        refused = {day: st.refused_files[day] for day in waiting + changed if day in st.refused_files
                   and st.refused_files[day][1] == landing.sha256_of(by_day[day].path)}
        if refused:
            names = "; ".join(f"{file}: {problem}" for file, _, problem in list(refused.values())[:3])
            st.attention.append(f"{len(refused)} landing file(s) refused as a whole at their last load ({names}"
                                f"{' ...' if len(refused) > 3 else ''}): fix the file (`clv validate FILE` shows "
                                "what is wrong) and drop it in again")
        waiting = [day for day in waiting if day not in refused]
        if waiting:
            st.attention.append(f"{len(waiting)} landing file(s) not loaded yet (first {waiting[0]}): "
                                "`clv materialize ingest --new` loads them")
        changed = [day for day in changed if day not in refused]
        st.landing["changed"] = len(changed)
        if changed:
            st.attention.append(f"{len(changed)} landing file(s) changed since they were loaded (first {changed[0]}): "
                                "`clv materialize ingest --new` reloads them")
    if loaded:
        days_with_files = loaded.keys() | {f.day for f in files}
        first, last = min(loaded), max(loaded)
        span = (first + dt.timedelta(days=i) for i in range((last - first).days + 1))
        gaps = [day for day in span if day not in days_with_files]
        st.landing["days_without_file"] = len(gaps)
        if gaps:
            st.attention.append(f"{len(gaps)} day(s) between {first} and {last} have no landing file (first "
                                f"{gaps[0]}): a day without orders still gets a header-only file, so a missing "
                                "file is a missing day of data")
    try:
        st.accepted_quarantine = quarantine_acceptance.load(settings.data_dir)
    except quarantine_acceptance.AcceptanceFileError as exc:
        st.attention.append(str(exc))
    _feed_age(settings, st, max([*(f.day for f in files), *(loaded or {})], default=None), now.date())
    _models(settings, st)
    _snapshot(settings, st, now)
    try:
        _ = settings.snapshots_kept
    except SettingsError as exc:          # scoring would fail at its publish, after all its work
        st.attention.append(str(exc))
    last_load, published = st.warehouse.get("last_load"), st.snapshot.get("published_at")
    if last_load and published and last_load.astimezone(dt.UTC) > dt.datetime.fromisoformat(published):
        blocked = st.warehouse.get("failing_partitions") or st.warehouse.get("unvalidated_partitions")
        set_back = st.snapshot.get("newer_kept")      # `clv snapshot use`: a rescore would undo that
        st.attention.append(f"the snapshot (published {published[:19]} UTC) is older than the last load "
                            f"({last_load.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC): " + (
                                "rescore once the partitions above pass their checks (scoring refuses them until "
                                "then)" if blocked else "it was served again by `clv snapshot use`; rescore "
                                "(`clv materialize score`) once what made you go back is fixed, since that "
                                "publishes a new snapshot" if set_back else "rescore (`clv materialize score`; with "
                                "rescore_after_ingestion_sensor and rescore_after_failed_load_sensor on, the daemon "
                                "does it after each load, and after a load that failed on one file but loaded "
                                "other days)"))
    return st


def _feed_age(settings: Settings, st: Status, newest: dt.date | None, today: dt.date) -> None:
    """A daily export that stopped: days missing between loaded days were named, the ones after the last not."""
    try:
        stale = settings.feed_stale_days
    except SettingsError as exc:
        st.attention.append(str(exc))
        return
    if newest is not None and stale and (today - newest).days > stale:
        st.attention.append(f"no data since {newest} ({(today - newest).days} days before today): the newest "
                            f"landing file is older than CLV_FEED_STALE_DAYS={stale}: is the daily export running? "
                            "(a history that no longer grows: set CLV_FEED_STALE_DAYS=0)")


def _records(path: Path) -> int:
    with path.open(newline="") as f:
        return sum(1 for _ in csv.reader(f))


def _landing(settings: Settings, st: Status, today: dt.date) -> list[landing.LandingFile]:
    """Fills st.landing; returns the files a daily partition can load (dated from partitions_start to today)."""
    files = landing.list_landing_files(settings.landing_dir)
    st.landing = {"dir": str(settings.landing_dir), "files": len(files),
                  "first": files[0].day if files else None, "last": files[-1].day if files else None}
    misnamed = landing.misnamed_files(settings.landing_dir)
    st.landing["misnamed"] = len(misnamed)
    if misnamed:
        st.attention.append(f"not a landing file name: {landing.name_list(misnamed)} "
                            "(expected transactions_YYYY-MM-DD.csv or .parquet)")
    # rows of history exports that no daily file holds, as the import wrote them (header + one record per row)
    unassigned = {f: _records(f) - 1 for f in sorted((settings.landing_dir / REJECTS_DIR).glob("*.unassigned.csv"))}
    unassigned = {f: n for f, n in unassigned.items() if n > 0}
    st.landing["unassigned_rows"] = rows = sum(unassigned.values())
    if rows:
        st.attention.append(f"{rows:,} row(s) of history exports set aside by `clv import-history` (no readable "
                            f"day, or dated after the import day): {landing.name_list([str(f) for f in unassigned])}; "
                            "correct them in the export and import it whole again with --replace (a day's file is replaced "
                            "whole), or remove the file once they are dealt with")
    start = dt.date.fromisoformat(settings.partitions_start)     # (get_settings checked it)
    early, future = landing.outside_partitions(files, start, today)
    st.landing["out_of_range"] = len(early) + len(future)
    if early:
        st.attention.append(f"landing file(s) dated before the first daily partition {start} never load: "
                            f"{landing.name_list([f.path.name for f in early])}: set CLV_PARTITIONS_START={early[0].day} "
                            "(or earlier)")
    if future:
        st.attention.append(f"landing file(s) dated after today ({today}, UTC) have no partition yet: "
                            f"{landing.name_list([f.path.name for f in future])}: each loads when its day comes "
                            "(a shop ahead of UTC); otherwise check the date in the file name")
    return [f for f in files if start <= f.day <= today]


def _published(settings: Settings) -> bool:
    """Whether a snapshot was ever published (its pointer is there, whatever state it is in)."""
    return (settings.snapshot_root / snapshot.CURRENT).is_symlink()


def _unreadable_warehouse(st: Status, path: Path, exc: Exception, rebuild: str) -> None:
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    st.warehouse = {"path": str(path), "state": f"unreadable ({first_line})"}
    st.attention.append(f"the warehouse {path} cannot be read ({first_line[:200]}): restore it from a backup, or "
                        f"move it aside and rebuild it: {rebuild}")


def _ended_months(first: str, latest: dt.date) -> list[tuple[str, dt.date]]:
    """(YYYY-MM, its last day) of every month from `first` on that ended by `latest`."""
    out, year, month = [], *map(int, first[:7].split("-"))
    while (end := dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)) <= latest:
        out.append((f"{year:04d}-{month:02d}", end))
        year, month = year + month // 12, month % 12 + 1
    return out


def unfinished_history_months(history: dict[str, dt.date], latest: dt.date | None) -> list[str]:
    """Months YYYY-MM of the segment history (month -> its as-of date) that ended by `latest` (the latest order
    day) but were written as of an earlier day, or are missing, from the history's first month on: a `clv run`
    writes the month in progress as of its latest day, and without the daemon's monthly schedule nothing
    rewrites it once the month ends."""
    if not history or latest is None:
        return []
    return [month for month, end in _ended_months(min(history), latest) if history.get(month, dt.date.min) < end]


def _warehouse(settings: Settings, st: Status) -> dict[dt.date, str] | None:
    path = settings.warehouse_path
    rebuild = ("`clv materialize ingest` reloads every landing file, `clv materialize history` rebuilds the segment "
               "history, `clv materialize score` publishes")
    if not path.exists():
        st.warehouse = {"path": str(path), "state": "not created yet (run `make run` or `clv materialize ingest`)"}
        if _published(settings):
            st.attention.append(f"no warehouse at {path}, though a snapshot was published from one (deleted or "
                                f"moved?): restore it from a backup, or rebuild it: {rebuild}")
        return {}       # every landing file is waiting
    try:
        con = warehouse.connect(path, read_only=True)
    except warehouse.WarehouseBusyError as exc:
        st.warehouse = {"path": str(path), "state": f"busy: a run is writing it, try again when it ends ({exc})"}
        return None
    except duckdb.Error as exc:
        return _unreadable_warehouse(st, path, exc, rebuild)
    try:
        days = ingest.loaded_files(con)
        read, ok, bad, last, first_day, last_day = con.execute(
            "SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_rejected), 0), "
            "max(loaded_at), min(partition_date), max(partition_date) FROM raw.load_audit").fetchall()[0]
        failing = con.execute(
            "SELECT count(*), count(DISTINCT partition_date) FROM staging.validation_results WHERE NOT success"
        ).fetchall()[0]
        failing_examples = con.execute(
            "SELECT v.partition_date, v.expectation, a.source_file FROM staging.validation_results AS v "
            "LEFT JOIN raw.load_audit AS a USING (partition_date) WHERE NOT v.success "
            "ORDER BY v.partition_date, v.expectation LIMIT 5").fetchall()
        checked = con.execute("SELECT max(checked_at) FROM staging.validation_results").fetchall()[0][0]
        try:
            now_allowed = ingest.quarantined_now_allowed(con, settings.vocabularies())
        except schema.VocabularyFileError:
            now_allowed = {}
        # returns quarantined for want of their sale, whose sale a later-loaded earlier day has since brought
        returns_now_known = dict(con.execute(
            "SELECT r.partition_date, count(DISTINCT r.source_line) FROM raw.rejected_transactions AS r "
            "JOIN staging.transactions AS s ON s.order_id = r.original_order_id AND s.customer_id = r.customer_id "
            "AND s.quantity > 0 AND s.partition_date BETWEEN r.partition_date - $window AND r.partition_date "
            "WHERE r.reasons = 'return_without_known_order' GROUP BY 1 ORDER BY 1",
            {"window": ingest.RETURN_WINDOW_DAYS}).fetchall())
        refused = {day: (file, digest, problem) for day, file, digest, problem in con.execute(
            "SELECT partition_date, source_file, sha256, problem FROM raw.load_failures").fetchall()} \
            if warehouse.table_exists(con, "raw.load_failures") else {}
        # loaded after their latest validation, or never validated (a run stopped between its load and checks)
        unvalidated = [day for day, why, _ in validation.partitions_not_passed(con) if why == validation.NOT_VALIDATED]
        history = dict(con.execute("SELECT month, max(as_of_date) FROM serving.segment_history GROUP BY 1").fetchall()) \
            if warehouse.table_exists(con, "serving.segment_history") else {}
        latest_order = con.execute("SELECT CAST(max(order_ts) AS DATE) FROM staging.transactions").fetchone()[0] \
            if history else None
    except duckdb.Error as exc:
        return _unreadable_warehouse(st, path, exc, rebuild)
    finally:
        con.close()
    st.refused_files = refused
    st.warehouse = {"path": str(path), "state": "ok", "partitions": len(days), "first": first_day, "last": last_day,
                    "rows_read": int(read), "rows_loaded": int(ok), "rows_quarantined": int(bad), "last_load": last,
                    "failing_expectations": int(failing[0]), "failing_partitions": int(failing[1]),
                    "unvalidated_partitions": len(unvalidated),
                    "last_validation": checked}
    if read != ok + bad:
        st.attention.append(f"rows read {read:,} != loaded {ok:,} + quarantined {bad:,}")
    if stale := unfinished_history_months(history, latest_order):
        recent = [month for month, _ in _ended_months(min(history), latest_order)][-6:]   # what the job writes
        st.attention.append(
            f"segment history: {len(stale)} ended month(s) written before they ended, or missing ({stale[0]}"
            f"{'..' + stale[-1] if len(stale) > 1 else ''}); the migration compares them as they are: " + (
                "`clv materialize history` rewrites the last six months" if set(stale) <= set(recent) else
                "backfill those months of serving/segment_history in the Dagster UI (`clv materialize history` "
                "rewrites only the last six)")
            + " (with the daemon, monthly_segment_history_schedule writes each month after it ends)")
    if returns_now_known:
        first, last = min(returns_now_known), max(returns_now_known)
        st.attention.append(f"{sum(returns_now_known.values()):,} quarantined return(s) in {len(returns_now_known)} "
                            "partition(s) now have their sale in the warehouse (its day was loaded after them): "
                            f"`clv materialize ingest --from {first} --to {last}` reloads them")
    if unvalidated:
        st.attention.append(f"{len(unvalidated)} partition(s) loaded since their last validation (a run stopped "
                            f"between its load and its checks), first {unvalidated[0]}: `clv materialize ingest --from "
                            f"{unvalidated[0]} --to {unvalidated[-1]}` loads and validates them again")
    if now_allowed:
        first, last = min(now_allowed), max(now_allowed)
        st.attention.append(f"{sum(now_allowed.values()):,} quarantined row(s) in {len(now_allowed)} partition(s) only "
                            "had channel/country/category values the vocabularies now allow: "
                            f"`clv materialize ingest --from {first} --to {last}` reloads them")
    if failing[0]:
        where = validation.name_days(failing_examples)
        orphans = [day for day, expectation, _ in failing_examples
                   if expectation.endswith("returns_match_known_sales_sql")]
        st.attention.append(f"{failing[0]} failing expectation result(s) in {failing[1]} partition(s): {where}"
                            f"{' ...' if failing[0] > len(failing_examples) else ''} (staging.validation_results; "
                            "`clv validate FILE` lists the file's quarantined rows)" + (
                                f"; a return failing returns_match_known_sales_sql on {orphans[0]} lost its sale "
                                "(the sale's day was loaded again without it): put the sale back in its day's file, "
                                f"or load the return's day again (`clv materialize ingest --from {orphans[0]} --to "
                                f"{orphans[-1]}`), which quarantines the return" if orphans else ""))
    return days


def _models(settings: Settings, st: Status) -> None:
    if not settings.mlflow_store_exists:
        st.models = {spec.name: {"registered": False} for spec in registry.MODELS.values()}
        if _published(settings):
            st.attention.append(f"no MLflow store at {settings.mlflow_db}, though a snapshot was scored with "
                                "registered models (deleted or moved?): restore it from a backup; else train and "
                                "promote anew (`clv materialize train`, `clv promote clv`, `clv promote segment`)")
        else:
            st.attention.append("no models yet: train (`make run` or `clv materialize train`)")
        return
    try:
        _registered_models(settings, st)
    except Exception as exc:  # noqa: BLE001 (a damaged or locked mlflow.db: say so, the rest of the status stands)
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        st.models = {spec.name: {"registered": False} for spec in registry.MODELS.values()}
        st.attention.append(f"the MLflow store {settings.mlflow_db} cannot be read ({first}): restore it from a "
                            "backup (scoring, training and promotion need it)")


def _registered_models(settings: Settings, st: Status) -> None:
    try:        # a moved data dir: MLflow's stored artifact paths follow it (else no model would load)
        registry.follow_moved_data_dir(registry.EXPERIMENT, settings.mlflow_artifact_root, settings.mlflow_uri)
    except registry.RegistryError as exc:
        st.attention.append(str(exc))
    for key, spec in registry.MODELS.items():      # key: what `clv promote` calls the model
        info = registry.status(spec.name, tracking_uri=settings.mlflow_uri)
        aliases = info.get("aliases", {})
        info["metric"] = spec.metric
        info["metrics"] = {alias: registry.version_metric(spec.name, v, spec.metric, settings.mlflow_uri)
                           for alias, v in aliases.items() if alias in (registry.PRODUCTION, registry.STAGING)}
        st.models[spec.name] = info
        staging, production = aliases.get(registry.STAGING), aliases.get(registry.PRODUCTION)
        # A staging version the gate has judged (refused, or rolled back) needs nobody: a note, not attention.
        if note := registry.staging_note(key, info):
            info["note"] = note
        if info.get("unlogged_move"):
            st.attention.append(f"{spec.name}: {info['unlogged_move']}")
        if info.get("registered") and production is None:
            st.attention.append(f"{spec.name} has no production version: `clv promote {key}`")
        elif staging and staging != production and not info.get("note"):
            st.attention.append(f"{spec.name} v{staging} waits in staging (promotion gate: `clv promote {key}`)")
    st.attention += registry.pairing_problems(settings.mlflow_uri)


def _snapshot(settings: Settings, st: Status, now: dt.datetime) -> None:
    try:
        snap = snapshot.SnapshotReader(settings.snapshot_root).get()
        snap.check_tables()
    except snapshot.SnapshotNotFoundError:
        st.snapshot = {"root": str(settings.snapshot_root), "published": False}
        st.attention.append("no serving snapshot yet: score (`clv materialize score`)")
        return
    except snapshot.SnapshotUnreadableError as exc:     # the API and dashboard answer "unavailable" meanwhile
        st.snapshot = {"root": str(settings.snapshot_root), "published": True, "unreadable": str(exc)}
        st.attention.append(f"the serving snapshot cannot be read: {exc}; {exc.REMEDY}")
        return
    counts = snap.manifest.get("row_counts", {})
    if counts.get("customer_scores") and "segment_history" in counts and not counts["segment_history"]:
        st.attention.append(f"the snapshot {snap.snapshot_id} has no segment history (a rebuilt warehouse?): "
                            "`clv materialize history`, then `clv materialize score`")
    published = snap.manifest.get("published_at")
    age = (now - dt.datetime.fromisoformat(published)).total_seconds() / 3600 if published else None
    st.snapshot = {"root": str(settings.snapshot_root), "published": True, "id": snap.snapshot_id,
                   "as_of": snap.as_of_date, "published_at": published, "age_hours": age,
                   "customers": snap.manifest.get("row_counts", {}).get("customer_scores"),
                   "model_versions": snap.model_versions,
                   # set back by `clv snapshot use`: a note, not attention (the next scoring serves a new one)
                   "newer_kept": [i for i in snapshot.list_snapshots(settings.snapshot_root) if i > snap.path.name]}
    psi = psi_metrics(snap.manifest.get("metrics"))
    st.snapshot["psi"] = psi
    moved = {k: v for k, v in psi.items() if v > PSI_LARGE}
    if moved:
        st.attention.append(f"scores moved since the previous scoring (PSI > {PSI_LARGE}): "
                            + ", ".join(f"{k} {v:.2f}" for k, v in moved.items()))
    keys = {spec.name: key for key, spec in registry.MODELS.items()}
    for name, version in snap.model_versions.items():
        production = st.models.get(name, {}).get("aliases", {}).get(registry.PRODUCTION)
        if production and str(version) != production:
            st.attention.append(f"the snapshot was scored with {name} v{version}, production is now v{production}: " + (
                f"it was served again by `clv snapshot use`: if v{production} was the cause, `clv rollback "
                f"{keys.get(name, name)}` first; a rescore (`clv materialize score`) publishes anew"
                if st.snapshot["newer_kept"] else "rescore (`clv materialize score`)"))

    if age is not None and age > 36:
        st.attention.append(f"the snapshot is {age:.0f} h old: is scoring running?")
