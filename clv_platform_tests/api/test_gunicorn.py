"""The API under a real gunicorn (2 workers) on a free localhost port, over HTTP, with snapshot swaps."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from clv_platform_tests.api.helpers import publish_fake
from clv_platform_tests.lib.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "serving"
    port = _free_port()
    env = {**os.environ, "CLV_SNAPSHOT_ROOT": str(root), "CLV_DATA_DIR": str(tmp_path),
           "CLV_SNAPSHOT_POLL_SECONDS": "0.2"}
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen(
        [str(GUNICORN), "--workers", "2", "--bind", f"127.0.0.1:{port}", "--timeout", "60", "api:create_app()"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{base}/health", timeout=10)
            break
        except requests.RequestException:  # not listening yet, or the worker is still importing
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError((tmp_path / "gunicorn.log").read_text()) from None
            time.sleep(0.2)
    try:
        yield base, root, tmp_path / "gunicorn.log"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _read_ahead_by_both_workers(log: Path, snapshot_id: str) -> bool:
    """Both workers logged reading `snapshot_id` in their follow thread (gunicorn.conf.py)."""
    return eventually(lambda: log.read_text().count(f"snapshot {snapshot_id} read ahead of the requests") >= 2,
                      interval=0.2)


def test_gunicorn_serves_the_snapshot_and_picks_up_swaps(server):
    base, root, log = server
    session = requests.Session()

    # Started before any snapshot exists: healthy process, 503 with a clear message.
    resp = session.get(f"{base}/health", timeout=30)
    assert resp.status_code == 503 and "no serving snapshot" in resp.json()["message"]

    first = publish_fake(root, "1", clv_factor=1.0)
    for _ in range(20):  # several requests so both workers answer
        resp = session.get(f"{base}/health", timeout=30, headers={"Connection": "close"})
        assert resp.status_code == 200 and resp.json()["snapshot_id"] == first.name
    resp = requests.post(f"{base}/predict", json={"customer_ids": ["00004", "ghost"]}, timeout=30)
    assert resp.status_code == 200
    body = resp.json()
    assert body["predictions"][0]["predicted_clv"] == 4.0 and body["unknown_ids"] == ["ghost"]
    bad = requests.post(f"{base}/predict", json={"customer_ids": [1]}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_id"
    # Bodies gunicorn hands over as they come: a lone surrogate, an oversized body (refused unread), deep nesting.
    raw = requests.post(f"{base}/predict", data=b'{"customer_ids": ["\\ud800"]}', timeout=30,
                        headers={"Content-Type": "application/json"})
    assert raw.status_code == 400 and "index 0" in raw.json()["message"]
    big = requests.post(f"{base}/predict", json={"customer_ids": ["x" * 5_000_000]}, timeout=30)
    assert big.status_code == 413 and big.json()["error"] == "body_too_large"
    chunks = (b'{"customer_ids": ["' if i == 0 else b"x" * 1_000_000 for i in range(6))   # no Content-Length
    chunked = requests.post(f"{base}/predict", data=chunks, timeout=30, headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413 and chunked.json()["error"] == "body_too_large"
    deep = requests.post(f"{base}/predict", data=b"[" * 100_000 + b"]" * 100_000, timeout=30,
                         headers={"Content-Type": "application/json"})
    assert deep.status_code == 400 and deep.json()["error"] == "invalid_json"
    # A long id in the path reaches the app up to gunicorn.conf.py's request line (8,190 bytes, not 4,094)
    long_id = requests.get(f"{base}/customers/{'x' * 6000}", timeout=30)
    assert long_id.status_code == 404 and long_id.json()["error"] == "unknown_customer"
    too_long = requests.get(f"{base}/customers/{'x' * 9000}", timeout=30)
    assert too_long.status_code == 400 and "Request Line is too large" in too_long.text    # gunicorn's, documented

    # Swap while serving: each worker reads the new snapshot before any request asks for it, and every later
    # request, whichever worker takes it, sees the new manifest.
    second = publish_fake(root, "2", n=80, clv_factor=10.0)
    assert _read_ahead_by_both_workers(log, second.name), log.read_text()[-3000:]
    for _ in range(20):
        resp = requests.get(f"{base}/health", timeout=30)
        assert resp.json()["snapshot_id"] == second.name and resp.json()["customers"] == 80
        pred = requests.post(f"{base}/predict", json={"customer_ids": ["00004", "00080"]}, timeout=30).json()
        assert [p["predicted_clv"] for p in pred["predictions"]] == [40.0, 800.0]
        assert pred["model_versions"]["clv_model"] == "2"
    assert requests.get(f"{base}/customers/00080", timeout=30).json()["customer"]["clv_model_version"] == "2"
    assert requests.get(f"{base}/segments", timeout=30).json()["customers"] == 80
    top = requests.get(f"{base}/customers", params={"sort": "-predicted_clv", "limit": 2}, timeout=30).json()
    assert top["total"] == 80 and [c["customer_id"] for c in top["customers"]] == ["00080", "00079"]


def test_workers_read_the_snapshot_before_their_first_request(tmp_path, monkeypatch):
    """gunicorn.conf.py's post_worker_init hook (gunicorn reads it from the repo root) starts a thread that warms
    a worker's store in the background, now and after each publish; with nothing published it just returns."""
    import runpy
    import types

    from api import create_app

    monkeypatch.setenv("CLV_SNAPSHOT_POLL_SECONDS", "0.05")
    hook = runpy.run_path(str(REPO / "gunicorn.conf.py"))["post_worker_init"]
    empty = create_app(snapshot_root=tmp_path / "none")
    empty.extensions["clv_snapshot"].warm()            # no snapshot yet: nothing, no error
    assert empty.extensions["clv_snapshot"]._view is None

    first = publish_fake(tmp_path / "serving", "1")
    app = create_app(snapshot_root=tmp_path / "serving")
    store = app.extensions["clv_snapshot"]
    before = set(threading.enumerate())
    hook(types.SimpleNamespace(wsgi=app))
    started = set(threading.enumerate()) - before

    def warmed(snapshot_id: str) -> bool:
        def done() -> bool:
            view = store._view
            return view is not None and view.snapshot.snapshot_id == snapshot_id and "_id_rank" in vars(view)
        return eventually(done)

    try:
        assert warmed(first.name)
        second = publish_fake(tmp_path / "serving", "2", n=80)
        assert warmed(second.name)                      # read with no request asking for it
    finally:
        store.stop_following()
        for thread in started:
            thread.join(timeout=30)
    assert not any(t.is_alive() for t in started)
