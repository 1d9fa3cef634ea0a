"""dashboards/data.py: the pandas views behind the pages, on the fixture tables and on variants of their shape."""

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from clv_platform_tests.dashboards.snapshot_fixture import DQ_FAILURES, EXPECTATIONS, build_tables
from dashboards import data


@pytest.fixture(scope="module")
def tables():
    return build_tables()[0]


def test_formatting():
    assert data.fmt_money(1234567.891) == "$1,234,568"
    assert data.fmt_money(-12.5, 2) == "-$12.50"
    assert data.fmt_money(float("nan")) == "–"
    assert data.fmt_int(1234.4) == "1,234"
    assert data.fmt_prob(0.5351) == "53.5%"
    assert data.fmt_num(3) == "3" and data.fmt_num(3.14159) == "3.14" and data.fmt_num(np.int64(7)) == "7"
    assert data.fmt_date(pd.Timestamp("2026-06-30 12:00")) == "2026-06-30"
    assert data.fmt_date(None) == "–"
    assert data.fmt_period("2026-05") == "2026-05"
    assert data.fmt_period(date(2026, 5, 31)) == "2026-05-31"


def test_kpis_and_histogram(tables):
    scores = tables["customer_scores"]
    k = data.kpis(scores)
    assert k["customers"] == 300
    assert math.isclose(k["total_predicted_clv"], scores["predicted_clv"].sum())
    assert math.isclose(k["mean_p_alive"], scores["p_alive"].mean())
    hist, clipped = data.clv_histogram(scores["predicted_clv"], bins=20)
    assert len(hist) == 20 and hist["customers"].sum() == 300
    assert clipped == int((scores["predicted_clv"] > np.quantile(scores["predicted_clv"], 0.99)).sum())
    empty, n = data.clv_histogram(pd.Series([], dtype=float))
    assert empty.empty and n == 0


def test_metrics_table_long_form(tables):
    m = data.metrics_table(tables["model_metrics"])
    assert list(m.columns) == ["better", "clv_model", "clv_model_median", "btyd", "naive"]
    assert list(m.index)[:2] == ["Normalized Gini", "Top-10% capture"]
    assert m.loc["MAE", "btyd"] == 32.7 and m.loc["MAE", "better"] == "lower"
    assert "silhouette" not in " ".join(m.index)
    other = data.other_metrics(tables["model_metrics"])
    assert other.to_dict("records") == [{"model": "segment_model", "metric": "silhouette", "value": 0.41}]


def test_metrics_table_wide_and_prefixed_names_and_manifest():
    wide = pd.DataFrame({"model": ["btyd", "clv_model"], "mae": [32.7, 28.0], "normalized_gini": [0.67, 0.72]})
    m = data.metrics_table(wide)
    assert list(m.columns) == ["better", "clv_model", "btyd"] and m.loc["Normalized Gini", "clv_model"] == 0.72
    # one MLflow run per registered model, baselines logged with a prefix
    prefixed = pd.DataFrame({
        "model": ["clv_model"] * 4,
        "metric": ["normalized_gini", "btyd_normalized_gini", "naive.mae", "mae_btyd"],
        "value": [0.72, 0.67, 41.0, 32.7],
    })
    m = data.metrics_table(prefixed)
    assert m.loc["Normalized Gini", "clv_model"] == 0.72 and m.loc["Normalized Gini", "btyd"] == 0.67
    assert m.loc["MAE", "naive"] == 41.0 and m.loc["MAE", "btyd"] == 32.7
    # what lib/scoring publishes: the split rows plus run-level extras that are not model comparisons
    extra = pd.DataFrame({"model": ["clv_model", "clv_model"], "metric": ["holdout_normalized_gini", "mae"],
                          "value": [0.74, 125.4]})
    m = data.metrics_table(extra)
    assert list(m.columns) == ["better", "clv_model"] and list(m.index) == ["MAE"]
    assert data.other_metrics(extra)["metric"].tolist() == ["holdout_normalized_gini"]
    m = data.metrics_table(None, {"customers": 300, "clv_model.normalized_gini": 0.7, "top10_capture": 0.5})
    assert list(m.index) == ["Normalized Gini", "Top-10% capture"] and list(m.columns) == ["better", "clv_model"]
    assert data.metrics_table(None, None).empty


def test_segment_profiles_and_order(tables):
    scores = tables["customer_scores"]
    order = data.segment_order(scores)
    assert order[0] == "champions" and order[-1] == "hibernating"
    p = data.segment_profiles(scores)
    assert list(p.index) == order
    assert p["customers"].sum() == 300 and math.isclose(p["share"].sum(), 1.0)
    assert p.loc["loyal", "customers"] == 75
    assert math.isclose(p.loc["at risk", "mean_p_alive"],
                        scores.loc[scores["segment_name"] == "at risk", "p_alive"].mean())


def test_migration_from_table_picks_the_last_month_pair(tables):
    mig, frm, to = data.migration_matrix(tables["segment_migration"])
    assert (frm, to) == ("2026-05", "2026-06")
    assert mig["customers"].sum() == 300  # everybody is in both of the last two months
    assert set(mig.columns) == {"from_segment", "to_segment", "customers"}


def test_migration_falls_back_to_per_customer_history(tables):
    hist = tables["segment_history"]
    mig, frm, to = data.migration_matrix(None, hist)
    assert (frm, to) == ("2026-05-31", "2026-06-30")
    direct, _, _ = data.migration_matrix(tables["segment_migration"])
    key = ["from_segment", "to_segment"]
    pd.testing.assert_frame_equal(mig.sort_values(key).reset_index(drop=True),
                                  direct.sort_values(key).reset_index(drop=True), check_dtype=False)
    assert data.migration_matrix(None, None)[0].empty


def test_migration_note_counts_customers_leaving_new_customers_apart_and_says_where_the_first_seen_went():
    mig = pd.DataFrame({
        "from_segment": ["loyal", "loyal", "new customers", "new customers", "(first seen)", "(first seen)",
                         "hibernating"],
        "to_segment": ["loyal", "hibernating", "loyal", "one-time buyers", "new customers", "loyal", "(gone)"],
        "customers": [800, 100, 30, 70, 90, 10, 5],
    })
    mig, _, _ = data.migration_matrix(mig)
    assert data.migration_note(mig) == (
        '100 of 1,000 customers present in both months (10.0%) changed segment, not counting the 100 who left '
        '"new customers" (every new customer moves on). 100 customers first seen: 90 to new customers, 10 to '
        'loyal. 5 gone.')
    plain = mig[mig["from_segment"] == "loyal"]
    assert data.migration_note(plain) == "100 of 900 customers present in both months (11.1%) changed segment."


def test_segment_history_counts_per_customer_and_aggregated(tables):
    counts = data.segment_history_counts(tables["segment_history"])
    assert counts["month"].nunique() == 6
    last = counts[counts["month"] == counts["month"].max()].set_index("segment")["customers"]
    assert last.to_dict() == tables["customer_scores"]["segment_name"].value_counts().to_dict()
    agg = pd.DataFrame({"month": ["2026-05", "2026-05", "2026-06"], "segment_name": ["a", "b", "a"],
                        "customers": [3, 4, 5]})
    out = data.segment_history_counts(agg)
    assert out["customers"].tolist() == [3, 4, 5]
    assert data.segment_history_counts(None).empty


def test_customer_lookup_helpers(tables):
    scores, hist = tables["customer_scores"], tables["segment_history"]
    assert data.find_customer(scores, " C0000042 ")["customer_id"] == "C0000042"
    assert data.find_customer(scores, "nope") is None
    assert data.similar_ids(scores, "c000004", limit=3) == ["C0000040", "C0000041", "C0000042"]
    assert data.similar_ids(scores, "") == []
    h = data.customer_history(hist, "C0000042")
    assert list(h.columns) == ["month", "segment_name", "predicted_clv", "predicted_clv_p50", "p_alive"]
    # history written by a model without a median forecast: the empty column is not shown
    no_median = data.customer_history(hist.assign(predicted_clv_p50=float("nan")), "C0000042")
    assert list(no_median.columns) == ["month", "segment_name", "predicted_clv", "p_alive"]
    assert h["segment_name"].iloc[-1] == data.find_customer(scores, "C0000042")["segment_name"]


def test_at_risk(tables):
    scores = tables["customer_scores"]
    rows, threshold = data.at_risk(scores, "total_spend", 0.8, 0.5)
    assert math.isclose(threshold, scores["total_spend"].quantile(0.8))
    assert (rows["total_spend"] >= threshold).all() and (rows["p_alive"] < 0.5).all()
    assert rows["total_spend"].is_monotonic_decreasing
    expected = ((scores["total_spend"] >= threshold) & (scores["p_alive"] < 0.5)).sum()
    assert len(rows) == expected > 0
    none, _ = data.at_risk(scores, "total_spend", 0.8, 0.0)
    assert none.empty


def test_at_risk_can_add_silent_one_time_buyers(tables):
    scores = tables["customer_scores"]
    one_time = data.one_time_buyers(scores)
    assert one_time.any() and (scores.loc[one_time, "p_alive"] == 1.0).all()  # BG/NBD: never flagged by P(alive)
    base, threshold = data.at_risk(scores, "total_spend", 0.2, 0.5)
    assert not base["customer_id"].isin(scores.loc[one_time, "customer_id"]).any()
    rows, same = data.at_risk(scores, "total_spend", 0.2, 0.5, one_time_silent_days=180)
    assert same == threshold
    added = rows[~rows["customer_id"].isin(base["customer_id"])]
    extra = scores[one_time & (scores["total_spend"] >= threshold) & (scores["days_since_last_order"] >= 180)]
    assert len(added) == len(extra) > 0
    assert set(added["customer_id"]) == set(extra["customer_id"])
    assert rows["total_spend"].is_monotonic_decreasing
    # a snapshot without frequency: nothing to add, nothing breaks
    no_freq = scores.drop(columns="frequency")
    assert not data.one_time_buyers(no_freq).any()
    assert len(data.at_risk(no_freq, "total_spend", 0.2, 0.5, 180)[0]) == len(base)
    no_days = scores.drop(columns="days_since_last_order")
    assert len(data.at_risk(no_days, "total_spend", 0.2, 0.5, 180)[0]) == len(base)


def test_data_quality_views(tables):
    dq = data.dq_normalise(tables["data_quality"])
    assert dq["check"].nunique() == len(EXPECTATIONS)
    assert "use_known_vocabularies: be_in_set (channel)" in set(dq["check"])  # common "transactions_" dropped
    assert data.short_expectation("transactions_have_keys:expect_column_values_to_not_be_null") == (
        "transactions_have_keys: not_be_null")
    assert data.short_expectation("expect_table_columns_to_match_set") == "table_columns_to_match_set"
    parts = data.dq_partitions(dq)
    failing = parts[parts["status"] == "fail"]
    assert sorted(failing["partition_date"]) == sorted({d for d, _, _ in DQ_FAILURES})
    assert parts["rejected_rows"].sum() == sum(DQ_FAILURES.values())
    assert parts["rejected_source"].iloc[0] == "load audit"
    # the bare staging.validation_results shape: rejected rows approximated from unexpected counts
    bare = data.dq_partitions(data.dq_normalise(tables["data_quality"].drop(
        columns=["rows_read", "rows_loaded", "rows_rejected", "column_name"])))
    assert bare["rejected_rows"].sum() == sum(DQ_FAILURES.values())
    assert bare["rejected_source"].iloc[0] == "unexpected counts"
    assert data.dq_normalise(pd.DataFrame({"x": [1]})).empty


def test_drift_line_from_the_manifest_psi():
    assert data.drift({"customers": 3}) is None and data.drift(None) is None     # a first scoring
    line, large = data.drift({"psi.predicted_clv": 0.012, "psi.p_alive": 0.004, "psi.segment_name": 0.0})
    assert not large and line == ("Since the previous scoring (population stability index): predicted CLV 0.012 "
                                  "· P(alive) 0.004 · segment shares 0.000. All below 0.1: stable.")
    line, large = data.drift({"psi.predicted_clv": 0.41, "psi.p_alive": 0.15})
    assert large and "Large shift (> 0.25) in predicted CLV:" in line and "P(alive) 0.150" in line


def test_customer_links_carry_any_id_and_show_it_literally():
    """Ids come from the supplier's files: '+', '&', '#' must survive the URL, markdown must stay text."""
    from urllib.parse import parse_qs, urlsplit

    for customer_id in ("C0000001", "+SUM(1,2)", "-1+1", "a&b#c", "x](https://evil.example/phish)", "50%"):
        url = data.customer_url(customer_id)
        assert parse_qs(urlsplit(url).query)["customer_id"] == [customer_id], url
        assert "(" not in url and ")" not in url                      # cannot end the markdown link early
    assert data.customer_link("C0000001") == "[C0000001](customer?customer_id=C0000001)"
    assert data.customer_link("x](https://evil.example/phish)") == (
        r"[x\]\(https\:\/\/evil\.example\/phish\)](customer?customer_id=x%5D%28https:/"
        r"/evil.example/phish%29)")
