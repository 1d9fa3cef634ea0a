"""Segments: sizes and profiles, CLV vs P(alive) by segment, migration between the last two months, history."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import common, data

snap = common.require_snapshot()
common.header(snap, "Segments")
scores = common.require_table(snap, "customer_scores", "the segments")
if "segment_name" not in scores:
    common.missing_table(snap, "customer_scores.segment_name", "the segments")
    st.stop()

order = common.segment_order(snap.snapshot_id, scores)
colors = common.segment_colors(order)
profiles = common.segment_profiles(snap.snapshot_id, scores)

st.subheader("Sizes and profiles")
sizes = profiles.reset_index()
left, right = st.columns(2)
for col, field, title, fmt in ((left, "customers", "Customers", ","),
                               (right, "total_predicted_clv", "Total predicted CLV ($)", ",.0f")):
    if field not in sizes:
        continue
    bars = (
        alt.Chart(sizes)
        .mark_bar()
        .encode(
            y=alt.Y("segment:N", sort=order, title=None, axis=alt.Axis(labelOverlap=False, labelLimit=200)),
            x=alt.X(f"{field}:Q", title=title),
            color=alt.Color("segment:N", scale=colors, legend=None),
            tooltip=["segment:N", alt.Tooltip(f"{field}:Q", format=fmt),
                     alt.Tooltip("share:Q", format=".1%", title="share of customers")],
        )
        .properties(height=32 * len(order) + 30)
    )
    col.altair_chart(bars, width="stretch")

shown = pd.DataFrame(index=profiles.index)
shown["customers"] = profiles["customers"].map(data.fmt_int)
shown["share"] = profiles["share"].map(data.fmt_prob)
money = ("total_predicted_clv", "mean_predicted_clv", "mean_total_spend", "mean_avg_order_value")
for col, label in (
    ("mean_predicted_clv", "mean CLV"), ("total_predicted_clv", "total CLV"), ("mean_p_alive", "mean P(alive)"),
    ("mean_expected_purchases_90d", "purchases next 90 d"), ("mean_orders", "orders"),
    ("mean_total_spend", "spend so far"), ("mean_avg_order_value", "order value"),
    ("mean_days_since_last_order", "days since last order"),
):
    if col in profiles:
        if col in money:
            shown[label] = profiles[col].map(data.fmt_money)
        elif col == "mean_p_alive":
            shown[label] = profiles[col].map(data.fmt_prob)
        else:
            shown[label] = profiles[col].map(lambda v: f"{v:,.1f}")
st.table(shown)
st.caption("Means per segment from customer_scores, most valuable segment first; order value is the mean spend "
           "per order before returns (avg_order_value; spend so far is net of returns).")

summary = common.table(snap, "segment_summary")
if summary is not None and len(summary):
    with st.expander("segment_summary as published"):
        st.dataframe(summary, hide_index=True)

st.subheader("Predicted CLV vs P(alive)")
sample = common.scatter_sample(snap.snapshot_id, scores, common.SCATTER_MAX)
if len(scores) > common.SCATTER_MAX:
    st.caption(f"A random sample of {common.SCATTER_MAX:,} of {len(scores):,} customers.")
clv_axis = sample["predicted_clv"].clip(lower=1.0)
# the x domain fits the data (a nice log domain ran to the next power of ten), and P(alive) has room around
# [0, 1]: one-time buyers all sit at exactly 1, and were drawn as a clipped line on the top edge
x_top = float(clv_axis.max()) * 1.15 if len(sample) else 10.0
scatter = (
    alt.Chart(sample.assign(clv_axis=clv_axis))
    .mark_circle(size=28, opacity=0.55)
    .encode(
        x=alt.X("clv_axis:Q", title="Predicted CLV ($, log scale; below $1 shown at $1)",
                scale=alt.Scale(type="log", domain=[1.0, max(x_top, 2.0)], nice=False)),
        y=alt.Y("p_alive:Q", title="P(alive)", scale=alt.Scale(domain=[-0.04, 1.04], nice=False),
                axis=alt.Axis(values=[0, 0.2, 0.4, 0.6, 0.8, 1.0])),
        color=alt.Color("segment_name:N", scale=colors, title="Segment"),
        tooltip=["customer_id:N", "segment_name:N", alt.Tooltip("predicted_clv:Q", format=",.2f"),
                 alt.Tooltip("p_alive:Q", format=".2f")],
    )
    .properties(height=380)
    .interactive()
)
st.altair_chart(scatter, width="stretch")
if len(scores) and "frequency" in scores:
    st.caption(f"{(scores['frequency'] == 0).mean():.0%} of the customers bought on one day only: BG/NBD counts "
               "them alive (P(alive) = 1) until they buy again, so they form the row at the top; read their days "
               "since last order instead (at-risk page).")

history = common.table(snap, "segment_history")
mig, month_from, month_to = common.migration(snap.snapshot_id, common.table(snap, "segment_migration"), history)

left, right = st.columns(2)
with left:
    st.subheader("Migration between the last two months")
    if mig.empty:
        common.missing_table(snap, "segment_migration", "the migration matrix")
    else:
        if month_to:
            st.caption(f"From {month_from or 'the month before'} to {month_to}: rows = segment before, "
                       "columns = segment after, cells = customers.")
        extra = sorted((set(mig["from_segment"]) | set(mig["to_segment"])) - set(order) - set(data.PSEUDO_SEGMENTS))
        seg_order = [data.FIRST_SEEN] + order + extra + [data.GONE]
        base = alt.Chart(mig).encode(
            x=alt.X("to_segment:N", sort=seg_order, title="to"),
            y=alt.Y("from_segment:N", sort=seg_order, title="from"),
        )
        heat = base.mark_rect().encode(
            color=alt.Color("customers:Q", scale=alt.Scale(scheme="blues"), title="Customers"),
            tooltip=["from_segment:N", "to_segment:N", alt.Tooltip("customers:Q", format=",")],
        )
        labels = base.mark_text(fontSize=12).encode(
            text=alt.Text("customers:Q", format=","),
            color=alt.condition(alt.datum.customers > mig["customers"].max() / 2, alt.value("white"),
                                alt.value("black")),
        )
        st.altair_chart((heat + labels).properties(height=320), width="stretch")
        st.caption(data.migration_note(mig))
with right:
    st.subheader("Segment history")
    counts = common.history_counts(snap.snapshot_id, history)
    if counts.empty:
        common.missing_table(snap, "segment_history", "the segment history")
    else:
        seg_order = order + sorted(set(counts["segment"]) - set(order))
        rank = {name: i for i, name in enumerate(seg_order)}
        area = (
            alt.Chart(counts.assign(rank=counts["segment"].map(rank)))
            .mark_bar()
            .encode(
                x=alt.X("yearmonth(month):O", title="Month"),
                y=alt.Y("customers:Q", title="Customers", stack="zero"),
                color=alt.Color("segment:N", scale=alt.Scale(domain=seg_order, scheme="tableau10"),
                                title="Segment"),
                order=alt.Order("rank:Q"),
                tooltip=[alt.Tooltip("month:T", format="%Y-%m"), "segment:N",
                         alt.Tooltip("customers:Q", format=",")],
            )
            .properties(height=320)
        )
        st.altair_chart(area, width="stretch")
        st.caption(f"{counts['month'].nunique()} monthly as-of snapshots.")
