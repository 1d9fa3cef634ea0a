"""A history export (one CSV or Parquet file of many days, with the landing columns) split into daily landing
files, so a team's past goes through the same path as its daily files: ingestion, row rules, quarantine, GX.

Each row goes to the file of its order_ts day (`transactions_YYYY-MM-DD.csv`, or `.parquet` for a Parquet
export), in export order; days between the first and the last with no row get an empty file, so every
partition of the range loads. A row without a readable day, or dated after today (a mistyped year would
otherwise make a file for every day up to it), is not given a file: it goes to
`<out>/import_rejects/<export>.unassigned.csv` with its line number and the reason (the loader's codes), so
rows read = rows written + rows unassigned.

An export is taken as a shop's tools write it, where that is unambiguous: column names in any case and order
(other columns are ignored and named), order_ts with a space for the T, a fraction of a second, no seconds or
a date alone (midnight) written as YYYY-MM-DDTHH:MM:SS, and a unit_price with more than 6 decimals (a line total divided by
the quantity) rounded to 6. Nothing else is changed or judged here: the loader's rules do that. But the rows
whose order_ts or unit_price the loader will quarantine are counted, with examples and the likely fix (a time
zone offset, a decimal comma, a currency sign...), and so are the days where they would exceed the quarantine
share that fails a day's blocking check: the import warns before a long load would fail.
"""

import csv
import gzip
import os
import re
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
    csv_row_lines,
    duckdb_problem,
    header_problem,
    parquet_type_problem,
)
from clv_platform.lib.landing import landing_day
from clv_platform.lib.schema import LANDING_COLUMNS
from clv_platform.lib.settings import get_settings
from clv_platform.lib.validation import share_too_high

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
    ignored_columns: list[str] = field(default_factory=list)   # the export's columns that are not landing ones
    rewritten: dict[str, int] = field(default_factory=dict)    # {what was rewritten: rows}
    warnings: list[str] = field(default_factory=list)           # rows the loader will quarantine, and why


# The forms the loader reads (sql/ingest_row_rules.sql: bad_timestamp, bad_unit_price), to warn before a load
CANONICAL_TS = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
LOADER_PRICE = "-?[0-9]{1,12}([.][0-9]{1,6})?"


def _ts_text(col: str) -> str:
    """SQL: a text order_ts written as YYYY-MM-DDTHH:MM:SS where its form is unambiguous (a space for the T, a
    fraction of a second dropped, no seconds, a date alone at midnight); anything else as it was."""
    t = f"trim(CAST({col} AS VARCHAR))"
    return (f"CASE WHEN regexp_full_match({t}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[T ][0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}"
            f"([.][0-9]{{1,9}})?') THEN left({t}, 10) || 'T' || substr({t}, 12, 8) "
            f"WHEN regexp_full_match({t}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[T ][0-9]{{2}}:[0-9]{{2}}') "
            f"THEN left({t}, 10) || 'T' || substr({t}, 12, 5) || ':00' "
            f"WHEN regexp_full_match({t}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') THEN {t} || 'T00:00:00' "
            f"ELSE CAST({col} AS VARCHAR) END")


def _price(col: str, typ: str) -> str:
    """SQL: unit_price with more than 6 decimals (a line total divided by the quantity) rounded to 6, the
    loader's limit; anything else as it was."""
    if typ in ("DOUBLE", "FLOAT"):          # (the loader takes a float within 1e-9 of a 6-decimal number)
        return f"CASE WHEN abs({col} - round({col}, 6)) > 1e-9 * greatest(1, abs({col})) THEN round({col}, 6) ELSE {col} END"
    if typ != "VARCHAR":
        return col
    t = f"trim({col})"
    return (f"CASE WHEN regexp_full_match({t}, '-?[0-9]{{1,12}}[.][0-9]{{7,30}}') "
            f"THEN CAST(CAST(CAST({t} AS DECIMAL(38, 18)) AS DECIMAL(18, 6)) AS VARCHAR) ELSE {col} END")


def _landing_names(source: Path, names: list[str], first: str | None) -> tuple[dict[str, str], list[str]]:
    """({landing column: the export's column}, the export's other columns): names matched without case and
    spaces around them; the other columns are ignored. Refuses an export without every landing column."""
    by_name: dict[str, list[str]] = {}
    for name in names:
        by_name.setdefault(name.strip().lower(), []).append(name)
    if twice := [c for c in LANDING_COLUMNS if len(by_name.get(c, [])) > 1]:
        raise HistoryImportError(f"{source}: column(s) {', '.join(' and '.join(map(repr, by_name[c])) for c in twice)} "
                                 "name the same landing column (names are compared without case); nothing written")
    if missing := [c for c in LANDING_COLUMNS if c not in by_name]:
        problem = header_problem(first) if first is not None else None
        if problem is None or not problem.startswith(("wrong delimiter", "missing header")):
            problem = (f"missing column(s) {', '.join(missing)}; the export's columns are {', '.join(map(repr, names[:15]))}"
                       f"{' ...' if len(names) > 15 else ''} (names are compared without case; other columns are "
                       f"ignored; expected {', '.join(LANDING_COLUMNS)})")
            if not set(by_name) & set(LANDING_COLUMNS):
                problem += ("; none of them is a landing column: the first line must be the header, with the landing "
                            "column names (there is no column mapping: rename the export's columns)")
        raise HistoryImportError(f"{source}: {problem}; nothing written")
    mapping = {c: by_name[c][0] for c in LANDING_COLUMNS}
    return mapping, [n for n in names if n not in mapping.values()]


def _read(con: duckdb.DuckDBPyConnection, source: Path, today: date) -> tuple[str, int, list[str]]:
    """Temp table _export (rowid = export order) with the landing columns (order_ts and unit_price rewritten
    where unambiguous: module doc), `day` (NULL when unreadable or after `today`), `future`, `ts_rewritten`,
    `price_rewritten` and `ts_text` (order_ts is text the loader parses); returns (output format, first line,
    the export's ignored columns)."""
    name = source.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        header, first = _csv_header(source)
        columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))    # (names may clash in case)
        reader = (f"read_csv({warehouse.sql_text(str(source))}, header = true, auto_detect = false, "
                  f"columns = {{{columns}}}, delim = ',', quote = '\"', escape = '\"', strict_mode = true, "
                  f"max_line_size = {MAX_LINE_BYTES})")
        fmt, first_line = "csv", 2        # the header is line 1
    elif name.endswith(".parquet"):
        reader, first = f"read_parquet({warehouse.sql_text(str(source))})", None
        fmt, first_line = "parquet", 1
    else:
        raise HistoryImportError(f"{source}: not a .csv, .csv.gz or .parquet file")
    try:
        types = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
    except duckdb.Error as exc:
        raise HistoryImportError(f"{source}: unreadable ({duckdb_problem(exc)})") from None
    names = header if fmt == "csv" else list(types)
    mapping, ignored = _landing_names(source, names, first)
    column = {c: list(types)[names.index(mapping[c])] for c in LANDING_COLUMNS}    # the reader's name of each
    types = {c: types[column[c]] for c in LANDING_COLUMNS}
    if fmt == "parquet":    # the daily files keep the export's types: refuse what the loader would refuse
        for c in LANDING_COLUMNS:
            if c == "order_ts" and types[c] == "DATE":
                continue      # written as a timestamp at midnight
            if type_problem := parquet_type_problem(c, types[c]):
                raise HistoryImportError(f"{source}: {type_problem}; nothing written")
    source_col = {c: '"' + column[c].replace('"', '""') + '"' for c in LANDING_COLUMNS}   # any name, quoted
    ts_type = types["order_ts"]
    ts_text = not (ts_type.startswith("TIMESTAMP") or ts_type == "DATE")
    ts = (_ts_text(source_col["order_ts"]) if ts_text
          else f"CAST({source_col['order_ts']} AS TIMESTAMP)" if ts_type == "DATE" else source_col["order_ts"])
    price = _price(source_col["unit_price"], types["unit_price"])
    exprs = {**source_col, "order_ts": ts, "unit_price": price}
    if ts_text:  # the day is the first 10 characters, YYYY-MM-DD
        day = ("CASE WHEN regexp_matches(order_ts, '^\\d{4}-\\d{2}-\\d{2}') "
               "THEN TRY_CAST(left(order_ts, 10) AS DATE) END")
    else:
        day = "CAST(order_ts AS DATE)"
    ts_changed = (f"{ts} IS DISTINCT FROM CAST({source_col['order_ts']} AS VARCHAR)" if ts_text
                  else "true" if ts_type == "DATE" else "false")
    price_changed = f"{price} IS DISTINCT FROM {source_col['unit_price']}"
    select = ", ".join(f"{e} AS {c}" for c, e in exprs.items())
    try:
        con.execute(f"CREATE TEMP TABLE _export AS SELECT * EXCLUDE (d), CASE WHEN d <= $today THEN d END AS day, "
                    f"coalesce(d > $today, false) AS future, {ts_text} AS ts_text FROM (SELECT *, {day} AS d FROM "
                    f"(SELECT {select}, {ts_changed} AS ts_rewritten, {price_changed} AS price_rewritten "
                    f"FROM {reader}))", {"today": today})
    except duckdb.Error as exc:
        if fmt == "csv":          # name the line when the loader's own line check finds it
            _row_lines_or_refuse(source, None, len(types) + len(ignored))
        raise HistoryImportError(f"{source}: unreadable ({duckdb_problem(exc)})") from None
    return fmt, first_line, ignored


def _csv_header(source: Path) -> tuple[list[str], str]:
    """The export's columns from its first line, and that line (the landing columns are matched by
    `_landing_names`: any order and case, other columns ignored)."""
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
    if not first.strip():
        raise HistoryImportError(f"{source}: {header_problem(first)}; nothing written")
    return next(csv.reader([first])), first


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


def _rewritten(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    ts, price = con.execute("SELECT count(*) FILTER (WHERE ts_rewritten), count(*) FILTER (WHERE price_rewritten) "
                            "FROM _export WHERE day IS NOT NULL").fetchone()
    return {k: v for k, v in {"order_ts as YYYY-MM-DDTHH:MM:SS": ts, "unit_price rounded to 6 decimals": price}.items()
            if v}


# What a value the loader will quarantine most likely is, and the fix: (regular expression, what to say)
_TS_HINTS = [(".*([+-][0-9]{2}:?[0-9]{2}|Z)", "a time zone offset: write the shop's local time without it")]
_PRICE_HINTS = [
    ("-?[0-9]+,[0-9]+", "a decimal comma: write a point (12.50)"),
    ("-?[0-9]{1,3}(,[0-9]{3})+([.][0-9]+)?", "thousands separators: write the number without them"),
    (".*([$€£¥]|[A-Za-z]{3}).*", "a currency sign or code: write the number alone"),
]


def _loader_warnings(con: duckdb.DuckDBPyConnection, rows_with_lines: str, max_share: float | None) -> list[str]:
    """What the loader will quarantine among the written rows' order_ts and unit_price text (bad_timestamp,
    bad_unit_price: the loader's own forms), with up to three examples each and the likely fix, and the days on
    which those rows alone exceed the quarantine share that fails the day's blocking check."""
    if max_share is None:
        max_share = get_settings().max_quarantine_share
    bad_ts = f"ts_text AND NOT regexp_full_match(CAST(order_ts AS VARCHAR), '{CANONICAL_TS}')"
    bad_price = (f"typeof(unit_price) = 'VARCHAR' AND trim(CAST(unit_price AS VARCHAR)) <> '' "
                 f"AND NOT regexp_full_match(CAST(unit_price AS VARCHAR), '{LOADER_PRICE}')")
    out = []
    for column, bad, code, hints, expected in [
        ("order_ts", bad_ts, "bad_timestamp", _TS_HINTS, "YYYY-MM-DDTHH:MM:SS"),
        ("unit_price", bad_price, "bad_unit_price", _PRICE_HINTS, "a number with a point and at most 6 decimals"),
    ]:
        rows = con.execute(f"SELECT source_line, CAST({column} AS VARCHAR) FROM ({rows_with_lines}) "
                           f"WHERE day IS NOT NULL AND {bad} ORDER BY source_line").fetchall()
        if not rows:
            continue
        values = [v for _, v in rows]
        why = next((say for pattern, say in hints
                    if sum(bool(re.fullmatch(pattern, v.strip())) for v in values) > len(values) / 2),
                   f"expected {expected}")
        examples = "; ".join(f"line {line}: {value!r}" for line, value in rows[:3])
        out.append(f"{len(rows):,} row(s) whose {column} the loader will quarantine ({code}), most likely "
                   f"{why} ({examples}{' ...' if len(rows) > 3 else ''})")
    if out:
        days = [day for day, n, bad in con.execute(
            f"SELECT day, count(*), count(*) FILTER (WHERE ({bad_ts}) OR ({bad_price})) FROM _export "
            "WHERE day IS NOT NULL GROUP BY day ORDER BY day").fetchall() if share_too_high(n, bad, max_share)]
        if days:
            out.append(
                f"on {len(days):,} day(s) ({', '.join(map(str, days[:3]))}{' ...' if len(days) > 3 else ''}) "
                f"these rows alone are more than {max_share:.0%} of the day's rows (CLV_MAX_QUARANTINE_SHARE): each "
                "of those days fails its blocking check and nothing downstream uses it. Fix the export and import "
                "it again with --replace, or raise CLV_MAX_QUARANTINE_SHARE if quarantining them is what you want")
    return out


def import_history(source: str | Path, out_dir: str | Path, replace: bool = False,
                   today: date | None = None, max_quarantine_share: float | None = None) -> HistoryImportSummary:
    """Split `source` into daily landing files in `out_dir` (see the module doc). Refuses (nothing written)
    when a day's file already exists, unless `replace`. Rows dated after `today` (default: the UTC date) are
    unassigned. `max_quarantine_share` (default: the setting) is the share the warnings compare days with."""
    started = time.perf_counter()
    today = today or datetime.now(UTC).date()
    source, out_dir = Path(source), Path(out_dir)
    if not source.is_file():
        raise HistoryImportError(f"{source}: no such file")
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        fmt, first_line, ignored = _read(con, source, today)
        rows_read, unassigned, start, end = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE day IS NULL), min(day), max(day) FROM _export").fetchall()[0]
        rows_with_lines = f"SELECT *, rowid + {first_line} AS source_line FROM _export"
        if fmt == "csv" and _register_row_lines(con, source, rows_read, len(LANDING_COLUMNS) + len(ignored)):
            rows_with_lines = "SELECT e.*, r.source_line FROM _export AS e JOIN _row_lines AS r ON r.row = e.rowid"
        _refuse_long_gap(con, source, rows_with_lines)
        rewritten, warnings = _rewritten(con), _loader_warnings(con, rows_with_lines, max_quarantine_share)
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
        replaced_dir=replaced_dir, ignored_columns=ignored, rewritten=rewritten, warnings=warnings,
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


def _row_lines_or_refuse(source: Path, rows: int | None, fields: int):
    """csv_row_lines of the export (None, or each row's line); a malformed line refuses the export, naming it."""
    try:
        data = gzip.decompress(source.read_bytes()) if source.name.lower().endswith(".gz") else source.read_bytes()
        return csv_row_lines(source, data.removeprefix(b"\xef\xbb\xbf"), rows, fields)
    except LandingFileError as exc:
        raise HistoryImportError(f"{exc}; nothing written") from None


def _register_row_lines(con: duckdb.DuckDBPyConnection, source: Path, rows: int, fields: int) -> bool:
    """Check the export's lines as the loader checks a landing file's (a row with more fields than the
    header fails, naming its line) and, when blank lines or quoted line breaks shift rows against lines,
    register `_row_lines` (`row`: the row's index in export order, `source_line`: its line). True if registered."""
    lines = _row_lines_or_refuse(source, rows, fields)
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
