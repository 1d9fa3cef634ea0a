"""Load one day's landing file into the warehouse: raw text, quarantine, typed staging rows, audit row.

`load_partition(con, partition_date, landing_dir)` finds `transactions_<date>.csv|parquet`, checks the file as a
whole (a file-level problem raises `LandingFileError` and writes nothing), gives every row its reason codes
(lib/sql/ingest_row_rules.sql while DuckDB reads the file into one temp table, then the few codes of the rules
that compare rows, lib/sql/ingest_cross_row_rules.sql), then replaces the partition in raw.transactions,
raw.rejected_transactions, staging.transactions and raw.load_audit inside ONE transaction, all four written
from that temp table. Loading the same file twice changes no row.
`check_file(path)` runs the same checks without a warehouse (the `clv validate` command).
"""

import csv
import hashlib
import io
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from clv_platform.lib import landing, schema, warehouse
from clv_platform.lib.settings import get_settings

MAX_QUANTITY = 10_000          # |quantity| above this is implausible for one order line
MAX_UNIT_PRICE = 100_000       # unit price above this is implausible
MAX_ID_CHARS = 200             # the longest id the API takes
MAX_FILE_ROWS = 10_000_000     # one day's file; a Parquet file of a few KB can expand to any number of rows
MAX_FILE_BYTES = 2 << 30       # one day's file is read whole
_ONE_DAY = " of one day's file (several days in one file? `clv import-history` splits it into days)"
MAX_LINE_BYTES = 2_000_000     # DuckDB's CSV reader reads no longer line (read_csv max_line_size default)
RETURN_WINDOW_DAYS = 90        # a return must refer to a sale of the same customer at most this many days earlier
DUPLICATE_WINDOW_DAYS = 30     # an order line already loaded from another day's file this close is a duplicate
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}

# Reason codes, in the order the row rules emit them, with what a person should do about each.
REASONS = {
    "missing_order_id": "order_id is empty",
    "missing_line_number": "line_number is empty",
    "bad_line_number": "line_number is not a positive integer",
    "missing_customer_id": "customer_id is empty",
    "id_with_spaces": "order_id, customer_id or original_order_id starts or ends with whitespace",
    "bad_id": f"order_id, customer_id or original_order_id holds a control character (tab, line break, NUL...) "
              f"or an invisible one (zero-width space, BOM...), or is longer than {MAX_ID_CHARS} characters",
    "missing_timestamp": "order_ts is empty",
    "bad_timestamp": "order_ts is not YYYY-MM-DDTHH:MM:SS",
    "ts_outside_partition_day": "order_ts is not on the file's day",
    "ts_in_future": "order_ts is later than the load time",
    "unknown_category": "category is empty or not in the vocabulary (add it to vocabularies.toml: README)",
    "missing_quantity": "quantity is empty",
    "bad_quantity": "quantity is not an integer",
    "zero_quantity": "quantity is 0",
    "implausible_quantity": f"|quantity| > {MAX_QUANTITY}",
    "missing_unit_price": "unit_price is empty",
    "bad_unit_price": "unit_price is not a decimal number with at most 6 decimals",
    "negative_unit_price": "unit_price < 0",
    "implausible_unit_price": f"unit_price > {MAX_UNIT_PRICE}",
    "unknown_channel": "channel is empty or not in the vocabulary (add it to vocabularies.toml: README)",
    "unknown_country": "country is empty or not in the vocabulary (add it to vocabularies.toml: README)",
    "return_without_original_order": "negative quantity without original_order_id",
    "return_without_known_order":
        f"original_order_id is no sale of this customer in this file or the {RETURN_WINDOW_DAYS} days before",
    "original_order_on_sale": "original_order_id set on a line with positive quantity",
    "duplicate_line": "(order_id, line_number) already seen earlier in the file",
    "duplicate_line_other_file":
        f"(order_id, line_number) already loaded from another day's file at most {DUPLICATE_WINDOW_DAYS} days away",
}

_COLS = ", ".join(schema.LANDING_COLUMNS)


class LandingFileError(Exception):
    """A landing file that cannot be loaded as a whole. Nothing of it is written."""

    def __init__(self, file: str | Path, problem: str):
        self.file = str(file)
        self.problem = problem
        super().__init__(f"{self.file}: {problem}")


class MissingLandingFileError(LandingFileError):
    """No landing file for the day (a day without orders still gets a header-only file)."""


@dataclass
class LoadResult:
    partition_date: date
    source_file: str
    sha256: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    reason_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class FileReport:
    """What `check_file` found: file-level error (if any) or row counts and rejected examples."""

    file: str
    partition_date: date | None
    error: str | None = None
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    reason_counts: dict[str, int] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)
    returns_checked: bool = False
    # column -> {value: rows} of the 10 most frequent values outside the vocabulary (what to add to it)
    unknown_values: dict[str, dict[str, int]] = field(default_factory=dict)
    vocabularies: str = ""  # where the vocabularies came from

    @property
    def ok(self) -> bool:
        return self.error is None and self.rows_rejected == 0


# --- finding the file ------------------------------------------------------------------------------


def expected_names(partition_date: date) -> tuple[str, str]:
    return f"transactions_{partition_date.isoformat()}.csv", f"transactions_{partition_date.isoformat()}.parquet"


def find_landing_file(landing_dir: str | Path, partition_date: date | str) -> Path | None:
    """The day's landing file, None if there is none. A near-miss name (other case, extension or date
    spelling) or both a CSV and a Parquet file raise LandingFileError."""
    day = _as_date(partition_date)
    landing_dir = Path(landing_dir)
    names = expected_names(day)
    for n in names:
        if (landing_dir / n).exists() and not (landing_dir / n).is_file():
            raise LandingFileError(landing_dir / n, "unreadable: not a regular file")
    found = [landing_dir / n for n in names if (landing_dir / n).is_file()]
    if len(found) == 2:
        raise LandingFileError(found[0], f"both {names[0]} and {names[1]} exist; deliver one file per day")
    if found:
        return found[0]
    if landing_dir.is_dir():
        iso, compact = day.isoformat(), day.strftime("%Y%m%d")
        for entry in sorted(landing_dir.iterdir()):
            if entry.name not in names and (iso in entry.name or compact in entry.name):
                raise LandingFileError(
                    entry, f"wrong file name; a landing file must be named {names[0]} or {names[1]}"
                )
    return None


def partition_date_of(path: str | Path) -> date:
    """The date in a landing file's name; LandingFileError if the name does not follow the contract."""
    path = Path(path)
    m = schema.LANDING_FILE_RE.match(path.name)
    if not m:
        raise LandingFileError(
            path, "wrong file name; a landing file must be named transactions_YYYY-MM-DD.csv or .parquet"
        )
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        raise LandingFileError(path, f"wrong file name; {m.group(1)} is not a calendar date") from None


# --- reading the file --------------------------------------------------------------------------------


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise MissingLandingFileError(path, "file not found")
    try:
        if (size := path.stat().st_size) > MAX_FILE_BYTES:
            raise LandingFileError(path, f"{size:,} bytes, more than the {MAX_FILE_BYTES:,}{_ONE_DAY}")
        return path.read_bytes()
    except OSError as exc:
        raise LandingFileError(path, f"unreadable ({exc.strerror or exc})") from None


_DATA_LIKE = re.compile(r"^[+-]?[\d.,]+$|^\d{4}-\d{2}-\d{2}")   # a number or a date: a value, not a column name


def carriage_return_problem(first_line: bytes, line_feed_follows: bool) -> str | None:
    """A carriage return inside the first line (without its line end), the sign of CR-only line endings when no
    line feed follows it. Shared by the loader and `clv import-history`."""
    if b"\r" not in first_line.rstrip(b"\r"):
        return None
    if not line_feed_follows:
        return ("line endings are CR only (classic Mac OS): no line feed in the file; save it with LF or CRLF "
                "line endings")
    return "line 1 has a carriage return (CR) inside it"


def column_problems(columns) -> list[str]:
    """The missing and unexpected landing columns among `columns` (a Parquet file's), with the fix for a pandas
    index written as a column. Shared by the loader and `clv import-history`."""
    missing = [c for c in schema.LANDING_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in schema.LANDING_COLUMNS]
    parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
        [f"unexpected column(s) {', '.join(extra)}"] if extra else [])
    if any(c.startswith("__index_level_") for c in extra):
        parts.append("__index_level_* is a pandas index: write the file with index=False")
    return parts


def header_problem(first: str) -> str | None:
    """What is wrong with a CSV's first line as the landing header (None: it is the header). Shared by the
    loader and `clv import-history`, so both say the same."""
    expected = list(schema.LANDING_COLUMNS)
    if not first.strip():
        return "missing header: the first line is empty"
    header = next(csv.reader([first]))
    if header == expected:
        return None
    for delim, name in OTHER_DELIMITERS.items():
        if len(header) == 1 and delim in first:
            return f"wrong delimiter: the header is {name}-separated; expected commas"
    wanted = f"expected the header {','.join(expected)}"
    if any(_DATA_LIKE.match(c.strip()) for c in header):
        return f"missing header: the first line looks like data ({first[:60]!r}); {wanted}"
    stripped = [c.strip() for c in header]
    lowered = [c.lower() for c in stripped]
    if sorted(lowered) == sorted(expected) and lowered != header:       # the right names, spelled otherwise
        wrong = (["with spaces around them"] if stripped != header else []) + (
            ["not in lower case"] if lowered != stripped else []) + (
            ["in another order"] if lowered != expected else [])
        return f"wrong header: column names {' and '.join(wrong)} ({first[:80]!r}); {wanted} (lower case, no spaces)"
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    if not missing and not extra:
        return f"wrong header: columns out of order, {wanted}"
    parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
        [f"unexpected column(s) {', '.join(repr(c) if c != c.strip() or not c else c for c in extra)}"]
        if extra else [])
    if any(not c.strip() for c in extra):
        parts.append("a column without a name (a trailing comma?)")
    if not set(header) & set(expected):
        parts.append(f"none of the columns is a landing column: the first line must be the header, with the "
                     f"landing column names (there is no column mapping; {wanted})")
    return "wrong header: " + "; ".join(parts)


def _check_csv_bytes(path: Path, data: bytes) -> None:
    """File-level checks of a CSV landing file: encoding, BOM, header, delimiter, truncation."""
    if not data:
        raise LandingFileError(path, "empty file (0 bytes); even a day without orders needs the header line")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LandingFileError(path, "bad encoding: UTF-16 byte-order mark; landing files must be UTF-8")
    if data.startswith(b"\xef\xbb\xbf"):
        raise LandingFileError(path, "starts with a UTF-8 byte-order mark (BOM); landing files must be UTF-8 without BOM")
    try:
        if not data.isascii():      # ASCII is valid UTF-8; isascii is ~10x faster than a full decode
            data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LandingFileError(
            path, f"bad encoding: byte 0x{data[exc.start]:02x} on line {line} is not valid UTF-8"
        ) from None
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise LandingFileError(path, f"bad encoding: NUL byte on line {line}")
    newline = data.find(b"\n")          # (split would copy the whole rest of the file)
    head = data if newline < 0 else data[:newline]
    if problem := carriage_return_problem(head, newline >= 0):
        raise LandingFileError(path, problem)
    first = head.decode("utf-8").rstrip("\r")
    if problem := header_problem(first):
        raise LandingFileError(path, problem)
    if not data.endswith(b"\n") and b"\n" in data:
        expected = schema.LANDING_COLUMNS
        last_line = data.rsplit(b"\n", 1)[1].decode("utf-8")
        fields = next(csv.reader(io.StringIO(last_line, newline="")), [])
        line = data.count(b"\n") + 1
        if last_line.count('"') % 2:
            raise LandingFileError(path, f"truncated last line {line}: unterminated quote and no line end")
        if len(fields) < len(expected):
            raise LandingFileError(
                path, f"truncated last line {line}: {len(fields)} of {len(expected)} fields and no line end"
            )


def duckdb_problem(exc: duckdb.Error) -> str:
    """A short reading of a DuckDB reader error (it appends a long list of reader options and the query)."""
    text = str(exc)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    cols = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if line and cols:
        return f"line {line.group(1)} has {cols.group(2)} fields, expected {cols.group(1)}"
    if line and "unterminated quote" in text:
        return f"line {line.group(1)}: value with an unterminated quote"
    if "does not support a full read" in text:      # DuckDB's parallel reader on a line of tens of MB
        return f"a line is longer than the reader's limit of {MAX_LINE_BYTES:,} bytes"
    size = re.search(r"[Mm]aximum line size of (\d+) bytes", text)
    if size:
        where = f"line {line.group(1)} is" if line else "a line is"
        return f"{where} longer than the reader's limit of {int(size.group(1)):,} bytes"
    keep = []
    for ln in (ln.strip() for ln in text.splitlines()):
        if not ln or ln.startswith(("Possible fixes", "file =", "*", "LINE ")):
            break
        keep.append(ln.replace("Invalid Input Error: ", "").replace("IO Error: ", ""))
    return " ".join(keep)[:300]


_FIRST_LINE = {".csv": 2, ".parquet": 1}     # source_line of _landing_rows' rowid 0 (without blank lines etc.)


def csv_row_lines(path: Path, data: bytes, rows: int | None, fields: int | None = None) -> np.ndarray | None:
    """Line number in the file of each data row, when that is not simply row index + 2: blank lines (DuckDB
    skips them) and values with line breaks inside quotes shift the rows against the lines. None when every
    row is on its own line, in order. `rows`: how many rows DuckDB read (None: it failed). Also the check
    DuckDB's reader leaves out: a row with more fields than the header (DuckDB drops trailing empty ones, so
    `...,US,,` would load) fails the file, naming the line. `fields`: the header's (default: the landing
    columns)."""
    expected = fields or len(schema.LANDING_COLUMNS)
    if b'"' not in data:        # no quoting: a row is a line, and its fields are its commas + 1
        buf = np.frombuffer(data, dtype=np.uint8)
        lines = data.count(b"\n") + (not data.endswith(b"\n"))
        if rows == lines - 1 and np.count_nonzero(buf == 44) == (expected - 1) * lines:
            return None         # no blank line, and the commas of `expected` fields on every line
        newlines = np.flatnonzero(buf == 10)        # something is off: find the line (vectorised)
        ends = newlines if data.endswith(b"\n") else np.append(newlines, len(data))
        starts = np.concatenate(([0], newlines[: len(ends) - 1] + 1))
        commas = np.flatnonzero(buf == 44)
        fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
        lengths = ends - starts - (buf[np.maximum(ends - 1, 0)] == 13)
        blank = lengths[1:] <= 0
        wrong = np.flatnonzero(~blank & (fields[1:] != expected))
        if wrong.size:
            line = int(wrong[0]) + 2
            raise LandingFileError(path, f"malformed CSV: line {line} has {int(fields[line - 1])} fields, "
                                         f"expected {expected}")
        found = np.flatnonzero(~blank) + 2
        if rows is not None and rows != len(found) and found.size:
            # DuckDB's reader drops a last line longer than it can read (tens of MB), without an error
            longest = int(np.argmax(lengths[1:])) + 2
            raise LandingFileError(path, f"malformed CSV: {rows:,} rows read from {len(found):,} data lines; "
                                         f"line {longest} ({int(lengths[longest - 1]):,} bytes) could not be read")
        return found if blank.any() else None
    # quoting: let the csv module follow the quotes (slower, and only files that quote anything pay it)
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))   # (its default 131,072 < DuckDB's)
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True)
    starts, last = [], 0
    try:
        for i, row in enumerate(reader):
            start, last = last + 1, reader.line_num
            if i == 0 or not row:
                continue
            if len(row) != expected:
                raise LandingFileError(path, f"malformed CSV: line {start} has {len(row)} fields, expected {expected}")
            starts.append(start)
    except csv.Error as exc:
        problem = "value with an unterminated quote" if "unexpected end of data" in str(exc) else str(exc)
        raise LandingFileError(path, f"malformed CSV: line {last + 1}: {problem}") from None
    found = np.asarray(starts, dtype=np.int64)
    return None if np.array_equal(found, np.arange(2, len(found) + 2)) else found


_SIGNED = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
# DuckDB base types (without a DECIMAL's precision) each landing column may have in Parquet; any other column is
# text (VARCHAR). Lists, structs, maps and intervals never are.
_PARQUET_TYPES = {
    "line_number": {"VARCHAR", *_SIGNED, "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"},
    "quantity": {"VARCHAR", *_SIGNED},
    "unit_price": {"VARCHAR", "DECIMAL", "DOUBLE", "FLOAT", *_SIGNED},
    "order_ts": {"VARCHAR", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"},
}
# Which day a time-zone-aware timestamp falls on depends on the reading machine's time zone setting (DuckDB
# names them TIMESTAMP WITH TIME ZONE, or TIMESTAMPTZ_NS etc. for other precisions).
_TIME_ZONE_TYPES = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")


def parquet_type_problem(column: str, typ: str) -> str | None:
    """Why a Parquet column of DuckDB type `typ` cannot be read as landing column `column` (None: it can).
    A column of type NULL (all values missing, as pandas writes an empty original_order_id) is read as text."""
    if typ.startswith(_TIME_ZONE_TYPES):
        return f"column {column} has type {typ} ({column} must be a timestamp without time zone, in local time)"
    base = typ.strip("\"").split("(")[0]
    allowed = _PARQUET_TYPES.get(column, {"VARCHAR"})
    if base == "NULL" or base in allowed:
        return None
    if base in ("DOUBLE", "FLOAT") and "BIGINT" in allowed:
        hint = "whole numbers with a missing value are written as floats by pandas: fill it, or use dtype Int64"
    elif base in _SIGNED | {"DOUBLE", "FLOAT"} and allowed == {"VARCHAR"}:
        hint = "a text column: write it as strings (pandas: astype(str)), keeping any leading zeros"
    else:
        hint = "allowed: " + ", ".join(sorted(allowed))
    return f"column {column} has type {typ} ({hint})"


def _parquet_text(column: str, typ: str) -> str:
    """SQL reading Parquet column `column` of type `typ` as the text a CSV file would hold."""
    if typ.startswith("TIMESTAMP"):     # to the second: a fraction of a second never moves the day
        return f"strftime({column}, '%Y-%m-%dT%H:%M:%S')"
    if typ.startswith("DECIMAL"):       # 19.99 as DECIMAL(20,10) is '19.9900000000': drop the padding
        return (f"CASE WHEN contains(CAST({column} AS VARCHAR), '.') "
                f"THEN rtrim(rtrim(CAST({column} AS VARCHAR), '0'), '.') ELSE CAST({column} AS VARCHAR) END")
    if typ in ("DOUBLE", "FLOAT"):      # 0.1 * 3 is 0.30000000000000004: a float within rounding error of a
        return (f"CASE WHEN abs({column} - round({column}, 6)) <= 1e-9 * greatest(1, abs({column})) "   # 6-decimal
                f"THEN CAST(round(CAST({column} AS DOUBLE), 6) AS VARCHAR) ELSE CAST({column} AS VARCHAR) END")
    return f"CAST({column} AS VARCHAR)"


def _stage_file(
    con: duckdb.DuckDBPyConnection, path: Path, day: date, now: datetime, vocabularies: schema.Vocabularies,
    with_digest: bool = True,
) -> str | None:
    """Read the file and apply the row-local rules in one pass (see _stage_parsed); returns sha256 (None when
    not `with_digest`: check_file has no audit row to write)."""
    data = _read_bytes(path)
    if not with_digest:
        _stage_parsed(con, path, data, day, now, vocabularies)
        return None
    # hashing releases the GIL: it runs beside the checks and DuckDB's read
    digest: list[str] = []
    hasher = threading.Thread(target=lambda: digest.append(hashlib.sha256(data).hexdigest()))
    hasher.start()
    try:
        _stage_parsed(con, path, data, day, now, vocabularies)
    finally:
        hasher.join()
    return digest[0]


def _vocabulary_params(vocabularies: schema.Vocabularies) -> dict:
    params = {}
    for key in schema.VOCABULARY_COLUMNS:
        allowed = vocabularies.allowed(key)
        params[key], params[f"any_{key}"] = list(allowed or ()), allowed is None
    return params


def _stage_parsed(
    con: duckdb.DuckDBPyConnection, path: Path, data: bytes, day: date, now: datetime,
    vocabularies: schema.Vocabularies,
) -> None:
    """File-level checks, then temp table _landing_rows: the file's rows in file order with their typed values
    and reasons (lib/sql/ingest_row_rules.sql, applied while DuckDB reads the file: the text is materialised
    once), and view _landing = source_line + _landing_rows."""
    for obj in ("VIEW IF EXISTS _landing", "TABLE IF EXISTS _landing_rows", "VIEW IF EXISTS _landing_source",
                "TABLE IF EXISTS _row_lines"):
        con.execute(f"DROP {obj}")
    if path.suffix == ".csv":
        _check_csv_bytes(path, data)
        columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in schema.LANDING_COLUMNS) + "}"
        source = (f"read_csv({warehouse.sql_text(str(path))}, header = true, auto_detect = false, delim = ',', "
                  f"quote = '\"', escape = '\"', strict_mode = true, columns = {columns})")
        problem = "malformed CSV: {}"
    elif path.suffix == ".parquet":
        try:
            described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
            ((rows,),) = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [str(path)]).fetchall()
        except duckdb.Error as exc:
            raise LandingFileError(path, f"not a readable Parquet file ({duckdb_problem(exc)})") from None
        if rows > MAX_FILE_ROWS:     # refused from its metadata, before its data is expanded in memory
            raise LandingFileError(path, f"{rows:,} rows, more than the {MAX_FILE_ROWS:,}{_ONE_DAY}")
        types = {name: typ for name, typ, *_ in described}
        if parts := column_problems(types):
            raise LandingFileError(path, "Parquet schema mismatch: " + "; ".join(parts))
        for col in schema.LANDING_COLUMNS:
            if type_problem := parquet_type_problem(col, types[col]):
                raise LandingFileError(path, f"Parquet schema mismatch: {type_problem}")
        selects = [f"{_parquet_text(col, types[col])} AS {col}" for col in schema.LANDING_COLUMNS]
        source = f"(SELECT {', '.join(selects)} FROM read_parquet({warehouse.sql_text(str(path))}))"
        problem = "unreadable Parquet data ({})"
    else:
        raise LandingFileError(path, "wrong file name; only .csv and .parquet landing files are accepted")
    con.execute(warehouse.read_sql("ingest_macros"))
    con.execute(f"CREATE TEMP VIEW _landing_source AS SELECT * FROM {source}")
    try:
        con.execute(
            "CREATE TEMP TABLE _landing_rows AS " + warehouse.read_sql("ingest_row_rules"),
            {
                "partition_date": day,
                "now": now,
                **_vocabulary_params(vocabularies),
                "max_quantity": MAX_QUANTITY,
                "max_unit_price": MAX_UNIT_PRICE,
                "max_id_chars": MAX_ID_CHARS,
            },
        )
    except duckdb.Error as exc:
        if path.suffix == ".csv":
            csv_row_lines(path, data, None)        # names the line when a row has the wrong number of fields
        raise LandingFileError(path, problem.format(duckdb_problem(exc))) from None
    finally:
        con.execute("DROP VIEW _landing_source")
    # rowid follows insertion order = file order: header is line 1 of a CSV, first row is row 1 of Parquet.
    rows = con.execute("SELECT count(*) FROM _landing_rows").fetchall()[0][0]
    row_lines = csv_row_lines(path, data, rows) if path.suffix == ".csv" else None
    if row_lines is None:
        con.execute(f"CREATE TEMP VIEW _landing AS SELECT rowid + {_FIRST_LINE[path.suffix]} AS source_line, "
                    "rowid AS row_index, * FROM _landing_rows")
        return
    if rows != len(row_lines):
        raise LandingFileError(path, f"malformed CSV: {rows:,} rows read but {len(row_lines):,} found by line")
    con.execute("DROP TABLE IF EXISTS _row_lines")
    con.register("_row_lines_frame", pd.DataFrame({"source_line": row_lines}))
    try:
        con.execute("CREATE TEMP TABLE _row_lines AS SELECT source_line FROM _row_lines_frame")
    finally:
        con.unregister("_row_lines_frame")
    con.execute("CREATE TEMP VIEW _landing AS SELECT l.source_line, r.rowid AS row_index, r.* "
                "FROM _landing_rows AS r POSITIONAL JOIN _row_lines AS l")


def _apply_cross_row_rules(con: duckdb.DuckDBPyConnection, check_returns: bool) -> None:
    """Append the codes of the rules that compare rows (lib/sql/ingest_cross_row_rules.sql: only the few lines
    they reject) to `reasons` of _landing_rows, which then holds every row's final reason codes."""
    con.execute("DROP TABLE IF EXISTS _cross_rejected")
    con.execute("CREATE TEMP TABLE _cross_rejected AS " + warehouse.read_sql("ingest_cross_row_rules"),
                {"check_returns": check_returns})
    con.execute(
        "UPDATE _landing_rows AS l SET reasons = concat_ws(',', nullif(l.reasons, ''), c.reasons) "
        "FROM _cross_rejected AS c WHERE l.rowid = c.row_index"
    )
    con.execute("DROP TABLE _cross_rejected")


def _prior_orders(con: duckdb.DuckDBPyConnection, day: date | None) -> None:
    """temp table _prior_orders: the sales of the RETURN_WINDOW_DAYS partitions before `day` that this file's
    return lines refer to (day None: no warehouse, an empty table). The date window prunes row groups
    (partitions are loaded in date order), so the lookup does not grow with the history."""
    con.execute("DROP TABLE IF EXISTS _prior_orders")
    ids = [] if day is None else [r[0] for r in con.execute(
        "SELECT DISTINCT original_order_id FROM _landing WHERE starts_with(quantity, '-') "
        "AND NOT is_blank(original_order_id)").fetchall()]
    if not ids:
        con.execute("CREATE TEMP TABLE _prior_orders AS SELECT '' AS order_id, '' AS customer_id WHERE false")
        return
    con.execute(
        "CREATE TEMP TABLE _prior_orders AS SELECT DISTINCT order_id, customer_id FROM staging.transactions "
        "WHERE partition_date < ? AND partition_date >= ? AND quantity > 0 "
        "AND order_id BETWEEN ? AND ? AND list_contains(?, order_id)",
        [day, day - timedelta(days=RETURN_WINDOW_DAYS), min(ids), max(ids), ids],
    )


def _other_day_lines(con: duckdb.DuckDBPyConnection, day: date | None) -> None:
    """temp table _other_day_lines: (order_id, line_number) of this file that staging already holds from another
    partition at most DUPLICATE_WINDOW_DAYS away (day None: no warehouse, an empty table). The first load
    keeps a line; a later delivery of it in another day's file is quarantined, so it is never counted twice.
    The date window (and the file's order-id range) prune row groups, so the lookup does not grow with the
    history."""
    con.execute("DROP TABLE IF EXISTS _other_day_lines")
    con.execute("CREATE TEMP TABLE _other_day_lines (order_id VARCHAR, line_number INTEGER)")
    if day is None:
        return
    window = [day - timedelta(days=DUPLICATE_WINDOW_DAYS), day + timedelta(days=DUPLICATE_WINDOW_DAYS), day]
    others = con.execute(  # (zone maps answer this; spares the join a hash table of the file's keys)
        "SELECT count(*) FROM staging.transactions WHERE partition_date BETWEEN ? AND ? AND partition_date <> ?",
        window,
    ).fetchone()[0]
    if not others:
        return
    con.execute(
        """INSERT INTO _other_day_lines
        SELECT DISTINCT s.order_id, s.line_number
        FROM staging.transactions AS s
        SEMI JOIN _landing AS l ON l.order_id = s.order_id AND l.t_line_number = s.line_number
        WHERE s.partition_date BETWEEN ? AND ? AND s.partition_date <> ?
          AND s.order_id BETWEEN (SELECT min(order_id) FROM _landing) AND (SELECT max(order_id) FROM _landing)""",
        window,
    )


def _rule_rows(
    con: duckdb.DuckDBPyConnection, path: Path, day: date, now: datetime, in_warehouse: bool,
    vocabularies: schema.Vocabularies,
) -> tuple[str | None, dict[str, int], int, int]:
    """Stage the file and give every row its final reason codes (temp table _landing_rows, view _landing).
    in_warehouse: compare with the warehouse's earlier partitions (returns of earlier sales, lines loaded from
    other days' files) and hash the file for the audit; otherwise (check_file) the file alone.
    Returns (sha256 or None, reason counts, rows read, rows rejected)."""
    digest = _stage_file(con, path, day, now, vocabularies, with_digest=in_warehouse)
    _prior_orders(con, day if in_warehouse else None)
    _other_day_lines(con, day if in_warehouse else None)
    _apply_cross_row_rules(con, check_returns=in_warehouse)
    rows_read, rows_rejected = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE reasons <> '') FROM _landing_rows"
    ).fetchone()
    return digest, _reason_counts(con), rows_read, rows_rejected


def _reason_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = con.execute(
        "SELECT reason, count(*) FROM (SELECT unnest(string_split(reasons, ',')) AS reason FROM _landing_rows "
        "WHERE reasons <> '') GROUP BY reason"
    ).fetchall()
    order = list(REASONS)
    return dict(sorted(rows, key=lambda r: order.index(r[0]) if r[0] in order else len(order)))


# --- public API --------------------------------------------------------------------------------------


def load_partition(
    con: duckdb.DuckDBPyConnection,
    partition_date: date | str,
    landing_dir: str | Path,
    now: datetime | None = None,
    vocabularies: schema.Vocabularies | None = None,
) -> LoadResult:
    """Load the day's landing file, replacing the partition in raw.*, staging.transactions and the audit.

    Raises MissingLandingFileError if there is no file, LandingFileError for any file-level problem; in both
    cases nothing is written. `now` (default: the current time) is the limit for ts_in_future; `vocabularies`
    (default: the settings', Settings.vocabularies) the allowed channels, countries and categories.
    """
    day = _as_date(partition_date)
    try:
        path = find_landing_file(landing_dir, day)
        if path is None:
            name = expected_names(day)[0]
            raise MissingLandingFileError(Path(landing_dir) / name, "file not found (no .csv or .parquet for the day)")
        return load_file(con, path, day, now=now, vocabularies=vocabularies)
    except MissingLandingFileError:
        raise
    except LandingFileError as exc:     # remembered for `clv status`, which would call the day "not loaded yet"
        file = Path(exc.file)
        digest = landing.sha256_of(file) if file.is_file() else None
        con.execute("INSERT OR REPLACE INTO raw.load_failures VALUES (?, ?, ?, ?, ?)",
                    [day, file.name, digest, exc.problem, now or datetime.now()])
        raise


def load_file(
    con: duckdb.DuckDBPyConnection, path: str | Path, partition_date: date | str | None = None,
    now: datetime | None = None, vocabularies: schema.Vocabularies | None = None,
) -> LoadResult:
    """Load one landing file as the partition of its name's date (see load_partition)."""
    started = time.perf_counter()
    path = Path(path)
    day = partition_date_of(path)
    if partition_date is not None and _as_date(partition_date) != day:
        raise LandingFileError(path, f"wrong file name for partition {partition_date}")
    now = now or datetime.now()
    vocabularies = vocabularies or get_settings().vocabularies()
    try:
        digest, counts, rows_read, rows_rejected = _rule_rows(con, path, day, now, True, vocabularies)
        source = path.name
        params = [day, source]
        with warehouse.transaction(con):
            for table in ("raw.transactions", "raw.rejected_transactions", "staging.transactions", "raw.load_audit",
                          "raw.load_failures"):
                con.execute(f"DELETE FROM {table} WHERE partition_date = ?", [day])
            con.execute(
                f"INSERT INTO raw.transactions (partition_date, source_file, source_line, {_COLS}) "
                f"SELECT ?, ?, source_line, {_COLS} FROM _landing",
                params,
            )
            con.execute(
                f"INSERT INTO raw.rejected_transactions (partition_date, source_file, source_line, reasons, {_COLS}) "
                f"SELECT ?, ?, source_line, reasons, {_COLS} FROM _landing WHERE reasons <> ''",
                params,
            )
            con.execute(
                """INSERT INTO staging.transactions (partition_date, order_id, line_number, customer_id, order_ts,
                    category, quantity, unit_price, amount, channel, country, original_order_id, source_file,
                    source_line)
                SELECT ?, order_id, t_line_number, customer_id, t_order_ts, category, t_quantity, t_unit_price,
                    CAST(round(t_quantity * t_unit_price, 2) AS DECIMAL(18, 2)), channel, country,
                    nullif(trim(original_order_id), ''), ?, source_line
                FROM _landing WHERE reasons = ''""",
                params,
            )
            elapsed = time.perf_counter() - started
            con.execute(
                "INSERT INTO raw.load_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [day, source, digest, rows_read, rows_read - rows_rejected, rows_rejected, now, elapsed],
            )
    finally:
        for obj in ("TABLE IF EXISTS _cross_rejected", "VIEW IF EXISTS _landing", "TABLE IF EXISTS _landing_rows",
                    "TABLE IF EXISTS _prior_orders", "TABLE IF EXISTS _other_day_lines", "TABLE IF EXISTS _row_lines"):
            con.execute(f"DROP {obj}")
    return LoadResult(
        partition_date=day, source_file=source, sha256=digest, rows_read=rows_read,
        rows_loaded=rows_read - rows_rejected, rows_rejected=rows_rejected, reason_counts=counts,
        seconds=time.perf_counter() - started,
    )


@contextmanager
def bulk_load(con: duckdb.DuckDBPyConnection, wal_limit: str = "1GB") -> Iterator[None]:
    """For a run of many partitions: let the WAL grow instead of checkpointing after every small commit
    (DuckDB's default 16 MB threshold makes each commit rewrite the tables' last row groups), then
    checkpoint once at the end."""
    old = con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
    con.execute(f"SET checkpoint_threshold = '{wal_limit}'")
    try:
        yield
    finally:
        con.execute(f"SET checkpoint_threshold = '{old}'")
        con.execute("CHECKPOINT")


def loaded_files(con: duckdb.DuckDBPyConnection) -> dict[date, str]:
    """Day -> sha256 of the landing file raw.load_audit holds the load of (quarantined rows included)."""
    return dict(con.execute("SELECT partition_date, sha256 FROM raw.load_audit").fetchall())


_VOCABULARY_REASONS = ["unknown_category", "unknown_channel", "unknown_country"]


def quarantined_now_allowed(con: duckdb.DuckDBPyConnection, vocabularies: schema.Vocabularies) -> dict[date, int]:
    """Day -> quarantined rows whose only reasons were unknown vocabulary values that `vocabularies` now allows:
    a reload of the day would load them (the vocabularies were widened after the load)."""
    con.execute(warehouse.read_sql("ingest_macros"))
    return dict(con.execute(
        "SELECT partition_date, count(*) FROM raw.rejected_transactions "
        "WHERE list_has_all($reasons, string_split(reasons, ',')) "
        "AND in_vocabulary(category, $categories, $any_categories) "
        "AND in_vocabulary(channel, $channels, $any_channels) "
        "AND in_vocabulary(country, $countries, $any_countries) GROUP BY 1 ORDER BY 1",
        {"reasons": _VOCABULARY_REASONS, **_vocabulary_params(vocabularies)},
    ).fetchall())


def read_loaded_files(path: str | Path) -> dict[date, str]:
    """loaded_files of the warehouse file at `path`, opened read-only for the query ({} when there is no file
    yet); WarehouseBusyError while a run writes it."""
    if not Path(path).exists():
        return {}
    con = warehouse.connect(path, read_only=True)
    try:
        return loaded_files(con)
    finally:
        con.close()


def check_file(
    path: str | Path, now: datetime | None = None, examples: int = 10,
    vocabularies: schema.Vocabularies | None = None, con: duckdb.DuckDBPyConnection | None = None,
) -> FileReport:
    """Validate a landing file without loading it (in-memory DuckDB: `con`, one for many files, else its own).
    Returns referring to orders outside the file cannot be checked against the warehouse here; they are
    counted, not rejected."""
    path = Path(path)
    vocabularies = vocabularies or get_settings().vocabularies()
    report = FileReport(file=str(path), partition_date=None, vocabularies=vocabularies.source)
    own = con is None
    con = duckdb.connect() if own else con
    try:
        report.partition_date = partition_date_of(path)
        _, report.reason_counts, report.rows_read, report.rows_rejected = _rule_rows(
            con, path, report.partition_date, now or datetime.now(), False, vocabularies)
        report.rows_valid = report.rows_read - report.rows_rejected
        cur = con.execute(
            f"SELECT source_line, reasons, {_COLS} FROM _landing WHERE reasons <> '' ORDER BY source_line LIMIT ?",
            [examples],
        )
        names = [d[0] for d in cur.description]
        report.examples = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        for column in schema.VOCABULARY_COLUMNS.values():
            if report.reason_counts.get(f"unknown_{column}"):
                report.unknown_values[column] = dict(con.execute(
                    f"SELECT coalesce({column}, ''), count(*) AS n FROM _landing "
                    f"WHERE contains(reasons, 'unknown_{column}') GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10"
                ).fetchall())
    except LandingFileError as exc:
        report.error = exc.problem
    finally:
        if own:
            con.close()
    return report


def partition_tables(con: duckdb.DuckDBPyConnection, partition_dates: Iterable[date | str]) -> dict[str, int]:
    """Row counts of the ingestion tables for some partitions (for metadata and reconciliation)."""
    days = [_as_date(d) for d in partition_dates]
    out = {}
    for table in ("raw.transactions", "raw.rejected_transactions", "staging.transactions", "raw.load_audit"):
        out[table] = con.execute(
            f"SELECT count(*) FROM {table} WHERE list_contains(?, partition_date)", [days]
        ).fetchone()[0]
    return out
