"""A history export (one CSV or Parquet file of many days, with the landing columns) split into daily landing
files, so a team's past goes through the same path as its daily files: ingestion, row rules, quarantine, GX.

Each row goes to the file of its order_ts day (`transactions_YYYY-MM-DD.csv`, or `.parquet` for a Parquet
export), in export order; days between the first and the last with no row get an empty file, so every
partition of the range loads. A row without a readable day, or dated after today (a mistyped year would
otherwise make a file for every day up to it), is not given a file: it goes to
`<out>/import_rejects/<export>.unassigned.csv` with its line number and the reason (the loader's codes), so
rows read = rows written + rows unassigned. Nothing else is judged here: the loader's rules do that.
"""

import csv
import gzip
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
from tqdm.auto import tqdm

from clv_platform.lib import warehouse
from clv_platform.lib.ingest import (
    MAX_LINE_BYTES,
    LandingFileError,
    carriage_return_problem,
    column_problems,
    csv_row_lines,
    duckdb_problem,
    header_problem,
    parquet_type_problem,
)
from clv_platform.lib.landing import landing_day
from clv_platform.lib.schema import LANDING_COLUMNS

REJECTS_DIR = "import_rejects"
REPLACED_DIR = "import_replaced"     # <out>/import_replaced/<time>/: the daily files an import with --replace replaced


class HistoryImportError(ValueError):
    """An export that cannot be split; the message names the file and the problem. Nothing was written."""


@dataclass
class HistoryImportSummary:
    source: Path
    out_dir: Path
    rows_read: int
    rows_written: int
    rows_unassigned: int
    files: int              # daily files written, empty days included
    empty_days: int
    start: date | None
    end: date | None
    unassigned_file: Path | None
    seconds: float
    # daily files --replace overwrote: {name: (rows before, rows now)}; the old files are kept in replaced_dir
    replaced: dict[str, tuple[int | None, int]] = field(default_factory=dict)
    replaced_dir: Path | None = None


def _read(con: duckdb.DuckDBPyConnection, source: Path, today: date) -> tuple[str, int]:
    """Temp table _export (rowid = export order) with `day` (NULL when unreadable or after `today`) and
    `future` columns; returns (output format, first line)."""
    name = source.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        header = _csv_header(source)
        columns = ", ".join(f"{warehouse.sql_text(c)}: 'VARCHAR'" for c in header)
        reader = (f"read_csv({warehouse.sql_text(str(source))}, header = true, auto_detect = false, "
                  f"columns = {{{columns}}}, delim = ',', quote = '\"', escape = '\"', strict_mode = true, "
                  f"max_line_size = {MAX_LINE_BYTES})")
        fmt, first_line = "csv", 2        # the header is line 1
    elif name.endswith(".parquet"):
        reader = f"read_parquet({warehouse.sql_text(str(source))})"
        fmt, first_line = "parquet", 1
    else:
        raise HistoryImportError(f"{source}: not a .csv, .csv.gz or .parquet file")
    try:
        columns = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
    except duckdb.Error as exc:
        raise HistoryImportError(f"{source}: unreadable ({duckdb_problem(exc)})") from None
    if fmt == "parquet":    # (a CSV's header is checked already) the daily files keep the export's types:
        if problems := column_problems(columns):        # refuse what the loader would refuse
            raise HistoryImportError(f"{source}: {'; '.join(problems)} (expected {', '.join(LANDING_COLUMNS)})")
        for column in LANDING_COLUMNS:
            if type_problem := parquet_type_problem(column, columns[column]):
                raise HistoryImportError(f"{source}: {type_problem}; nothing written")
    if columns["order_ts"].startswith("TIMESTAMP") or columns["order_ts"] == "DATE":
        day = "CAST(order_ts AS DATE)"
    else:  # text: the day is its first 10 characters, YYYY-MM-DD
        day = ("CASE WHEN regexp_matches(CAST(order_ts AS VARCHAR), '^\\d{4}-\\d{2}-\\d{2}') "
               "THEN TRY_CAST(left(CAST(order_ts AS VARCHAR), 10) AS DATE) END")
    try:
        con.execute(f"CREATE TEMP TABLE _export AS SELECT * EXCLUDE (d), CASE WHEN d <= $today THEN d END AS day, "
                    f"coalesce(d > $today, false) AS future FROM (SELECT {', '.join(LANDING_COLUMNS)}, {day} AS d "
                    f"FROM {reader})", {"today": today})
    except duckdb.Error as exc:
        if fmt == "csv":          # name the line when the loader's own line check finds it
            _row_lines_or_refuse(source, None)
        raise HistoryImportError(f"{source}: unreadable ({duckdb_problem(exc)})") from None
    return fmt, first_line


def _csv_header(source: Path) -> list[str]:
    """The export's columns from its first line, checked as the loader checks a landing file's header, except
    that any column order is taken (the daily files are written in the landing order)."""
    opener = gzip.open if source.name.lower().endswith(".gz") else open
    try:
        with opener(source, "rb") as f:
            line = f.readline(MAX_LINE_BYTES)
    except (OSError, EOFError) as exc:
        raise HistoryImportError(f"{source}: unreadable ({exc})") from None
    line = line.removeprefix(b"\xef\xbb\xbf")       # spreadsheet exports start with a BOM; the daily files won't
    if not line:
        raise HistoryImportError(f"{source}: empty file (0 bytes); an export needs the header line")
    if problem := carriage_return_problem(line.removesuffix(b"\n"), line.endswith(b"\n")):
        raise HistoryImportError(f"{source}: {problem}; nothing written")
    try:
        first = line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise HistoryImportError(f"{source}: bad encoding: byte 0x{line[exc.start]:02x} on line 1 is not valid "
                                 "UTF-8; nothing written") from None
    header = next(csv.reader([first]))
    if sorted(header) != sorted(LANDING_COLUMNS):
        raise HistoryImportError(f"{source}: {header_problem(first)}; nothing written")
    return header


MAX_GAP_DAYS = 366    # no row for longer than this between two rows of an export: a mistyped year, most likely


def _refuse_long_gap(con: duckdb.DuckDBPyConnection, source: Path, rows_with_lines: str) -> None:
    """Every day between an export's first and last rows gets a file (header-only without orders): one row dated
    1926 instead of 2026 would write 36,500 files. Refuse a gap of more than a year, naming the rows on its
    smaller side."""
    gap = con.execute(
        "SELECT day, next_day FROM (SELECT day, lead(day) OVER (ORDER BY day) AS next_day FROM (SELECT DISTINCT "
        "day FROM _export WHERE day IS NOT NULL)) WHERE next_day - day > ? ORDER BY next_day - day DESC LIMIT 1",
        [MAX_GAP_DAYS]).fetchall()
    if not gap:
        return
    before, after = gap[0]
    (n_before, n_after), = con.execute("SELECT count(*) FILTER (WHERE day <= ?), count(*) FILTER (WHERE day >= ?) "
                                       "FROM _export", [before, after]).fetchall()
    side = "day <= ?" if n_before <= n_after else "day >= ?"
    lines = [line for (line,) in con.execute(
        f"SELECT source_line FROM ({rows_with_lines}) WHERE {side} ORDER BY source_line LIMIT 3",
        [before if n_before <= n_after else after]).fetchall()]
    raise HistoryImportError(
        f"{source}: no row between {before} and {after} ({(after - before).days - 1:,} days), which would become "
        f"as many header-only daily files; {min(n_before, n_after):,} row(s) on one side of the gap (line(s) "
        f"{', '.join(map(str, lines))}{' ...' if min(n_before, n_after) > 3 else ''}): a mistyped year? Fix or "
        "remove them; nothing written")


def import_history(source: str | Path, out_dir: str | Path, replace: bool = False,
                   today: date | None = None) -> HistoryImportSummary:
    """Split `source` into daily landing files in `out_dir` (see the module doc). Refuses (nothing written)
    when a day's file already exists, unless `replace`. Rows dated after `today` (default: the UTC date) are
    unassigned."""
    started = time.perf_counter()
    today = today or datetime.now(UTC).date()
    source, out_dir = Path(source), Path(out_dir)
    if not source.is_file():
        raise HistoryImportError(f"{source}: no such file")
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        fmt, first_line = _read(con, source, today)
        rows_read, unassigned, start, end = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE day IS NULL), min(day), max(day) FROM _export").fetchall()[0]
        rows_with_lines = f"SELECT *, rowid + {first_line} AS source_line FROM _export"
        if fmt == "csv" and _register_row_lines(con, source, rows_read):
            rows_with_lines = "SELECT e.*, r.source_line FROM _export AS e JOIN _row_lines AS r ON r.row = e.rowid"
        _refuse_long_gap(con, source, rows_with_lines)
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)] if start else []
        existing = [p.name for d in days for p in (out_dir / f"transactions_{d}.csv",
                                                   out_dir / f"transactions_{d}.parquet") if p.exists()]
        if existing and not replace:
            raise HistoryImportError(
                f"{out_dir}: {len(existing)} daily file(s) of {start}..{end} exist already ({', '.join(existing[:3])}"
                f"{' ...' if len(existing) > 3 else ''}); nothing written (--replace overwrites them)")
        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=out_dir))  # same file system: renames are atomic
        replaced, replaced_dir = {}, None
        if existing:     # an export lacking rows of a day it replaces would lose them: keep the old files
            replaced_dir = out_dir / REPLACED_DIR / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            replaced_dir.mkdir(parents=True)
            rows_before = {name: _rows_in(con, out_dir / name) for name in existing}
        try:
            written = _write_days(con, staging, fmt)
            for name in existing:
                os.replace(out_dir / name, replaced_dir / name)
            for day in days:
                target = out_dir / f"transactions_{day}.{fmt}"
                if day in written:
                    os.replace(written[day], target)
                else:
                    _write_empty_day(con, target, fmt)
            if existing:
                rows_now = dict(con.execute("SELECT day, count(*) FROM _by_day GROUP BY day").fetchall())
                replaced = {name: (rows_before[name], rows_now.get(landing_day(name), 0)) for name in existing}
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        unassigned_file = out_dir / REJECTS_DIR / f"{source.name}.unassigned.csv"
        if not unassigned:          # an earlier import of this export set rows aside; this one placed them all
            unassigned_file.unlink(missing_ok=True)
            unassigned_file = None
        else:
            unassigned_file.parent.mkdir(exist_ok=True)
            con.execute(
                "COPY (SELECT source_line, CASE WHEN future THEN 'ts_in_future' "
                "WHEN order_ts IS NULL OR trim(CAST(order_ts AS VARCHAR)) = '' THEN 'missing_timestamp' "
                "ELSE 'bad_timestamp' END AS reason, "
                f"{', '.join(LANDING_COLUMNS)} FROM ({rows_with_lines}) WHERE day IS NULL ORDER BY source_line) "
                f"TO {warehouse.sql_text(str(unassigned_file))} (FORMAT csv, HEADER true)")
    finally:
        con.close()
    return HistoryImportSummary(
        source=source, out_dir=out_dir, rows_read=rows_read, rows_written=rows_read - unassigned,
        rows_unassigned=unassigned, files=len(days), empty_days=len(days) - len(written), start=start, end=end,
        unassigned_file=unassigned_file, seconds=time.perf_counter() - started, replaced=replaced,
        replaced_dir=replaced_dir,
    )


def _rows_in(con: duckdb.DuckDBPyConnection, path: Path) -> int | None:
    """Rows of a daily file about to be replaced (None when it cannot be read as one)."""
    try:
        if path.suffix == ".parquet":
            return con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [str(path)]).fetchall()[0][0]
        with path.open(newline="", encoding="utf-8") as f:
            return max(sum(1 for row in csv.reader(f) if row) - 1, 0)
    except (OSError, UnicodeDecodeError, csv.Error, duckdb.Error):
        return None


def _row_lines_or_refuse(source: Path, rows: int | None):
    """csv_row_lines of the export (None, or each row's line); a malformed line refuses the export, naming it."""
    try:
        data = gzip.decompress(source.read_bytes()) if source.name.lower().endswith(".gz") else source.read_bytes()
        return csv_row_lines(source, data.removeprefix(b"\xef\xbb\xbf"), rows)
    except LandingFileError as exc:
        raise HistoryImportError(f"{exc}; nothing written") from None


def _register_row_lines(con: duckdb.DuckDBPyConnection, source: Path, rows: int) -> bool:
    """Check the export's lines as the loader checks a landing file's (a row with more fields than the
    header fails, naming its line) and, when blank lines or quoted line breaks shift rows against lines,
    register `_row_lines` (`row`: the row's index in export order, `source_line`: its line). True if registered."""
    lines = _row_lines_or_refuse(source, rows)
    if lines is None:
        return False
    con.register("_row_lines", pd.DataFrame({"row": range(len(lines)), "source_line": lines}))
    return True


def _write_days(con: duckdb.DuckDBPyConnection, staging: Path, fmt: str) -> dict[date, Path]:
    """One file per day with rows, in export order; {day: file}. The rows are sorted by (day, export order)
    once, so each day's COPY reads only its own row groups. (DuckDB's PARTITION_BY write does not keep the
    order within a day.)"""
    con.execute("CREATE TEMP TABLE _by_day AS SELECT *, rowid AS seq FROM _export WHERE day IS NOT NULL "
                "ORDER BY day, seq")
    days = [d for (d,) in con.execute("SELECT DISTINCT day FROM _by_day ORDER BY day").fetchall()]
    out = {}
    for day in tqdm(days, desc="daily files", unit="day", disable=len(days) < 100, leave=False):
        target = staging / f"{day}.{fmt}"
        con.execute(
            f"COPY (SELECT {', '.join(LANDING_COLUMNS)} FROM _by_day WHERE day = DATE '{day}' ORDER BY seq) "
            f"TO {warehouse.sql_text(str(target))} (FORMAT {fmt}{', HEADER true' if fmt == 'csv' else ''})")
        out[day] = target
    return out


def _write_empty_day(con: duckdb.DuckDBPyConnection, target: Path, fmt: str) -> None:
    if fmt == "csv":
        target.write_text(",".join(LANDING_COLUMNS) + "\n")
    else:
        con.execute(f"COPY (SELECT {', '.join(LANDING_COLUMNS)} FROM _export WHERE false) "
                    f"TO {warehouse.sql_text(str(target))} (FORMAT parquet)")


__all__ = ["HistoryImportError", "HistoryImportSummary", "import_history", "REJECTS_DIR"]
