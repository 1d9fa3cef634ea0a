"""CLV dashboard: an st.navigation router over dashboards/app_pages/*.py.

Run: `make serve-dashboard` (= streamlit run dashboards/streamlit_app.py). It reads only the serving snapshot
under $CLV_DATA_DIR/serving (or $CLV_SNAPSHOT_ROOT), never the warehouse.

This file has two roles. Streamlit runs it as the script of every page view (``__name__ == "__main__"``, as
AppTest does too): the router below. `streamlit run` first finds the ``st.App`` at the bottom and imports this
file as a module to serve it; that app's lifespan starts a background thread that runs common.warm as the
server starts and again after each publish (`snapshot.follow`, like the API's gunicorn.conf.py), so no page waits
for a snapshot to be read and the cached views computed: at a million customers that took the first page after a
start from about 8 s to about 3 s, what a new browser tab takes on any page (later pages 1-2 s).
"""

import sys
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # `streamlit run` puts only dashboards/ on the path
    sys.path.insert(0, str(_REPO))

if __name__ == "__main__":  # a page view
    from dashboards import common

    PAGES_DIR = Path(__file__).resolve().parent / "app_pages"

    # url_path of each page = its address: http://host:port/<url_path>; the default page (Overview) is at /
    PAGES = [
        st.Page(PAGES_DIR / "overview.py", title="Overview", icon=":material/dashboard:", url_path="overview",
                default=True),
        st.Page(PAGES_DIR / "customer_lookup.py", title="Customer lookup", icon=":material/person_search:",
                url_path="customer"),
        st.Page(PAGES_DIR / "segments.py", title="Segments", icon=":material/donut_small:", url_path="segments"),
        st.Page(PAGES_DIR / "at_risk.py", title="At-risk customers", icon=":material/warning:", url_path="at-risk"),
        st.Page(PAGES_DIR / "data_quality.py", title="Data quality", icon=":material/fact_check:",
                url_path="data-quality"),
    ]

    st.set_page_config(page_title="CLV platform", page_icon="📈", layout="wide")
    # A metric's value shrinks with the window down to a floor: at 1280 px Streamlit's fixed size cut the
    # overview's "2026-11-24" and a seven-digit "$1,925,764" to "2026-11…".
    st.html("<style>[data-testid='stMetricValue'] > div {font-size: clamp(1.5rem, 2.3vw, 2.25rem);}</style>")
    page = st.navigation(PAGES)
    common.sidebar(common.current_snapshot())
    page.run()
else:  # imported by `streamlit run` to serve the app
    def _follow(stop: threading.Event) -> None:
        # imported here, once the runtime exists (its st.cache_* decorators look for it), and off the event loop
        from streamlit.logger import get_logger

        from clv_platform.lib import snapshot
        from dashboards import common

        get_logger("clv_platform")  # our INFO lines ("snapshot … read ahead") in the server's log, as Streamlit's
        snapshot.follow(common.snapshot_root(), common.warm, stop)

    @asynccontextmanager
    async def _warm_at_start(_app):
        # a daemon thread, so the server answers at once; a page opened before it is done waits for the values
        # it is computing rather than computing them again (st.cache_* lock each value while it is computed)
        stop = threading.Event()
        threading.Thread(target=_follow, args=(stop,), name="clv-dashboard-follow", daemon=True).start()
        yield
        stop.set()

    app = st.App(__file__, lifespan=_warm_at_start)
