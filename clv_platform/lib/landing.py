"""Landing-folder bookkeeping: which daily files are there, and which are new or changed since last look."""

import base64
import hashlib
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from clv_platform.lib.schema import LANDING_FILE_RE


@dataclass(frozen=True)
class LandingFile:
    path: Path
    day: date
    fingerprint: str  # "<size>:<mtime_ns>"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# Written next to the demo's daily files by the generator (`clv generate`): not misnamed landing files.
DEMO_FILES = frozenset({"ground_truth.json", "ground_truth_customers.parquet"})


def landing_day(name: str) -> date | None:
    """The day of a landing file name (transactions_YYYY-MM-DD.csv|parquet, a real date), else None."""
    match = LANDING_FILE_RE.match(name)
    try:
        return date.fromisoformat(match.group(1)) if match else None
    except ValueError:
        return None


def list_landing_files(landing_dir: Path) -> list[LandingFile]:
    """Files named transactions_YYYY-MM-DD.csv|parquet, by date. Other names: see misnamed_files."""
    files = []
    if not landing_dir.is_dir():
        return files
    for path in sorted(landing_dir.iterdir()):
        day = landing_day(path.name)
        if day is None or not path.is_file():
            continue
        stat = path.stat()
        files.append(LandingFile(path, day, f"{stat.st_size}:{stat.st_mtime_ns}"))
    return files


def misnamed_files(landing_dir: Path) -> list[str]:
    """Names of the files in `landing_dir` that no partition will ever load: another pattern, an impossible
    date, another or upper-case extension. Hidden files, sub-directories and DEMO_FILES are not listed."""
    if not landing_dir.is_dir():
        return []
    return [path.name for path in sorted(landing_dir.iterdir())
            if not path.name.startswith(".") and path.name not in DEMO_FILES and not path.is_dir()
            and landing_day(path.name) is None]


def outside_partitions(files: list[LandingFile], first_day: date, today: date
                       ) -> tuple[list[LandingFile], list[LandingFile]]:
    """The files no daily partition loads: (dated before `first_day`, dated after `today`). The partitions run
    from CLV_PARTITIONS_START to the current UTC day (defs/partitions.py)."""
    return [f for f in files if f.day < first_day], [f for f in files if f.day > today]


def changed_since_loaded(files: list[LandingFile], loaded: Mapping[date, str]) -> list[LandingFile]:
    """The files of loaded days whose content differs from what was loaded (`loaded`: day -> sha256,
    raw.load_audit's)."""
    return [f for f in files if f.day in loaded and sha256_of(f.path) != loaded[f.day]]


def name_list(names: list[str], limit: int = 5) -> str:
    """`a, b, c, d, e and 3 more`: names for a one-line message."""
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


# The sensor's cursor, as compact as it can be: Dagster writes it into every tick (two a minute, kept for days), so
# at 137 bytes a file the instance grew by 160 MB a day at 400 files with nothing to load. Now: file name ->
# [12 hex of a hash of size:mtime, first 16 hex of the sha256], compressed: about 28 bytes a file.
CURSOR_PREFIX = "z1:"
SHA_CHARS = 16          # 64 bits: a changed file taken for its earlier content is a 1 in 1.8e19 chance


def _short(fingerprint: str) -> str:
    return hashlib.blake2b(fingerprint.encode(), digest_size=6).hexdigest()


def _read_cursor(cursor: str | None) -> dict[str, list[str]]:
    if not cursor:
        return {}
    if cursor.startswith(CURSOR_PREFIX):
        return json.loads(zlib.decompress(base64.b85decode(cursor.removeprefix(CURSOR_PREFIX))))
    # a cursor written before the compact form: plain JSON of name -> [fingerprint, sha256]
    return {name: [_short(fingerprint), sha[:SHA_CHARS]] for name, (fingerprint, sha) in json.loads(cursor).items()}


def _write_cursor(seen: Mapping[str, list[str]]) -> str:
    text = json.dumps(seen, sort_keys=True, separators=(",", ":"))
    return CURSOR_PREFIX + base64.b85encode(zlib.compress(text.encode(), 9)).decode()


def changed_files(
    landing_dir: Path, cursor: str | None, loaded: Callable[[], Mapping[date, str]] | None = None
) -> tuple[list[LandingFile], str]:
    """Files that are new or whose content changed since `cursor`, and the new cursor.

    The cursor holds each file's fingerprint (size, mtime) and content hash. A file is only re-hashed when its
    size or mtime moved, so a tick over years of history stays cheap; an identical re-delivery is not a change.
    `loaded` (day -> sha256 of the file the warehouse loaded) is asked once, and only when a file is new to the
    cursor or changed since: one whose content the warehouse already holds (loaded by `clv run` before the
    sensor ever looked, or by `clv materialize ingest --new` while the sensor was off) is not a change either.
    """
    seen = _read_cursor(cursor)
    in_warehouse: Mapping[date, str] | None = None
    changed = []
    for landing_file in list_landing_files(landing_dir):
        previous = seen.get(landing_file.path.name)
        fingerprint = _short(landing_file.fingerprint)
        if previous and previous[0] == fingerprint:
            continue
        digest = sha256_of(landing_file.path)
        if previous and previous[1] == digest[:SHA_CHARS]:
            new = False
        elif loaded is not None:
            if in_warehouse is None:
                in_warehouse = loaded()
            new = in_warehouse.get(landing_file.day) != digest
        else:
            new = True
        if new:
            changed.append(landing_file)
        seen[landing_file.path.name] = [fingerprint, digest[:SHA_CHARS]]
    return changed, _write_cursor(seen)


def forget(cursor: str, names: list[str]) -> str:
    """`cursor` (of changed_files) without the files `names`: they count as new again at the next look."""
    if not names:
        return cursor
    drop = set(names)
    return _write_cursor({name: value for name, value in _read_cursor(cursor).items() if name not in drop})


def contiguous_ranges(days: list[date]) -> list[tuple[date, date]]:
    """[d1, d2, d3, d7] -> [(d1, d3), (d7, d7)]: consecutive days become one ranged (single-run) backfill."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges
