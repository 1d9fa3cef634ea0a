"""Days an operator accepted despite their quarantined share (`clv accept-quarantine DAY --reason ...`).

A file with more than CLV_MAX_QUARANTINE_SHARE of its rows quarantined fails its day's blocking check, and
nothing downstream (features, training, scoring) uses a day that failed: one bad late file stops all scoring.
Raising the share for every day is the wrong tool when one day is understood (a known bad export of that
day). An acceptance lets that day's check pass: its quarantined rows stay quarantined, with their reasons, and
its other rows are used. It holds for the file content loaded when it was given (its sha256) only, so a new
delivery of the day is checked afresh. Acceptances are kept in `<data dir>/accepted_quarantine.json`, a file
a person can read and review (who accepted what, when, why); the warehouse keeps Dagster as its only writer.
"""

import json
import os
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

FILE_NAME = "accepted_quarantine.json"


class AcceptanceFileError(ValueError):
    """The acceptances file cannot be read; the message names it."""


def path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def load(data_dir: Path) -> list[dict]:
    """Every acceptance, oldest first ([] when none was given)."""
    file = path(data_dir)
    if not file.exists():
        return []
    try:
        entries = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(entries, list) or not all({"partition_date", "sha256"} <= set(e) for e in entries):
            raise ValueError("expected a list of acceptances, each with partition_date and sha256")
    except (OSError, ValueError) as exc:
        raise AcceptanceFileError(f"{file}: unreadable ({exc}); fix or delete it (the days it accepted then fail "
                                  "their quarantine-share check again)") from None
    return entries


def accepted(data_dir: Path) -> set[tuple[str, str]]:
    """(day, sha256 of the file) pairs whose quarantined share was accepted."""
    return {(str(e["partition_date"]), str(e["sha256"])) for e in load(data_dir)}


def accept(data_dir: Path, day: date, sha256: str, source_file: str, rows_read: int, rows_rejected: int,
           reason: str, now: datetime | None = None) -> dict:
    """Record the acceptance of `day`'s file `sha256` (replacing an earlier one of the same day and file)."""
    if not reason.strip():
        raise ValueError("give a reason: it is kept with the acceptance, for whoever reads it later")
    entry = {"partition_date": str(day), "sha256": sha256, "source_file": Path(source_file).name,
             "rows_read": int(rows_read), "rows_rejected": int(rows_rejected), "reason": reason.strip(),
             "accepted_at": (now or datetime.now(UTC)).isoformat(timespec="seconds")}
    entries = [e for e in load(data_dir) if (e["partition_date"], e["sha256"]) != (str(day), sha256)] + [entry]
    file = path(data_dir)
    fd, tmp = tempfile.mkstemp(prefix=".accepted-", dir=file.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(entries, out, indent=2)
        out.write("\n")
    os.replace(tmp, file)
    return entry
