"""CLV dashboard: an st.navigation router over dashboards/app_pages/*.py.

Run: `make serve-dashboard` (= streamlit run dashboards/streamlit_app.py). It reads only the serving snapshot
under $CLV_DATA_DIR/serving (or $CLV_SNAPSHOT_ROOT), never the warehouse.
"""

import sys
from pathlib import Path

import streamlit as st

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # `streamlit run` puts only dashboards/ on the path
    sys.path.insert(0, str(_REPO))

from dashboards import common  # noqa: E402

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
page = st.navigation(PAGES)
common.sidebar(common.current_snapshot())
page.run()
