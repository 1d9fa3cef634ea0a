"""At-risk customers: high value, low P(alive). Sortable table and CSV download."""

import streamlit as st

from clv_platform.lib import export
from dashboards import common, data

SHOW_MAX = 5000  # rows drawn in the table; the CSV always has all of them
LABELS = {
    "segment_name": "segment", "total_spend": "spend so far", "predicted_clv": "predicted CLV",
    "predicted_clv_p10": "CLV p10", "predicted_clv_p90": "CLV p90", "btyd_clv": "BTYD CLV", "p_alive": "P(alive)",
    "days_since_last_order": "days since last order", "orders": "orders",
    "expected_purchases_90d": "purchases next 90 d",
}
VALUE_MEASURES = {
    "total_spend": "Spend so far",
    "predicted_clv": "Predicted CLV",
    "btyd_clv": "BTYD CLV",
}

snap = common.require_snapshot()
common.header(snap, "At-risk customers")
scores = common.require_table(snap, "customer_scores", "the at-risk customers")
st.markdown("Customers who are **valuable** (top of the chosen value measure) but **probably lapsing** "
            "(low probability of still being active). Win-back candidates.")

measures = {k: v for k, v in VALUE_MEASURES.items() if k in scores}
if not measures or "p_alive" not in scores:
    common.missing_table(snap, "customer_scores.p_alive", "the at-risk list")
    st.stop()

c1, c2, c3 = st.columns(3)
value_col = c1.selectbox("Value measure", list(measures), format_func=measures.get, key="risk_value")
top_pct = c2.slider("Value in the top … % of customers", min_value=1, max_value=50, value=20, step=1,
                    key="risk_top_pct")
max_p_alive = c3.slider("P(alive) below", min_value=0.05, max_value=0.95, value=0.50, step=0.05,
                        key="risk_p_alive")

# BG/NBD counts a customer with one purchase day as alive (P(alive) = 1) until they buy again: offer them by
# silence instead, so the list can hold lapsed one-time buyers too.
one_time = data.one_time_buyers(scores)
silent_days = None
if one_time.any():
    o1, o2 = st.columns([2, 1])
    if o1.toggle("Also list one-time buyers silent for long", value=False, key="risk_one_time",
                 help="BG/NBD gives a customer who bought on one day only P(alive) = 100% until they buy again, "
                      "so the P(alive) threshold never flags them. Switch on to list the high-value ones who have "
                      "not ordered for the chosen number of days."):
        silent_days = int(o2.number_input("silent for at least (days)", min_value=1, value=180, step=30,
                                          key="risk_silent_days"))

rows, threshold = data.at_risk(scores, value_col, 1 - top_pct / 100, max_p_alive, silent_days)

k1, k2, k3 = st.columns(3)
k1.metric("At-risk customers", data.fmt_int(len(rows)), border=True,
          help=f"{measures[value_col]} ≥ {data.fmt_money(threshold, 2)} and P(alive) < {max_p_alive:.2f}"
          + (f" (or one-time buyers silent for {silent_days}+ days)" if silent_days is not None else ""))
k2.metric("Their spend so far", data.fmt_money(rows["total_spend"].sum()) if "total_spend" in rows else "–",
          border=True)
k3.metric("Their predicted CLV", data.fmt_money(rows["predicted_clv"].sum()) if "predicted_clv" in rows else "–",
          border=True)
rule = f"P(alive) < {max_p_alive:.2f}" + (
    f", or one purchase day only and silent for {silent_days}+ days" if silent_days is not None else "")
st.caption(f"Threshold: {measures[value_col]} ≥ {data.fmt_money(threshold, 2)} "
           f"(top {top_pct}% of {len(scores):,} customers), {rule}.")
bracket = one_time & (scores[value_col] >= threshold)
unlisted = int(bracket.sum()) if silent_days is None else 0
if unlisted:
    recent = int((bracket & (scores["segment_name"] == data.NEW_CUSTOMERS)).sum()) if "segment_name" in scores else 0
    st.caption(f"{unlisted:,} of the customers in this value bracket bought on one day only: BG/NBD gives them "
               "P(alive) = 100% until they buy again, so they are not listed"
               + (f" ({recent:,} of them are new customers, who bought in the last few weeks)" if recent else "")
               + ". Switch on the one-time buyers above to list those who have gone quiet.")

if rows.empty:
    st.success("No customer matches these thresholds.", icon=":material/check_circle:")
    st.stop()

sort_labels = {c: LABELS.get(c, c.replace("_", " ")) for c in rows.columns if c != "customer_id"}
s1, s2, s3 = st.columns([2, 1, 2])
sort_col = s1.selectbox("Sort by", list(sort_labels), format_func=sort_labels.get,
                        index=list(sort_labels).index(value_col), key="risk_sort")
ascending = s2.toggle("Ascending", value=False, key="risk_ascending")
rows = rows.sort_values(sort_col, ascending=ascending, kind="stable").reset_index(drop=True)

def money(col: str):
    return st.column_config.NumberColumn(LABELS[col], format="dollar")


if len(rows) > SHOW_MAX:
    st.caption(f"Showing the first {SHOW_MAX:,} of {len(rows):,} rows in this order; the CSV has all of them.")
shown = rows.head(SHOW_MAX).copy()
shown["customer_id"] = shown["customer_id"].map(data.customer_url)  # link to the lookup page
st.dataframe(
    shown,
    hide_index=True,
    column_config={
        "customer_id": st.column_config.LinkColumn("customer", display_text=r"customer_id=(.*)$",
                                                   help="Open in Customer lookup"),
        "segment_name": st.column_config.TextColumn(LABELS["segment_name"]),
        **{c: money(c) for c in ("total_spend", "predicted_clv", "predicted_clv_p10", "predicted_clv_p90",
                                 "btyd_clv")},
        "p_alive": st.column_config.ProgressColumn(LABELS["p_alive"], min_value=0.0, max_value=1.0, format="%.2f"),
        "days_since_last_order": st.column_config.NumberColumn(LABELS["days_since_last_order"]),
        "orders": st.column_config.NumberColumn(LABELS["orders"], format="%d"),
        "expected_purchases_90d": st.column_config.NumberColumn(LABELS["expected_purchases_90d"], format="%.2f"),
    },
    height=min(35 * min(len(rows), SHOW_MAX) + 40, 560),
)
with s3:
    st.download_button(
        "Download CSV",
        data=lambda: export.to_csv(rows).encode(),  # built on click, not on every rerun
        file_name=f"at_risk_customers_{data.fmt_date(snap.manifest.get('as_of_date'))}.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key="risk_download",
    )
