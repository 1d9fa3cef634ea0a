"""Page scripts run in-process with streamlit.testing AppTest (no browser): empty states and degraded snapshots."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from clv_platform.lib import snapshot
from clv_platform_tests.dashboards.snapshot_fixture import build_tables
from dashboards import data

REPO = Path(__file__).resolve().parents[2]
PAGES = REPO / "dashboards" / "app_pages"
PAGE_FILES = ["overview.py", "customer_lookup.py", "segments.py", "at_risk.py", "data_quality.py"]


def run_app(path: Path, **query) -> AppTest:
    """AppTest run of a script, once more if it hit CPython 3.11's "AST constructor recursion depth mismatch":
    the AST state is shared by threads, so the script thread's parse can fail when another thread of the test
    process parses at the same moment (python/cpython#106905). It is not the script's error, and the rerun is
    checked like the first."""
    for attempt in (1, 2):
        at = AppTest.from_file(str(path), default_timeout=30)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        if attempt == 2 or not any("AST constructor recursion depth mismatch" in str(e.message) for e in at.exception):
            return at


def run_page(name: str, **query) -> AppTest:
    return run_app(PAGES / name, **query)


def texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.title, *at.markdown, *at.caption, *at.info, *at.warning, *at.error,
                               *at.success, *at.subheader)]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLV_SNAPSHOT_ROOT", str(tmp_path / "serving"))
    return tmp_path / "serving"


@pytest.mark.parametrize("page", PAGE_FILES)
def test_no_snapshot_explains_how_to_create_one(root, page):
    at = run_page(page)
    assert not at.exception
    assert at.title[0].value == "No serving snapshot yet"
    assert str(root) in at.warning[0].value
    assert "make run" in texts(at)


def test_router_runs_without_a_snapshot(root):
    at = run_app(REPO / "dashboards" / "streamlit_app.py")
    assert not at.exception
    assert at.title[0].value == "No serving snapshot yet"


def test_customer_lookup_known_unknown_and_suggestions(root):
    tables, manifest = build_tables()
    snapshot.publish(root, tables, manifest)
    row = tables["customer_scores"].iloc[10]

    at = run_page("customer_lookup.py", customer_id=row["customer_id"])
    assert not at.exception
    assert at.subheader[0].value == f"Customer {row['customer_id']}"
    assert at.metric[0].value == data.fmt_money(row["predicted_clv"], 2)
    assert at.metric[3].value == row["segment_name"]
    # the two CLV figures cover different periods, and say so (they were read as one)
    assert at.metric[0].proto.label == "Predicted CLV, 200 d"          # short: a quarter of the page's width
    assert at.metric[1].proto.label == "BTYD CLV, 365 d"
    assert "discounted at 10% a year; not the same period as the predicted CLV" in at.metric[1].proto.help

    features = at.table[0].value["value"]
    assert features["orders"] == f"{row['orders']:,}" and features["frequency (repeat purchase days)"] == str(
        int(row["frequency"])) and features["T (days since first order)"] == str(int(row["T"]))  # counts: integers
    assert features["total spend"] == data.fmt_money(row["total_spend"], 2)                   # money: money
    assert features["avg order value"] == data.fmt_money(row["avg_order_value"], 2)

    # segment_since on the history's first month-end: the run may have begun before the history does
    scores, history = tables["customer_scores"], tables["segment_history"]
    first_month = history["as_of_date"].min()
    later = scores["segment_since"][scores["segment_since"] > first_month].iloc[0]
    for since, shown in ((first_month, f"since {data.fmt_date(first_month)} or earlier"),
                         (later, f"since {data.fmt_date(later)}")):
        one = scores[scores["segment_since"] == since].iloc[0]
        segment = run_page("customer_lookup.py", customer_id=one["customer_id"]).metric[3]
        assert segment.proto.delta == shown, (segment.proto.delta, shown)

    at.text_input(key="lookup_id").input("C99999").run()
    assert not at.exception
    assert "No customer with id C99999 in snapshot" in at.error[0].value
    assert not at.subheader

    at.text_input(key="lookup_id").input("c000001").run()  # partial, lower case: suggestions
    assert "Did you mean" in texts(at) and "C0000010" in texts(at)


def test_snapshot_with_only_customer_scores_degrades_to_messages(root):
    tables, manifest = build_tables()
    snapshot.publish(root, {"customer_scores": tables["customer_scores"]}, manifest | {"metrics": {}})
    runs = {page: run_page(page) for page in PAGE_FILES}
    for page, at in runs.items():
        assert not at.exception, (page, [e.value for e in at.exception])
    assert "no `segment_migration` table" in texts(runs["segments.py"])
    assert "no `segment_history` table" in texts(runs["segments.py"])
    assert "no `data_quality` table" in texts(runs["data_quality.py"])
    assert "no `model_metrics` table" in texts(runs["overview.py"])
    assert runs["overview.py"].metric[0].value == "300"


def test_data_quality_without_load_audit_columns_uses_unexpected_counts(root):
    tables, manifest = build_tables()
    tables["data_quality"] = tables["data_quality"].drop(columns=["rows_read", "rows_loaded", "rows_rejected"])
    snapshot.publish(root, tables, manifest)
    at = run_page("data_quality.py")
    assert not at.exception
    rejected = [m for m in at.metric if m.label == "Rejected rows"][0]
    assert rejected.value == "12"  # 7 + 3 + 2 unexpected rows on the three failing partitions
    assert "Source: unexpected counts." in texts(at)


def test_at_risk_thresholds_follow_the_sliders(root):
    tables, manifest = build_tables()
    scores = tables["customer_scores"]
    # a few valuable lapsed customers who bought on one day only: BG/NBD's P(alive) is 1 for them
    lapsed = scores[scores["segment_name"] == "at risk"].nlargest(5, "total_spend").index
    scores.loc[lapsed, ["frequency", "p_alive"]] = [0, 1.0]
    scores.loc[lapsed[:2], "segment_name"] = "new customers"   # two of them bought recently
    snapshot.publish(root, tables, manifest)
    at = run_page("at_risk.py")
    assert not at.exception
    assert at.metric[0].value == str(len(data.at_risk(scores, "total_spend", 0.8, 0.5)[0]))
    at.slider(key="risk_p_alive").set_value(0.2).run()
    at.selectbox(key="risk_value").set_value("predicted_clv").run()
    assert not at.exception
    assert at.metric[0].value == str(len(data.at_risk(scores, "predicted_clv", 0.8, 0.2)[0]))

    # The one-time buyers: counted under the list while off, listed when switched on.
    at.selectbox(key="risk_value").set_value("total_spend").run()
    bracket = data.one_time_buyers(scores) & (scores["total_spend"] >= scores["total_spend"].quantile(0.8))
    assert bracket.sum() >= 5
    assert f"{bracket.sum()} of the customers in this value bracket bought on one day only" in texts(at)
    assert "not listed (2 of them are new customers, who bought in the last few weeks)" in texts(at)
    at.toggle(key="risk_one_time").set_value(True).run()
    at.number_input(key="risk_silent_days").set_value(150).run()
    assert not at.exception
    with_one_time = data.at_risk(scores, "total_spend", 0.8, 0.2, one_time_silent_days=150)[0]
    silent = bracket & (scores["days_since_last_order"] >= 150)
    assert len(with_one_time) == len(data.at_risk(scores, "total_spend", 0.8, 0.2)[0]) + silent.sum()
    assert silent.sum() >= 5
    assert at.metric[0].value == str(len(with_one_time))
    assert "one purchase day only and silent for 150+ days" in texts(at)


def test_overview_says_how_far_scores_moved_and_warns_on_a_large_shift(root):
    tables, manifest = build_tables()
    manifest["metrics"] = {**manifest["metrics"], "psi.predicted_clv": 0.02, "psi.p_alive": 0.01}
    snapshot.publish(root, tables, manifest)
    at = run_page("overview.py")
    assert not at.exception and not at.warning
    assert "Since the previous scoring (population stability index): predicted CLV 0.020" in texts(at)

    manifest["metrics"]["psi.predicted_clv"] = 0.6
    snapshot.publish(root, tables, manifest)
    at = run_page("overview.py")
    assert not at.exception and "Large shift (> 0.25) in predicted CLV" in at.warning[0].value


def test_unknown_id_is_shown_literally_not_as_markdown():
    typed = "C9`x`*y*_z_[a](b)<i>:red[r]$k$\\"
    assert data.md_escape(typed) == r"C9\`x\`\*y\*\_z\_\[a\]\(b\)\<i\>\:red\[r\]\$k\$\\"


def test_segments_order_value_is_the_mean_order_value(root):
    """'order value' is the mean avg_order_value (every order), not monetary_value (0 for one-time buyers)."""
    tables, manifest = build_tables()
    snapshot.publish(root, tables, manifest)
    at = run_page("segments.py")
    assert not at.exception
    shown = at.table[0].value
    expected = tables["customer_scores"].groupby("segment_name")["avg_order_value"].mean()
    assert shown["order value"].to_dict() == {name: data.fmt_money(v) for name, v in expected.items()}
    assert shown.loc["new customers", "order value"] != "$0"   # bought once: monetary_value is 0


def test_overview_states_the_clv_horizon(root):
    tables, manifest = build_tables()
    snapshot.publish(root, tables, manifest)
    total = run_page("overview.py").metric[1]
    assert total.proto.label == "Predicted CLV, 200 days"      # short enough for a quarter of a wide page
    assert "Total spend expected from these customers over the 200 days after the as-of date" in total.proto.help
    snapshot.publish(root, tables, {k: v for k, v in manifest.items() if k != "clv_horizon_days"})
    total = run_page("overview.py").metric[1]
    assert total.proto.label == "Predicted CLV" and "not recorded in this snapshot" in total.proto.help


def test_data_quality_says_how_many_days_the_snapshot_keeps(root):
    tables, manifest = build_tables()
    snapshot.publish(root, tables, manifest)           # the manifest: last 45 days of 730 validated
    at = run_page("data_quality.py")
    assert "A load that failed its checks since then is not here" in texts(at) and "`clv status`" in texts(at)
    first = at.metric[0]
    assert (first.proto.label, first.value) == ("Validated, last 45 days", "45")
    assert "730 partitions validated in all" in first.proto.help
    snapshot.publish(root, tables, {k: v for k, v in manifest.items() if k != "data_quality"})
    first = run_page("data_quality.py").metric[0]  # an older manifest: the window from the dates
    assert (first.proto.label, first.value) == ("Validated, last 45 days", "45")


def test_warm_leaves_the_views_the_pages_read_cached(root):
    """common.warm (run in the background as the server starts) caches every derived view under the arguments
    the pages pass: each one is answered below without its table (None), which only a cached value can do."""
    from dashboards import common

    common.warm()  # no snapshot yet: nothing to do, no error
    tables, manifest = build_tables()
    snapshot.publish(root, tables, manifest)
    common.warm()
    sid = common.current_snapshot().snapshot_id
    scores = tables["customer_scores"]
    assert common.clv_histogram(sid, None)[0].equals(data.clv_histogram(scores["predicted_clv"])[0])
    assert common.segment_order(sid, None) == data.segment_order(scores)
    assert common.segment_profiles(sid, None).equals(data.segment_profiles(scores))
    assert len(common.scatter_sample(sid, None, common.SCATTER_MAX)) == len(scores)
    assert list(common.clv_by_segment(sid, None).index) == list(
        scores.groupby("segment_name")["predicted_clv"].sum().sort_values(ascending=False).index)
    assert common.top_customers(sid, None) == scores.nlargest(5, "predicted_clv")["customer_id"].tolist()
    assert len(common.value_concentration(sid, None)) == 4
    assert len(common.customer_positions(sid, None)) == len(scores)
    assert common.history_counts(sid, None).equals(data.segment_history_counts(tables["segment_history"]))
    assert not common.migration(sid, None, None)[0].empty
    assert not common.data_quality(sid, None)[1].empty
