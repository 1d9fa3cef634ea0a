"""DuckDB warehouse access: one file, schemas raw/staging/features/models/serving, SQL kept in sql/*.sql."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import duckdb

SQL_DIR = Path(__file__).parent / "sql"
SCHEMAS = ("raw", "staging", "features", "models", "serving")


@cache
def read_sql(name: str) -> str:
    """Text of lib/sql/<name>.sql."""
    return (SQL_DIR / f"{name}.sql").read_text()


def sql_text(value: str) -> str:
    """`value` as a SQL string literal (for file paths in COPY / read_csv, where DuckDB takes no parameter)."""
    return "'" + value.replace("'", "''") + "'"


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse file: DuckDB lets one process write it, or several read it."""


def connect(path: str | Path, read_only: bool = False, wait_seconds: float = 0.0) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (creating its folder) with every schema and table in place. While another
    process holds the file, retry for up to `wait_seconds`, then raise WarehouseBusyError (naming the holder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline, pause = time.monotonic() + wait_seconds, 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                holder = re.search(r"\(PID (\d+)\)", str(exc))
                raise WarehouseBusyError(
                    f"{path} is in use by another process{f' (PID {holder.group(1)})' if holder else ''}: DuckDB lets "
                    "one process write it at a time") from None
            time.sleep(min(pause, left))
            pause = min(2 * pause, 1.0)
    if not read_only:
        ensure_tables(con)
    return con


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """Whether `schema.table` exists (a read-only connection to an older warehouse may lack newer tables)."""
    schema, name = qualified.split(".")
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, name]
    ).fetchall()
    return bool(row and row[0][0])


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(read_sql("ddl"))


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection, **frames) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction, with the given pandas frames registered as views under their keyword names.

    Commits when the block ends, rolls back and re-raises on any error, unregisters the frames either way.
    BEGIN comes first: it also closes a half-fetched result, after which DuckDB 2 refuses register().
    """
    con.execute("BEGIN TRANSACTION")
    try:
        for name, frame in frames.items():
            con.register(name, frame)
        yield con
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in frames:
            con.unregister(name)
