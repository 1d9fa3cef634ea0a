"""Per-process access to the serving snapshot, created lazily (after gunicorn's fork)."""

import datetime as dt
import math
import os
import threading
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clv_platform.lib.snapshot import (
    Snapshot,
    SnapshotNotFoundError,
    SnapshotReader,
    SnapshotUnreadableError,
    follow,
)


def jsonable(value):
    """A plain JSON value: NaN/NaT -> None, dates -> ISO strings, numpy scalars -> Python."""
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if value is pd.NaT:
        return None
    return value


def _column_values(col: pd.Series) -> list:
    """A column as plain JSON values, converted column by column (fast for wide frames of many rows)."""
    if pd.api.types.is_float_dtype(col):
        values = col.to_numpy(dtype=float)
        out = values.tolist()
        if not np.isfinite(values).all():
            out = [v if math.isfinite(v) else None for v in out]
        return out
    if (pd.api.types.is_integer_dtype(col) or pd.api.types.is_bool_dtype(col)) and not col.hasnans:
        return col.tolist()
    if pd.api.types.infer_dtype(col, skipna=False) == "string":  # ids, names: already plain values
        return col.tolist()
    return [None if v is pd.NA else jsonable(v) for v in col.tolist()]


def records(df: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain JSON values (NaN/inf -> None, dates -> ISO strings). Floats keep every digit
    (the app's JSON provider, api/encoding.py, writes them in their shortest form)."""
    names = list(df.columns)
    columns = [_column_values(df[c]) for c in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _release_read_buffers() -> None:
    """Give Arrow's freed read and sort buffers back to the OS: its allocator keeps them otherwise (about
    0.6 GB per worker after loading a million customers' scores and history)."""
    pa.default_memory_pool().release_unused()


class ScoresView:
    """customer_scores of one snapshot, indexed by customer_id for fast lookups."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        scores = snapshot.table("customer_scores")
        self.scores = scores.set_index(scores["customer_id"].astype(str), drop=False)
        if not self.scores.index.is_unique:
            self.scores = self.scores[~self.scores.index.duplicated(keep="last")]
        _release_read_buffers()

    def _rows(self, ids: list[str]) -> tuple[pd.DataFrame, list[str]]:
        pos = self.scores.index.get_indexer(ids)
        found = pos >= 0
        unknown = [i for i, ok in zip(ids, found, strict=True) if not ok]
        return self.scores.iloc[pos[found]], unknown

    @cached_property
    def numeric_columns(self) -> list[str]:
        return [c for c in self.scores.columns
                if pd.api.types.is_numeric_dtype(self.scores[c]) and not pd.api.types.is_bool_dtype(self.scores[c])]

    @cached_property
    def segment_names(self) -> list[str]:
        """(once per snapshot: a scan of every customer's segment)"""
        if "segment_name" not in self.scores:
            return []
        return sorted(self.scores["segment_name"].dropna().astype(str).unique())

    @cached_property
    def _id_rank(self) -> np.ndarray:
        """Each row's place in customer-id order: the tie-break of every sort (ids are unique)."""
        return pd.factorize(self.scores["customer_id"].astype(str).to_numpy(), sort=True)[0]

    def _sort_key(self, column: str) -> np.ndarray:
        """`column` as floats that sort like its values (NaN for missing): numbers as they are, anything else
        (names, dates) by its place among the column's sorted distinct values."""
        col = self.scores[column]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            return col.to_numpy(dtype=float, na_value=np.nan)
        codes = pd.factorize(col, sort=True)[0].astype(float)
        codes[codes < 0] = np.nan
        return codes

    def select(self, bounds: dict[str, tuple[float | None, float | None]], segments: list[str], sort: str,
               descending: bool, offset: int, limit: int) -> tuple[pd.DataFrame, int]:
        """Customers with every `bounds` column within [low, high] (NaN never is) and, if given, a segment
        among `segments`; sorted by `sort` (ties by customer id, NaN last), one page. Returns (page, total).

        Only the rows that can reach the page are sorted (a partition finds them), so a page of a million
        customers takes milliseconds, not the second a full sort takes."""
        keep = np.ones(len(self.scores), dtype=bool)
        for col, (low, high) in bounds.items():
            values = self.scores[col].to_numpy(dtype=float, na_value=np.nan)
            if low is not None:
                keep &= values >= low
            if high is not None:
                keep &= values <= high
        if segments:
            keep &= self.scores["segment_name"].isin(segments).to_numpy()
        rows = np.flatnonzero(keep)
        key = self._sort_key(sort)[rows]
        missing = np.isnan(key)
        key = np.where(missing, np.inf, -key if descending else key)
        end = offset + limit
        if end < len(rows):  # every row that can be among the first `end`, ties at the boundary included
            candidates = np.flatnonzero(key <= np.partition(key, end - 1)[end - 1])
        else:
            candidates = np.arange(len(rows))
        order = candidates[np.lexsort((self._id_rank[rows[candidates]], key[candidates], missing[candidates]))]
        return self.scores.iloc[rows[order[offset:end]]].rename_axis(None), len(rows)

    @cached_property
    def _history(self) -> "CustomerHistory":
        history = CustomerHistory(self.snapshot.arrow_table("segment_history")
                                  if "segment_history" in self.snapshot.table_names else None)
        _release_read_buffers()  # (the unsorted read and the sorted ids are gone by now)
        return history

    def history(self, customer_id: str) -> pd.DataFrame:
        """The customer's monthly rows of segment_history without customer_id, oldest first (empty when none).
        The history is grouped by customer once per snapshot, on the first call."""
        return self._history.rows(customer_id)

    def lookup(self, ids: list[str]) -> tuple[list[dict], list[str]]:
        rows, unknown = self._rows(ids)
        return records(rows), unknown


class SnapshotStore:
    """Holds one SnapshotReader per process (rebuilt if the pid changes, i.e. after a fork)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._reader: SnapshotReader | None = None
        self._pid: int | None = None
        self._view: ScoresView | None = None
        self._lock = threading.Lock()
        self._stop_following = threading.Event()

    @property
    def opened(self) -> bool:
        return self._reader is not None and self._pid == os.getpid()

    def reader(self) -> SnapshotReader:
        if not self.opened:
            with self._lock:
                if not self.opened:
                    self._reader = SnapshotReader(self.root, preload=("customer_scores", "segment_summary"))
                    self._pid = os.getpid()
                    self._view = None
        return self._reader

    def snapshot(self) -> Snapshot:
        """The current snapshot (raises SnapshotNotFoundError when none is published yet)."""
        return self.reader().get()

    def follow(self) -> None:
        """`warm` now and after every publish, until `stop_following` (gunicorn.conf.py runs this in a worker's
        background thread), so no request waits for a new snapshot to be read."""
        follow(self.root, self.warm, stop=self._stop_following)

    def stop_following(self) -> None:
        self._stop_following.set()

    def warm(self) -> None:
        """Read the current snapshot and build what the first requests need; nothing when no snapshot is
        published yet."""
        try:
            self.view()._id_rank  # noqa: B018 (a cached property: computing it is the point)
        except (SnapshotNotFoundError, SnapshotUnreadableError):   # (the requests say so, as 503s)
            pass

    def view(self) -> ScoresView:
        snap = self.snapshot()
        view = self._view
        if view is None or view.snapshot is not snap:
            view = ScoresView(snap)
            self._view = view
        return view


class CustomerHistory:
    """segment_history sorted by (customer_id, month) as one Arrow table, and where each customer's rows start:
    a customer's months are a zero-copy slice. Arrow keeps the strings in flat buffers, so a million customers'
    six months take a fraction of the memory of a pandas frame of Python strings indexed by customer."""

    def __init__(self, table: pa.Table | None):
        if table is None or not {"customer_id", "month"} <= set(table.column_names):
            table = pa.table({"customer_id": pa.array([], pa.string()), "month": pa.array([], pa.string())})
        table = table.take(pc.sort_indices(table, sort_keys=[("customer_id", "ascending"), ("month", "ascending")]))
        runs = pc.value_counts(table["customer_id"])  # distinct ids in order of first appearance: sorted here
        self.customers = pd.Index(runs.field("values").to_numpy(zero_copy_only=False))
        self.starts = np.concatenate([[0], np.cumsum(runs.field("counts").to_numpy())])
        self.table = table.drop_columns(["customer_id"])

    def rows(self, customer_id: str) -> pd.DataFrame:
        i = self.customers.get_indexer([customer_id])[0]
        start, stop = (0, 0) if i < 0 else (self.starts[i], self.starts[i + 1])
        return self.table.slice(start, stop - start).to_pandas()
