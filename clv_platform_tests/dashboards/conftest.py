"""Fixtures for the dashboard tests: a published fixture snapshot, a live `streamlit run`, headless Chromium."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from clv_platform_tests.dashboards.snapshot_fixture import publish_fixture

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboards" / "streamlit_app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"streamlit not healthy after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A snapshot root with the fixture snapshot published: (root, tables, manifest)."""
    root = tmp_path_factory.mktemp("dash") / "serving"
    _, tables, manifest = publish_fixture(root)
    return root, tables, manifest


@pytest.fixture(scope="module")
def app_server(published, tmp_path_factory):
    """`streamlit run dashboards/streamlit_app.py` on a free port, reading the fixture snapshot root: (url, log
    file). It looks for a new snapshot every 0.2 s (5 s by default)."""
    root = published[0]
    work = tmp_path_factory.mktemp("streamlit")
    port = _free_port()
    env = dict(os.environ)
    env.update(
        CLV_DATA_DIR=str(work / "data"),  # nothing under ./data is touched
        CLV_SNAPSHOT_ROOT=str(root),
        HOME=str(work),  # streamlit keeps its credentials file under ~/.streamlit
        PYTHONUNBUFFERED="1",
        CLV_SNAPSHOT_POLL_SECONDS="0.2",
    )
    log = work / "streamlit.log"
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
        "--server.fileWatcherType", "none",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def app_url(app_server):
    return app_server[0]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install it with `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    """Where the browser tests save page screenshots.

    The committed ones in docs/screenshots/ are refreshed only on request (CLV_UPDATE_SCREENSHOTS=1), because
    every run differs (snapshot id, publish time) and would leave tracked files modified; otherwise they go to
    CLV_SCREENSHOT_DIR or a temporary folder.
    """
    if os.environ.get("CLV_UPDATE_SCREENSHOTS") == "1":
        return DOCS_SCREENSHOTS
    if os.environ.get("CLV_SCREENSHOT_DIR"):
        return Path(os.environ["CLV_SCREENSHOT_DIR"])
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    context.close()


@pytest.fixture(autouse=True)
def restore_main_module():
    """Streamlit's AppTest leaves ``sys.modules["__main__"]`` pointing at the page it ran; multiprocessing's
    spawn would then re-run that page in every child process started by later tests. Put it back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main
