"""The dashboard in a real headless Chromium against `streamlit run` on a fixture snapshot.

Every page is visited and checked for real content computed from the fixture tables and for the absence of
Streamlit exception boxes. Screenshots of the main pages: refresh the committed ones with
`CLV_UPDATE_SCREENSHOTS=1 .venv/bin/pytest clv_platform_tests/dashboards -m browser` (docs/screenshots/).
"""

import io
from datetime import date

import pandas as pd
import pytest
from PIL import Image

from clv_platform.lib import snapshot
from clv_platform_tests.dashboards.snapshot_fixture import build_tables
from clv_platform_tests.lib.waiting import eventually
from dashboards import data

pytestmark = pytest.mark.browser

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
# every chart drawn and no placeholder of a lazily loaded element left
RENDERED = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
    .every(e => e.querySelector('svg, canvas')) && !document.querySelector('[data-testid="stSkeleton"]')"""


def _expect():
    from playwright.sync_api import expect

    return expect


def assert_no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, "Streamlit exception on the page:\n" + "\n".join(boxes.all_inner_texts())


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("h1")
    page.wait_for_selector(IDLE)
    assert_no_exception(page)


def metric_values(page, count: int) -> list[str]:
    """The texts of the page's st.metric values, once ``count`` of them are rendered."""
    metrics = page.locator('[data-testid="stMetricValue"]')
    _expect()(metrics).to_have_count(count)
    return [t.strip() for t in metrics.all_inner_texts()]


def shown_labels(chart) -> set[str]:
    """The texts a Vega chart shows (Vega hides overlapping axis labels with opacity 0, leaving them in the SVG)."""
    return set(chart.locator("svg text").evaluate_all(
        "els => els.filter(e => e.getAttribute('opacity') !== '0').map(e => e.textContent.trim())"))


def screenshot(page, directory, name: str) -> None:
    """Full-height screenshot of the main column (Streamlit scrolls inside the app, not the document)."""
    page.wait_for_function(RENDERED)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 60, 3000)})
    page.wait_for_timeout(400)  # let charts re-lay out to the new size
    page.wait_for_function(RENDERED)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 900})
    # 128-colour palette: a third of the size, no visible loss on a UI screenshot
    Image.open(path).convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)


def test_overview_shows_kpis_versions_distribution_and_model_metrics(page, app_url, published, screenshot_dir):
    _, tables, manifest = published
    scores = tables["customer_scores"]
    expect = _expect()
    open_page(page, app_url + "/")
    expect(page.locator("h1")).to_have_text("Customer lifetime value")
    expect(page.locator('[data-testid="stMetricValue"]').first).to_have_text("300")
    values = metric_values(page, 4)
    assert values == [
        f"{len(scores):,}",
        data.fmt_money(scores["predicted_clv"].sum()),
        data.fmt_prob(scores["p_alive"].mean()),
        manifest["as_of_date"],
    ]
    main = page.locator('[data-testid="stMain"]')
    expect(main).to_contain_text("clv_model v3")
    expect(main).to_contain_text("segment_model v2")
    expect(page.locator('[data-testid="stVegaLiteChart"]')).to_have_count(1)
    metrics = page.locator('[data-testid="stTable"]').filter(has_text="Normalized Gini")
    expect(metrics).to_contain_text("0.731")  # CLV model
    expect(metrics).to_contain_text("0.671")  # BTYD
    expect(metrics.locator("tr", has_text="Total bias")).to_contain_text("-17.0%")
    expect(metrics.locator("tr", has_text="MAE")).to_contain_text("24.90")  # the median forecast's column
    expect(main).to_contain_text("clv_model_median is the CLV model's median forecast")
    screenshot(page, screenshot_dir, "overview")
    assert_no_exception(page)

    # the sidebar navigation switches pages and their addresses
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Segments", exact=True).click()
    expect(page.locator("h1")).to_have_text("Segments")
    assert page.url.endswith("/segments")
    page.wait_for_selector(IDLE)
    assert_no_exception(page)


def test_customer_lookup_typed_unknown_and_deep_link(page, app_url, published, screenshot_dir):
    scores = published[1]["customer_scores"]
    row = scores.sort_values("predicted_clv", ascending=False).iloc[3]
    expect = _expect()
    open_page(page, app_url + "/customer")
    box = page.get_by_label("Customer id", exact=True)
    box.fill(row["customer_id"])
    box.press("Enter")
    expect(page.locator("h3", has_text="Customer ")).to_have_text(f"Customer {row['customer_id']}")
    metrics = page.locator('[data-testid="stMetricValue"]')
    expect(metrics.first).to_have_text(data.fmt_money(row["predicted_clv"], 2))
    values = metric_values(page, 8)  # 4 scores + expected purchases 30/90/365 d + days since last order
    assert values[1] == data.fmt_money(row["btyd_clv"], 2)
    assert values[2] == data.fmt_prob(row["p_alive"])
    assert values[3] == row["segment_name"]
    main = page.locator('[data-testid="stMain"]')
    expect(main).to_contain_text(
        f"{data.fmt_money(row['predicted_clv_p10'], 2)} – {data.fmt_money(row['predicted_clv_p90'], 2)}")
    expect(main).to_contain_text(f"since {data.fmt_date(row['segment_since'])}")
    features = page.locator('[data-testid="stTable"]').filter(has_text="total spend")
    expect(features.locator("tr", has_text="total spend")).to_contain_text(data.fmt_money(row["total_spend"], 2))
    expect(features.locator("tr", has_text="orders")).to_contain_text(f"{row['orders']:,}")
    assert page.url.endswith(f"customer_id={row['customer_id']}")
    assert_no_exception(page)

    # an unknown id is shown as typed, whatever markdown it holds
    typed = "C99`x`*y* _z_ [a](b) <i>i</i> :red[r] $k$"
    box.fill(typed)
    box.press("Enter")
    error = page.locator('[data-testid="stAlertContentError"]')
    expect(error).to_contain_text(f"No customer with id {typed} in snapshot")
    assert page.locator("h3", has_text="Customer C").count() == 0
    assert_no_exception(page)

    # Back returns to the customer looked up before (each lookup is a history entry), Forward to the unknown id
    page.go_back()
    expect(page.locator("h3", has_text="Customer ")).to_have_text(f"Customer {row['customer_id']}")
    expect(box).to_have_value(row["customer_id"])
    assert page.url.endswith(f"customer_id={row['customer_id']}")
    page.go_forward()
    expect(error).to_contain_text(f"No customer with id {typed} in snapshot")
    page.wait_for_selector(IDLE)
    assert_no_exception(page)

    # deep link: /customer?customer_id=... opens the customer directly, with the monthly segment history
    loyal = scores[scores["segment_name"] == "loyal"].iloc[0]
    open_page(page, f"{app_url}/customer?customer_id={loyal['customer_id']}")
    expect(page.locator("h3", has_text="Customer ")).to_have_text(f"Customer {loyal['customer_id']}")
    history = page.locator('[data-testid="stTable"]').filter(has_text="month")
    expect(history).to_contain_text("2026-06-30")
    expect(history.locator("th", has_text="median forecast")).to_have_count(1)
    screenshot(page, screenshot_dir, "customer_lookup")
    assert_no_exception(page)


def test_segments_page_lists_every_segment_with_charts(page, app_url, published, screenshot_dir):
    scores = published[1]["customer_scores"]
    expect = _expect()
    open_page(page, app_url + "/segments")
    profiles = page.locator('[data-testid="stTable"]').first
    counts = scores["segment_name"].value_counts()
    for name, n in counts.items():
        expect(profiles.locator("tr", has_text=name).first).to_contain_text(f"{n:,}")
    # sizes x2, scatter, migration heatmap, history
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    expect(charts).to_have_count(5)
    page.wait_for_function(RENDERED)
    for sizes in (charts.nth(0), charts.nth(1)):  # every bar labelled with its segment name
        assert set(counts.index) <= shown_labels(sizes)
    mig = published[1]["segment_migration"]
    last = mig[mig["to_month"] == mig["to_month"].max()]
    expect(page.locator('[data-testid="stMain"]')).to_contain_text(
        f"From {last['from_month'].iloc[0]} to {last['to_month'].iloc[0]}")
    screenshot(page, screenshot_dir, "segments")
    assert_no_exception(page)


def test_at_risk_table_and_csv_download(page, app_url, published, screenshot_dir):
    scores = published[1]["customer_scores"]
    expected, _ = data.at_risk(scores, "total_spend", 0.8, 0.5)
    assert len(expected) > 5
    expect = _expect()
    open_page(page, app_url + "/at-risk")
    expect(page.locator('[data-testid="stMetricValue"]').first).to_have_text(str(len(expected)))
    expect(page.locator('[data-testid="stDataFrame"]')).to_have_count(1)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == "at_risk_customers_2026-06-30.csv"
    csv = pd.read_csv(io.StringIO(open(download.path()).read()))
    assert list(csv["customer_id"]) == list(expected["customer_id"])
    assert (csv["p_alive"] < 0.5).all()
    screenshot(page, screenshot_dir, "at_risk")
    assert_no_exception(page)


def test_data_quality_history_and_partition_detail(page, app_url, published, screenshot_dir):
    dq = published[1]["data_quality"]
    failing = dq[~dq["success"]]
    expect = _expect()
    open_page(page, app_url + "/data-quality")
    assert metric_values(page, 4) == [
        str(dq["partition_date"].nunique()),
        str(dq.groupby(["expectation", "column_name"], dropna=False).ngroups),
        str(failing["partition_date"].nunique()),
        str(int(dq.groupby("partition_date")["rows_rejected"].max().sum())),
    ]
    latest = failing.sort_values("partition_date").iloc[-1]
    detail = page.locator('[data-testid="stTable"]').last
    row = detail.locator("tr", has_text=latest["column_name"])
    expect(row).to_contain_text("FAIL")
    # check names are shortened: GX's "expect_column_values_to_" and the shared "transactions_" go
    expect(row).to_contain_text("have_plausible_quantities_and_prices: be_between")
    expect(page.locator('[data-testid="stMain"]')).to_contain_text(
        f"Load audit: {latest['rows_read']} rows read, {latest['rows_loaded']} loaded, "
        f"{latest['rows_rejected']} rejected.")
    expect(row).to_contain_text(str(latest["unexpected_count"]))
    expect(detail.locator("tr", has_text="customer_id")).to_contain_text("pass")
    expect(page.locator('[data-testid="stVegaLiteChart"]')).to_have_count(2)  # pass/fail grid, rejected rows
    screenshot(page, screenshot_dir, "data_quality")
    assert_no_exception(page)


def _logged(log, text: str) -> bool:
    return eventually(lambda: text in log.read_text(), interval=0.2)


def test_new_snapshot_is_picked_up_without_restart(page, app_server, published):
    """Publishing while the app runs: the server reads the new snapshot and fills the pages' views before anyone
    asks (its follow thread logs it), and the next rerun (button) and a reload show the new as-of date."""
    app_url, log = app_server
    root, tables, manifest = published
    expect = _expect()
    open_page(page, app_url + "/")
    as_of = page.locator('[data-testid="stMetricValue"]').nth(3)
    expect(as_of).to_have_text("2026-06-30")
    assert _logged(log, f"snapshot {snapshot.current_snapshot_id(root)} read ahead"), log.read_text()[-3000:]
    new_tables, new_manifest = build_tables(as_of=date(2026, 7, 31), seed=8)
    try:
        new = snapshot.publish(root, new_tables, new_manifest)
        assert _logged(log, f"snapshot {new.name} read ahead"), log.read_text()[-3000:]
        page.get_by_role("button", name="Check for a new snapshot").click()
        expect(as_of).to_have_text("2026-07-31")
        expect(page.locator('[data-testid="stMetricValue"]').nth(1)).to_have_text(
            data.fmt_money(new_tables["customer_scores"]["predicted_clv"].sum()))
        open_page(page, app_url + "/at-risk")  # a new session on another page
        caption = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]').first
        expect(caption).to_contain_text("Snapshot as of 2026-07-31")
        assert_no_exception(page)
    finally:
        snapshot.publish(root, tables, manifest)  # leave the module's snapshot as the other tests expect it


def test_size_bars_name_every_segment_with_three_segments(page, app_url, published):
    """Three segments as in the `make run` demo: the short bar charts used to hide the middle bar's name."""
    root, tables, manifest = published
    three = {"champions": "loyal", "loyal": "loyal", "new customers": "need attention", "at risk": "need attention",
             "hibernating": "hibernating"}
    scores = tables["customer_scores"].assign(segment_name=tables["customer_scores"]["segment_name"].map(three))
    try:
        snapshot.publish(root, {**tables, "customer_scores": scores}, manifest)
        open_page(page, app_url + "/segments")
        charts = page.locator('[data-testid="stVegaLiteChart"]')
        page.wait_for_function(RENDERED)
        for sizes in (charts.nth(0), charts.nth(1)):
            assert {"loyal", "need attention", "hibernating"} <= shown_labels(sizes)
        assert_no_exception(page)
    finally:
        snapshot.publish(root, tables, manifest)


def test_metric_values_are_not_cut_at_1280_pixels(page, app_url, published):
    """At 1280 px Streamlit's fixed metric size cut the overview's as-of date to "2026-06…"."""
    page.set_viewport_size({"width": 1280, "height": 900})
    try:
        for path in ("/", "/customer?customer_id=" + published[1]["customer_scores"]["customer_id"].iloc[0], "/data-quality"):
            open_page(page, app_url + path)
            page.wait_for_function(RENDERED)
            cut = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMetricValue"]')]
                .map(e => { const d = e.querySelector('div') || e; return [e.innerText, d.scrollWidth, d.clientWidth]; })
                .filter(([text, scroll, client]) => scroll > client)""")
            assert page.locator('[data-testid="stMetricValue"]').count() and cut == [], (path, cut)
    finally:
        page.set_viewport_size({"width": 1400, "height": 900})
