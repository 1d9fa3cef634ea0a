"""The serving snapshot: Parquet tables + manifest.json, published into a new folder and swapped in atomically.

Layout under ``root`` (``get_settings().snapshot_root``)::

    root/current                 -> symlink "snapshots/<id>" (relative), replaced with os.replace (atomic)
    root/snapshots/<id>/         manifest.json + <table>.parquet, never modified after the swap

Readers (API, dashboard) resolve ``current`` once per read and take every file from that one folder, so they
see either the old or the new snapshot in full, never a mix. Only the last ``keep`` snapshots are kept.
``follow`` lets a long-running reader read each new snapshot ahead of its first request.
"""

import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clv_platform.lib.segment_names import FIRST_SEEN, FIRST_SEEN_BEFORE

MANIFEST = "manifest.json"
CURRENT = "current"
SNAPSHOTS = "snapshots"
DEFAULT_KEEP = 5
STALE_TMP_SECONDS = 3600
FOLLOW_SECONDS = 5.0  # how often `follow` looks for a new snapshot (CLV_SNAPSHOT_POLL_SECONDS overrides)
log = logging.getLogger(__name__)

# Tables the serving contract promises (docs/architecture.md). publish() accepts others too.
CONTRACT_TABLES = (
    "customer_scores",
    "segment_summary",
    "segment_migration",
    "model_metrics",
    "data_quality",
    "segment_history",
)


class SnapshotNotFoundError(FileNotFoundError):
    """No snapshot has been published under this root yet (or the pointer is broken)."""


class SnapshotUnreadableError(RuntimeError):
    """The current snapshot is there but a file of it is missing or damaged: publish a new one. The message names
    the snapshot and table, never a server path (the API shows it)."""

    REMEDY = "publish a new snapshot (`clv materialize score`)"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def new_snapshot_id(now: datetime | None = None) -> str:
    """Sortable, unique: UTC timestamp with microseconds + a short random suffix."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"


def publish(
    root: str | Path,
    tables: Mapping[str, pd.DataFrame],
    manifest: Mapping[str, Any],
    keep: int = DEFAULT_KEEP,
) -> Path:
    """Write ``tables`` and a manifest into a new snapshot folder, swap ``root/current`` to it, prune old ones.

    The manifest gets ``snapshot_id``, ``published_at``, ``row_counts`` and ``tables`` filled in (values given
    by the caller for ``as_of_date``, ``model_versions``, ``metrics``, ... are kept). Returns the new folder.
    """
    if keep < 1:
        raise ValueError("keep must be >= 1")
    for name in tables:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"bad table name {name!r}")
    root = Path(root).resolve()
    snapshots = root / SNAPSHOTS
    snapshots.mkdir(parents=True, exist_ok=True)

    published_at = datetime.now(UTC)
    snapshot_id = new_snapshot_id(published_at)
    staging_dir = snapshots / f".tmp-{snapshot_id}"
    staging_dir.mkdir()
    try:
        for name, df in tables.items():
            df.to_parquet(staging_dir / f"{name}.parquet", index=False)
        full_manifest = dict(manifest)
        full_manifest.update(
            snapshot_id=snapshot_id,
            published_at=published_at.isoformat(),
            row_counts={name: int(len(df)) for name, df in tables.items()},
            tables=sorted(tables),
        )
        full_manifest.setdefault("as_of_date", None)
        full_manifest.setdefault("model_versions", {})
        full_manifest.setdefault("metrics", {})
        manifest_tmp = staging_dir / f".{MANIFEST}.tmp"
        manifest_tmp.write_text(json.dumps(full_manifest, indent=2, sort_keys=True, default=_json_default))
        os.replace(manifest_tmp, staging_dir / MANIFEST)
        _fsync_dir(staging_dir)
        final_dir = snapshots / snapshot_id
        os.rename(staging_dir, final_dir)
    except BaseException:
        shutil.rmtree(staging_dir, ignore_errors=True)
        raise
    _fsync_dir(snapshots)
    _point_current_at(root, snapshot_id)
    prune(root, keep=keep)
    return final_dir


def _point_current_at(root: Path, snapshot_id: str) -> None:
    """Atomic pointer swap: a fresh symlink under a temporary name, renamed over `current`."""
    pointer_tmp = root / f".{CURRENT}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    os.symlink(Path(SNAPSHOTS) / snapshot_id, pointer_tmp)
    try:
        os.replace(pointer_tmp, root / CURRENT)
    except BaseException:
        pointer_tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(root)


def use(root: str | Path, snapshot_id: str) -> "Snapshot":
    """Serve the kept snapshot ``snapshot_id`` again (`clv snapshot use`): after a scoring that should not have
    been published, readers go back to an earlier one without a rescore. Checked whole before the swap (a
    damaged one raises SnapshotUnreadableError, an unknown id SnapshotNotFoundError listing the kept ones).
    The next publish moves the pointer on as usual."""
    root = Path(root).resolve()
    kept = list_snapshots(root)
    if snapshot_id not in kept:
        raise SnapshotNotFoundError(f"no kept snapshot {snapshot_id!r} under {root} (kept, oldest first: "
                                    f"{', '.join(kept) or 'none'})")
    chosen = read_snapshot(root / SNAPSHOTS / snapshot_id)
    chosen.check_tables()
    _point_current_at(root, snapshot_id)
    return chosen


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def list_snapshots(root: str | Path) -> list[str]:
    """Ids of the complete snapshots under root, oldest first."""
    snapshots = Path(root) / SNAPSHOTS
    if not snapshots.is_dir():
        return []
    return sorted(p.name for p in snapshots.iterdir() if p.is_dir() and not p.name.startswith("."))


def current_snapshot_dir(root: str | Path) -> Path:
    """The folder ``root/current`` points to (resolved once). Raises SnapshotNotFoundError if there is none."""
    root = Path(root)
    pointer = root / CURRENT
    try:
        target = os.readlink(pointer)
    except FileNotFoundError:
        raise SnapshotNotFoundError(
            f"no serving snapshot published yet under {root} (expected the pointer {pointer}); "
            "materialise serving/customer_scores (scoring_job, or `clv run`) first"
        ) from None
    except OSError as exc:  # not a symlink
        raise SnapshotNotFoundError(f"{pointer} is not a snapshot pointer: {exc}") from None
    path = Path(target)
    return path if path.is_absolute() else root / path


def current_snapshot_id(root: str | Path) -> str | None:
    """The id of the snapshot `current` points to; None when none was published (or the pointer is broken)."""
    try:
        return current_snapshot_dir(root).name
    except SnapshotNotFoundError:
        return None


def follow(root: str | Path, on_change: Callable[[], object], stop: threading.Event | None = None,
           poll_seconds: float | None = None) -> None:
    """Call `on_change()` for the current snapshot, then again each time `current` points at another one, until
    `stop` is set. The API's workers and the dashboard run it in a background thread with their warm-up, so the
    first request or page after a publish does not wait for the new snapshot to be read (seconds at a million
    customers). One readlink per `poll_seconds` (FOLLOW_SECONDS, or CLV_SNAPSHOT_POLL_SECONDS; 0 = only the
    snapshot current at the start). An error in `on_change` is logged; the requests then meet it themselves."""
    if poll_seconds is None:
        try:
            poll_seconds = float(os.environ.get("CLV_SNAPSHOT_POLL_SECONDS", FOLLOW_SECONDS))
        except ValueError:
            log.warning("CLV_SNAPSHOT_POLL_SECONDS=%r is not a number of seconds: using %s",
                        os.environ["CLV_SNAPSHOT_POLL_SECONDS"], FOLLOW_SECONDS)
            poll_seconds = FOLLOW_SECONDS
    stop = stop or threading.Event()
    seen = None
    while not stop.is_set():
        snapshot_id = current_snapshot_id(root)
        if snapshot_id is not None and snapshot_id != seen:
            seen = snapshot_id
            started = time.perf_counter()
            try:
                on_change()
            except Exception:
                log.warning("reading snapshot %s ahead of the requests failed", snapshot_id, exc_info=True)
            else:
                log.info("snapshot %s read ahead of the requests in %.1f s", snapshot_id, time.perf_counter() - started)
        if poll_seconds <= 0 or stop.wait(poll_seconds):
            return


def prune(root: str | Path, keep: int = DEFAULT_KEEP) -> list[str]:
    """Delete all but the newest ``keep`` snapshots (never the current one) and stale temp folders."""
    root = Path(root)
    current = current_snapshot_id(root)
    ids = list_snapshots(root)
    doomed = [i for i in ids[: max(len(ids) - keep, 0)] if i != current]
    for snapshot_id in doomed:
        shutil.rmtree(root / SNAPSHOTS / snapshot_id, ignore_errors=True)
    # Leftovers of publishes that crashed (an hour old: a concurrent publish may be writing a fresh one).
    cutoff = time.time() - STALE_TMP_SECONDS
    for pattern, base in ((".tmp-*", root / SNAPSHOTS), (f".{CURRENT}.tmp-*", root)):
        for leftover in base.glob(pattern):
            try:
                if leftover.lstat().st_mtime < cutoff:
                    if leftover.is_symlink() or leftover.is_file():
                        leftover.unlink()
                    else:
                        shutil.rmtree(leftover, ignore_errors=True)
            except FileNotFoundError:
                pass
    return doomed


@dataclass
class Snapshot:
    """One published snapshot: its folder, manifest and (lazily read, cached) tables."""

    path: Path
    manifest: dict
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def snapshot_id(self) -> str:
        return self.manifest["snapshot_id"]

    @property
    def as_of_date(self) -> str | None:
        return self.manifest.get("as_of_date")

    @property
    def model_versions(self) -> dict:
        return self.manifest.get("model_versions", {})

    @property
    def table_names(self) -> list[str]:
        return list(self.manifest.get("tables", []))

    def _read(self, name: str, reader):
        if name not in self.table_names:
            raise KeyError(f"snapshot {self.snapshot_id} has no table {name!r} (has {self.table_names})")
        try:
            return reader(self.path / f"{name}.parquet")
        except FileNotFoundError:
            if self.path.is_dir():      # the snapshot is there, its table is not
                raise SnapshotUnreadableError(f"snapshot {self.snapshot_id} lacks its table {name!r}") from None
            raise SnapshotNotFoundError(f"snapshot {self.snapshot_id} was pruned before table {name!r} was read") from None
        except (OSError, pa.ArrowException) as exc:
            raise SnapshotUnreadableError(f"snapshot {self.snapshot_id}: table {name!r} is damaged "
                                          f"({type(exc).__name__})") from None

    def check_tables(self) -> None:
        """SnapshotUnreadableError naming the manifest's tables whose file is missing or cut short (its Parquet
        footer unreadable): a snapshot damaged after it was published. Reads only the footers."""
        damaged = []
        for name in self.table_names:
            try:
                pq.read_metadata(self.path / f"{name}.parquet")
            except (OSError, pa.ArrowException):
                damaged.append(name)
        if damaged:
            raise SnapshotUnreadableError(f"snapshot {self.snapshot_id}: table(s) {', '.join(damaged)} missing or "
                                          "damaged")

    def table(self, name: str) -> pd.DataFrame:
        """The table ``name`` of this snapshot (read once, then cached). KeyError if it is not in it."""
        with self._lock:
            if name not in self._tables:
                self._tables[name] = _current_names(name, self._read(name, pd.read_parquet))
            return self._tables[name]

    def arrow_table(self, name: str) -> pa.Table:
        """The table ``name`` as Arrow, read anew (not cached): for a reader that keeps its own compact form."""
        return self._read(name, pq.read_table)

    def load(self, names: Iterable[str] | None = None) -> "Snapshot":
        for name in self.table_names if names is None else names:
            self.table(name)
        return self


def _current_names(name: str, table: pd.DataFrame) -> pd.DataFrame:
    """A snapshot published by an earlier version, in today's words: the migration's "(new)" row is now
    "(first seen)" (served by the API and the dashboard alike)."""
    if name == "segment_migration" and "from_segment" in table and (table["from_segment"] == FIRST_SEEN_BEFORE).any():
        table = table.assign(from_segment=table["from_segment"].replace(FIRST_SEEN_BEFORE, FIRST_SEEN))
    return table


def read_snapshot(path: str | Path, preload: Iterable[str] | None = ()) -> Snapshot:
    """Open the snapshot in folder ``path`` and read the ``preload`` tables now (None = all)."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise SnapshotNotFoundError(f"{path} holds no {MANIFEST}") from None
    except (ValueError, OSError) as exc:        # (JSONDecodeError and UnicodeDecodeError are ValueErrors)
        raise SnapshotUnreadableError(f"snapshot {path.name}: {MANIFEST} is damaged ({type(exc).__name__})") from None
    snapshot = Snapshot(path=path, manifest=manifest)
    names = None if preload is None else [n for n in preload if n in snapshot.table_names]
    return snapshot.load(names)


class SnapshotReader:
    """Reads the current snapshot under ``root``; cached, reloaded only when the pointer moves to a new one.

    Nothing is opened by the constructor (safe to build before a fork). ``get()`` resolves ``root/current``
    once (one readlink), returns the cached Snapshot if it is the same, else reads the new manifest and the
    ``preload`` tables (default: customer_scores) and caches that.
    """

    def __init__(self, root: str | Path, preload: Iterable[str] | None = ("customer_scores",)):
        self.root = Path(root)
        self.preload = None if preload is None else tuple(preload)
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self.reloads = 0

    def get(self) -> Snapshot:
        for _attempt in range(3):
            path = current_snapshot_dir(self.root)
            cached = self._snapshot
            if cached is not None and cached.path == path:
                return cached
            with self._lock:
                cached = self._snapshot
                if cached is not None and cached.path == path:
                    return cached
                try:
                    snapshot = read_snapshot(path, preload=self.preload)
                except SnapshotNotFoundError:
                    continue  # pruned between readlink and read: resolve the pointer again
                self._snapshot = snapshot
                self.reloads += 1
                return snapshot
        if not (path := current_snapshot_dir(self.root)).is_dir():    # the pointer names a folder deleted by hand
            raise SnapshotUnreadableError(f"the current snapshot {path.name} is gone")
        raise SnapshotNotFoundError(f"could not read the current snapshot under {self.root}")

    def manifest(self) -> dict:
        return self.get().manifest

    def table(self, name: str) -> pd.DataFrame:
        return self.get().table(name)
