import json
import multiprocessing as mp
import os
import threading
import time

import pandas as pd
import pytest

from clv_platform.lib import snapshot
from clv_platform_tests.lib.waiting import eventually


def _tables(token: str, n: int) -> dict[str, pd.DataFrame]:
    # Every table carries the token of its publish and n rows, so a mixed read is detectable.
    return {
        "customer_scores": pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "token": token}),
        "segment_summary": pd.DataFrame({"segment_name": ["a", "b"], "token": token}),
        "model_metrics": pd.DataFrame({"metric": [f"m{i}" for i in range(n % 7 + 1)], "token": token}),
    }


def _check(snap: snapshot.Snapshot) -> str | None:
    token = snap.manifest["token"]
    if snap.manifest["snapshot_id"] != snap.path.name:
        return f"manifest id {snap.manifest['snapshot_id']} in folder {snap.path.name}"
    for name, expected in snap.manifest["row_counts"].items():
        df = snap.table(name)
        if len(df) != expected:
            return f"{name}: {len(df)} rows, manifest says {expected}"
        if set(df["token"]) != {token}:
            return f"{name}: tokens {set(df['token'])} in snapshot {token}"
    return None


def _reader_loop(root: str, stop, latest, out) -> None:
    reads, errors, seen = 0, [], set()
    cached = snapshot.SnapshotReader(root, preload=None)
    while not stop.is_set():
        try:
            snaps = (snapshot.read_snapshot(snapshot.current_snapshot_dir(root), preload=None), cached.get())
        except snapshot.SnapshotNotFoundError:
            continue  # pruned under a slow reader: an error, never wrong data
        for snap in snaps:
            problem = _check(snap)
            if problem:
                errors.append(problem)
            seen.add(snap.manifest["token"])
            reads += 1
        latest.value = max(latest.value, int(snaps[0].manifest["token"][1:]))
    out.put({"reads": reads, "errors": errors, "seen": sorted(seen)})


def test_publish_writes_tables_manifest_and_pointer(tmp_path):
    path = snapshot.publish(
        tmp_path, _tables("t0", 5), {"as_of_date": "2024-01-31", "model_versions": {"clv_model": "3"}}
    )
    assert path.parent == tmp_path / "snapshots"
    assert os.readlink(tmp_path / "current") == f"snapshots/{path.name}"
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["snapshot_id"] == path.name
    assert manifest["as_of_date"] == "2024-01-31"
    assert manifest["model_versions"] == {"clv_model": "3"}
    assert manifest["row_counts"] == {"customer_scores": 5, "segment_summary": 2, "model_metrics": 6}
    assert manifest["published_at"]
    snap = snapshot.SnapshotReader(tmp_path).get()
    assert snap.snapshot_id == path.name
    assert list(snap.table("customer_scores")["customer_id"]) == [f"c{i}" for i in range(5)]
    with pytest.raises(KeyError, match="no table"):
        snap.table("nope")


def test_reader_without_snapshot_gives_clear_error(tmp_path):
    reader = snapshot.SnapshotReader(tmp_path / "serving")  # constructor opens nothing
    with pytest.raises(snapshot.SnapshotNotFoundError, match="no serving snapshot published yet"):
        reader.get()


def test_a_current_snapshot_deleted_by_hand_is_unreadable_not_never_published(tmp_path):
    import shutil

    path = snapshot.publish(tmp_path, _tables("a", 3), {"token": "a"})
    shutil.rmtree(path)
    with pytest.raises(snapshot.SnapshotUnreadableError, match=f"the current snapshot {path.name} is gone"):
        snapshot.SnapshotReader(tmp_path).get()


def test_reader_caches_until_the_pointer_moves(tmp_path):
    snapshot.publish(tmp_path, _tables("a", 3), {"token": "a"})
    reader = snapshot.SnapshotReader(tmp_path)
    first = reader.get()
    assert reader.get() is first and reader.reloads == 1
    snapshot.publish(tmp_path, _tables("b", 4), {"token": "b"})
    second = reader.get()
    assert second is not first and second.manifest["token"] == "b" and reader.reloads == 2
    assert len(second.table("customer_scores")) == 4


def test_keeps_only_the_last_n_snapshots(tmp_path):
    ids = [snapshot.publish(tmp_path, _tables(str(i), 2), {}, keep=3).name for i in range(6)]
    assert snapshot.list_snapshots(tmp_path) == ids[-3:]
    assert snapshot.current_snapshot_dir(tmp_path).name == ids[-1]
    assert not [p for p in (tmp_path / "snapshots").iterdir() if p.name.startswith(".")]


def test_prune_removes_stale_leftovers_of_crashed_publishes(tmp_path):
    snapshot.publish(tmp_path, _tables("a", 1), {})
    stale, fresh = tmp_path / "snapshots" / ".tmp-old", tmp_path / "snapshots" / ".tmp-new"
    stale.mkdir()
    fresh.mkdir()
    os.symlink("snapshots/x", tmp_path / ".current.tmp-1-abc")
    old = time.time() - 2 * snapshot.STALE_TMP_SECONDS
    os.utime(stale, (old, old))
    os.utime(tmp_path / ".current.tmp-1-abc", (old, old), follow_symlinks=False)
    snapshot.prune(tmp_path)
    assert not stale.exists() and fresh.exists() and not os.path.lexists(tmp_path / ".current.tmp-1-abc")


def _wait_for(predicate, timeout: float = 60.0) -> None:
    assert eventually(predicate, timeout, interval=0.01), "the reader process did not keep up"


def test_reader_in_another_process_never_sees_a_partial_or_mixed_snapshot(tmp_path):
    snapshot.publish(tmp_path, _tables("p0", 50), {"token": "p0"}, keep=3)
    ctx = mp.get_context("spawn")
    stop, out, latest = ctx.Event(), ctx.Queue(), ctx.Value("i", -1)
    proc = ctx.Process(target=_reader_loop, args=(str(tmp_path), stop, latest, out))
    proc.start()
    try:
        _wait_for(lambda: latest.value >= 0)  # the spawned reader is looping
        for i in range(1, 11):
            snapshot.publish(tmp_path, _tables(f"p{i}", 50 + i * 100), {"token": f"p{i}"}, keep=3)
            _wait_for(lambda i=i: latest.value >= i)  # it read this one before the next publish
    finally:
        stop.set()
        result = out.get(timeout=60)
        proc.join(timeout=30)
    assert result["errors"] == []
    assert result["seen"] == sorted(f"p{i}" for i in range(11))  # it read every one of the 10 publishes
    assert result["reads"] >= 22


def test_reader_thread_during_publishes(tmp_path):
    snapshot.publish(tmp_path, _tables("t0", 10), {"token": "t0"}, keep=2)
    reader = snapshot.SnapshotReader(tmp_path, preload=None)
    errors, stop = [], threading.Event()

    def loop():
        while not stop.is_set():
            problem = _check(reader.get())
            if problem:
                errors.append(problem)

    thread = threading.Thread(target=loop)
    thread.start()
    for i in range(1, 11):
        snapshot.publish(tmp_path, _tables(f"t{i}", 10 + i), {"token": f"t{i}"}, keep=2)
    stop.set()
    thread.join()
    assert errors == []
    assert reader.get().manifest["token"] == "t10"
