"""Streamlit glue shared by the pages: the snapshot reader, empty states, caching keyed on the snapshot id.

The dashboard never opens the warehouse; it reads the serving snapshot through clv_platform.lib.snapshot.
One SnapshotReader per snapshot root is shared by all sessions (st.cache_resource); every rerun asks it for
the current snapshot (one readlink), so a new publish is picked up on the next interaction or page reload,
without restarting the app. Derived views are cached with st.cache_data under the snapshot id.
"""

import logging
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from clv_platform.lib.settings import get_settings
from clv_platform.lib.snapshot import Snapshot, SnapshotNotFoundError, SnapshotReader
from dashboards import data

log = logging.getLogger(__name__)
SCATTER_MAX = 5000  # customers drawn in the segments page's scatter (a random sample above that)


def snapshot_root() -> Path:
    """Where the serving snapshot lives: $CLV_SNAPSHOT_ROOT, else $CLV_DATA_DIR/serving."""
    return get_settings().snapshot_root


@st.cache_resource(show_spinner=False)
def _reader(root: str) -> SnapshotReader:
    # preload=None: read every table of a new snapshot at once, so a page never meets a pruned folder.
    return SnapshotReader(root, preload=None)


def current_snapshot() -> Snapshot | None:
    """The current snapshot, or None when none has been published under the root yet."""
    try:
        return _reader(str(snapshot_root())).get()
    except Exception:  # none yet, or unreadable: the page itself explains (require_snapshot)
        return None


def require_snapshot() -> Snapshot:
    """The current snapshot; if there is none, show how to create one and stop the page (no traceback)."""
    root = snapshot_root()
    try:
        return _reader(str(root)).get()
    except SnapshotNotFoundError:
        empty_state(root)
    except Exception as exc:  # unreadable manifest or Parquet: say so plainly
        st.error(f"The serving snapshot under `{root}` could not be read: {type(exc).__name__}: {exc}")
        st.markdown("Publish a fresh one with `make run` (or materialise `serving/snapshot` in Dagster).")
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises; keeps type checkers honest


def empty_state(root: Path) -> None:
    st.title("No serving snapshot yet")
    st.warning(
        f"The dashboard reads only the published serving snapshot, and there is none under `{root}`.",
        icon=":material/inventory_2:",
    )
    st.markdown(
        "**Create one** by running the pipeline end to end (demo data, ingestion, validation, features, "
        "models, scoring, publish):\n\n"
        "```bash\nmake run\n```\n\n"
        "or materialise the `serving` assets in the Dagster UI (`make dev`). Then reload this page; "
        "no restart is needed.\n\n"
        "Looking in the wrong place? The snapshot root is `$CLV_DATA_DIR/serving` "
        "(or `$CLV_SNAPSHOT_ROOT` when set)."
    )


def table(snap: Snapshot, name: str) -> pd.DataFrame | None:
    """A snapshot table, or None when this snapshot does not have it."""
    try:
        return snap.table(name)
    except KeyError:
        return None


def require_table(snap: Snapshot, name: str, what: str) -> pd.DataFrame:
    df = table(snap, name)
    if df is None or df.empty:
        missing_table(snap, name, what)
        st.stop()
    return df


def missing_table(snap: Snapshot, name: str, what: str) -> None:
    st.info(
        f"Snapshot `{snap.snapshot_id}` has no `{name}` table (or it is empty), so {what} cannot be shown. "
        "It is written by the `serving` assets; re-run `make run` to publish a complete snapshot.",
        icon=":material/info:",
    )


def header(snap: Snapshot, title: str) -> None:
    st.title(title)
    m = snap.manifest
    st.caption(
        f"Snapshot as of **{data.fmt_date(m.get('as_of_date'))}** · id `{snap.snapshot_id}` · "
        f"published {_fmt_ts(m.get('published_at'))}"
    )


def _fmt_ts(value) -> str:
    if not value:
        return "–"
    try:
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, TypeError):
        return str(value)


def model_versions(snap: Snapshot) -> dict[str, str]:
    """Model versions from the manifest, else from the version columns of customer_scores."""
    versions = {str(k): str(v) for k, v in (snap.manifest.get("model_versions") or {}).items()}
    if versions:
        return versions
    scores = table(snap, "customer_scores")
    for model, col in (("clv_model", "clv_model_version"), ("segment_model", "segment_model_version")):
        if scores is not None and col in scores and scores[col].notna().any():
            versions[model] = ", ".join(sorted(scores[col].dropna().astype(str).unique()))
    return versions


def sidebar(snap: Snapshot | None) -> None:
    with st.sidebar:
        if snap is None:
            st.caption("No snapshot published yet.")
            return
        st.caption(
            f"As of **{data.fmt_date(snap.manifest.get('as_of_date'))}**  \n"
            f"Snapshot `{snap.snapshot_id}`"
        )
        versions = model_versions(snap)
        if versions:
            st.caption("  \n".join(f"{k}: v{v}" for k, v in versions.items()))
        if st.button("Check for a new snapshot", icon=":material/refresh:", width="stretch"):
            st.rerun()


def segment_colors(order: list[str]) -> alt.Scale:
    """One colour per segment name, the same on every chart (order = most valuable first)."""
    return alt.Scale(domain=order, scheme="tableau10")


# ---- cached derived views (keyed on the snapshot id; the leading underscore keeps the frame unhashed)

@st.cache_data(max_entries=8, show_spinner=False)
def segment_profiles(snapshot_id: str, _scores: pd.DataFrame) -> pd.DataFrame:
    return data.segment_profiles(_scores)


@st.cache_data(max_entries=8, show_spinner=False)
def segment_order(snapshot_id: str, _scores: pd.DataFrame) -> list[str]:
    return data.segment_order(_scores)


@st.cache_data(max_entries=8, show_spinner=False)
def clv_histogram(snapshot_id: str, _scores: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    return data.clv_histogram(_scores["predicted_clv"])


@st.cache_data(max_entries=8, show_spinner=False)
def clv_by_segment(snapshot_id: str, _scores: pd.DataFrame) -> pd.Series:
    """Total predicted CLV per segment, largest first."""
    return _scores.groupby("segment_name")["predicted_clv"].sum().sort_values(ascending=False)


@st.cache_resource(max_entries=2, show_spinner=False)
def customer_positions(snapshot_id: str, _scores: pd.DataFrame) -> pd.Series:
    """customer_id -> row position, so a lookup does not scan every customer (shared, read-only)."""
    ids = _scores["customer_id"].astype(str)
    return pd.Series(range(len(ids)), index=pd.Index(ids)).loc[lambda s: ~s.index.duplicated()]


def find_customer(snapshot_id: str, scores: pd.DataFrame, customer_id: str) -> pd.Series | None:
    pos = customer_positions(snapshot_id, scores).get(customer_id.strip())
    return None if pos is None else scores.iloc[int(pos)]


@st.cache_data(max_entries=8, show_spinner=False)
def value_concentration(snapshot_id: str, _scores: pd.DataFrame) -> pd.DataFrame:
    clv = np.sort(_scores["predicted_clv"].to_numpy(dtype=float))[::-1]
    total = clv.sum()
    rows = []
    for share in (0.01, 0.10, 0.20, 0.50):
        n = max(1, int(round(share * len(clv))))
        rows.append({"top customers": f"top {share:.0%} ({n:,})",
                     "share of predicted CLV": data.fmt_prob(clv[:n].sum() / total) if total else "–"})
    return pd.DataFrame(rows).set_index("top customers")


@st.cache_data(max_entries=8, show_spinner=False)
def top_customers(snapshot_id: str, _scores: pd.DataFrame, n: int = 5) -> list[str]:
    return _scores.nlargest(n, "predicted_clv")["customer_id"].astype(str).tolist()


@st.cache_data(max_entries=8, show_spinner=False)
def scatter_sample(snapshot_id: str, _scores: pd.DataFrame, n: int) -> pd.DataFrame:
    cols = [c for c in ("customer_id", "segment_name", "predicted_clv", "p_alive") if c in _scores]
    return data.sample_rows(_scores[cols], n)


@st.cache_data(max_entries=8, show_spinner=False)
def history_counts(snapshot_id: str, _history: pd.DataFrame | None) -> pd.DataFrame:
    return data.segment_history_counts(_history)


@st.cache_data(max_entries=8, show_spinner=False)
def migration(snapshot_id: str, _migration, _history) -> tuple[pd.DataFrame, str | None, str | None]:
    return data.migration_matrix(_migration, _history)


@st.cache_data(max_entries=8, show_spinner=False)
def data_quality(snapshot_id: str, _dq: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    dq = data.dq_normalise(_dq)
    return dq, data.dq_partitions(dq)


def warm() -> None:
    """Read the current snapshot and compute the cached views the pages use, so the first visitor after a start
    or a publish does not wait for them (streamlit_app.py runs this in a background thread as the server starts
    and after each publish, through `snapshot.follow`).

    At a million customers that is about 7 s: reading the tables (customer_scores 1.2 s, segment_history
    2.4 s), the segment history counts (2.2 s) and the overview's imports (pandas' Styler loads matplotlib,
    0.8 s). Nothing when no snapshot is published yet; a view this misses is computed by the page that needs
    it."""
    try:
        snap = _reader(str(snapshot_root())).get()
    except Exception:  # none yet, or unreadable: the first page says so (require_snapshot)
        return
    try:
        import pandas.io.formats.style  # noqa: F401  (st.table(df.style) on the overview)

        sid = snap.snapshot_id
        scores = table(snap, "customer_scores")
        if scores is not None and len(scores):
            clv_histogram(sid, scores)
            value_concentration(sid, scores)
            top_customers(sid, scores)
            customer_positions(sid, scores)
            if "segment_name" in scores:
                clv_by_segment(sid, scores)
                segment_order(sid, scores)
                segment_profiles(sid, scores)
                scatter_sample(sid, scores, SCATTER_MAX)
        history = table(snap, "segment_history")
        history_counts(sid, history)
        migration(sid, table(snap, "segment_migration"), history)
        dq = table(snap, "data_quality")
        if dq is not None and len(dq):
            data_quality(sid, dq)
    except Exception:  # a snapshot shaped differently: the page that needs the view shows the error
        log.warning("warming the dashboard caches of snapshot %s stopped", snap.snapshot_id, exc_info=True)
