"""Customer lookup: one customer's scores with interval, segment, features and segment history.

Deep link: /customer?customer_id=<id>.
"""

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import common, data

snap = common.require_snapshot()
common.header(snap, "Customer lookup")
scores = common.require_table(snap, "customer_scores", "customer lookups")

# The URL wins when it differs from what this page last wrote into it: a first visit, a deep link, or the
# browser's Back/Forward (Streamlit pushes a history entry per lookup and reruns the page on Back).
url_id = st.query_params.get("customer_id", "")
if "lookup_id" not in st.session_state or url_id != st.session_state.get("lookup_url_id"):
    st.session_state["lookup_id"] = url_id
top = common.top_customers(snap.snapshot_id, scores)
example = top[0] if top else "C0000001"
customer_id = st.text_input(
    "Customer id", key="lookup_id", placeholder=f"e.g. {example}", help="Exact id, as in the landing files"
).strip()
if customer_id:
    st.query_params["customer_id"] = customer_id
elif "customer_id" in st.query_params:
    del st.query_params["customer_id"]
st.session_state["lookup_url_id"] = customer_id

if not customer_id:
    st.info("Type a customer id and press Enter. Highest predicted CLV: "
            + ", ".join(data.customer_link(c) for c in top))
    st.stop()

row = common.find_customer(snap.snapshot_id, scores, customer_id)
if row is None:
    st.error(
        f"No customer with id {data.md_escape(customer_id)} in snapshot `{snap.snapshot_id}` "
        f"(as of {data.fmt_date(snap.manifest.get('as_of_date'))}, {len(scores):,} customers).",
        icon=":material/person_off:",
    )
    similar = data.similar_ids(scores, customer_id)
    if similar:
        st.markdown("Did you mean: " + ", ".join(data.customer_link(c) for c in similar))
    else:
        st.caption(f"Ids look like `{example}`. Customers first seen after the as-of date are not scored yet.")
    st.stop()


TICK_COLORS = {"predicted CLV": "#1f3b73", "median forecast": "#b279a2", "BTYD CLV": "#f58518"}
# the periods the two CLV figures cover (snapshots published before they were recorded: unknown)
clv_days = snap.manifest.get("clv_horizon_days")
btyd_days = snap.manifest.get("btyd_clv_horizon_days")
clv_period = f"{clv_days:,} d" if clv_days else "model horizon"
btyd_period = f"{btyd_days:,} d" if btyd_days else "discounted"


def _get(name: str):
    return row[name] if name in row.index else None


st.subheader(f"Customer {data.md_escape(row['customer_id'])}")
interval = f"{data.fmt_money(_get('predicted_clv_p10'), 2)} – {data.fmt_money(_get('predicted_clv_p90'), 2)}"
c1, c2, c3, c4 = st.columns([1.1, 1.1, 0.8, 1.4])   # room for a segment name ("one-time buyers") in full
median = _get("predicted_clv_p50")
c1.metric(f"Predicted CLV, {clv_period}", data.fmt_money(_get("predicted_clv"), 2), delta=interval,
          delta_arrow="off", delta_color="off", border=True,
          help=(f"Expected spend over the {clv_days:,} days after the as-of date" if clv_days else
                "Expected spend over the model's horizon") + " (the mean, what adds up over customers), and below "
          "it the 80% prediction interval"
          + (f"; median forecast {data.fmt_money(median, 2)}, the most typical outcome"
             if median is not None and pd.notna(median) else ""))
c2.metric(f"BTYD CLV, {btyd_period}", data.fmt_money(_get("btyd_clv"), 2), border=True,
          help="BG/NBD x Gamma-Gamma baseline" + (f": spend over the next {btyd_days:,} days, discounted at "
                                                  f"{snap.manifest.get('btyd_clv_discount_rate_annual', 0.1):.0%} a "
                                                  "year; not the same period as the predicted CLV" if btyd_days
                                                  else ""))
c3.metric("P(alive)", data.fmt_prob(_get("p_alive")), border=True,
          help="Probability that the customer is still active (BG/NBD)"
          + ("; this customer bought on one day only, which BG/NBD counts as alive until they buy again: "
             "read days since last order instead" if _get("frequency") == 0 else ""))
segment = _get("segment_name")
since = data.fmt_date(_get("segment_since"))
history_start = data.history_start(common.table(snap, "segment_history"))
# a run of the same segment back to the first month-end of the history may have begun before it
earlier = " or earlier" if since != "–" and since == data.fmt_date(history_start) else ""
segment_help = [f"Segment: {segment}" if segment is not None else "No segment"]
if segment == data.NEW_CUSTOMERS:
    segment_help.append("bought on one day only, within the last few weeks: new customers are in this segment from "
                        "their first purchase until they buy on a second day or it grows old (docs/models.md)")
if earlier:
    segment_help.append(f"the segment history starts at {data.fmt_date(history_start)}")
c4.metric("Segment", str(segment) if segment is not None else "–",
          delta=f"since {since}{earlier}" if since != "–" else None, delta_arrow="off", delta_color="off",
          border=True, help="; ".join(segment_help))

if _get("predicted_clv_p10") is not None and _get("predicted_clv_p90") is not None:
    seg_mean = None
    if segment is not None:
        seg_mean = float(scores.loc[scores["segment_name"] == segment, "predicted_clv"].mean())
    points = [(f"predicted CLV ({clv_period})", _get("predicted_clv")), ("median forecast", median),
              (f"BTYD CLV ({btyd_period}, discounted)" if btyd_days else "BTYD CLV", _get("btyd_clv")),
              (f"mean of {segment}", seg_mean)]
    marks = pd.DataFrame([{"what": w, "value": float(v)} for w, v in points if v is not None and pd.notna(v)])
    band = pd.DataFrame({"lo": [float(_get("predicted_clv_p10"))], "hi": [float(_get("predicted_clv_p90"))]})
    top = max([band["hi"].iloc[0], *marks["value"]]) * 1.05 if len(marks) else band["hi"].iloc[0] * 1.05
    x = alt.X("lo:Q", title="Spend ($)", scale=alt.Scale(domain=[0, top]))
    chart = (
        alt.Chart(band).mark_bar(height=20, opacity=0.35, color="#4c78a8")
        .encode(x=x, x2="hi:Q",
                tooltip=[alt.Tooltip("lo:Q", format=",.2f", title="p10"),
                         alt.Tooltip("hi:Q", format=",.2f", title="p90")])
        + alt.Chart(marks).mark_tick(thickness=3, size=30)
        .encode(x=alt.X("value:Q", scale=alt.Scale(domain=[0, top])),
                color=alt.Color("what:N", title=None, legend=alt.Legend(orient="top", direction="horizontal"),
                                scale=alt.Scale(domain=list(marks["what"]),
                                                range=[TICK_COLORS.get(w.split(" (")[0], "#54a24b") for w in marks["what"]])),
                tooltip=["what:N", alt.Tooltip("value:Q", format=",.2f")])
    ).properties(height=130)
    st.caption("80% prediction interval (band) and point predictions (ticks)")
    st.altair_chart(chart, width="stretch")

e1, e2, e3, e4 = st.columns(4)
e1.metric("Expected purchases 30 d", data.fmt_num(_get("expected_purchases_30d")))
e2.metric("Expected purchases 90 d", data.fmt_num(_get("expected_purchases_90d")))
e3.metric("Expected purchases 365 d", data.fmt_num(_get("expected_purchases_365d")))
e4.metric("Days since last order", data.fmt_int(_get("days_since_last_order")))

left, right = st.columns(2)
with left:
    st.markdown("**Features** (as of the snapshot date)")
    features = [c for c in data.FEATURE_COLS if c in row.index]
    labels = {"T": "T (days since first order)", "recency": "recency (days, first to last repeat)",
              "frequency": "frequency (repeat purchase days)", "monetary_value": "monetary value (mean repeat)"}
    st.table(pd.DataFrame({
        "feature": [labels.get(c, c.replace("_", " ")) for c in features],
        "value": [data.fmt_feature(c, row[c]) for c in features],
    }).set_index("feature"))
with right:
    st.markdown("**Segment over time**")
    history = data.customer_history(common.table(snap, "segment_history"), str(row["customer_id"]))
    if history.empty:
        st.caption("No monthly history for this customer in the snapshot.")
    else:
        shown = history.copy()
        shown["month"] = shown["month"].map(data.fmt_date)
        for c in ("predicted_clv", "predicted_clv_p50"):
            if c in shown:
                shown[c] = shown[c].map(lambda v: data.fmt_money(v, 2))
        if "p_alive" in shown:
            shown["p_alive"] = shown["p_alive"].map(data.fmt_prob)
        shown = shown.rename(columns={"segment_name": "segment", "segment_id": "segment",
                                      "predicted_clv": "predicted CLV", "predicted_clv_p50": "median forecast",
                                      "p_alive": "P(alive)"})
        st.table(shown.set_index("month"))

versions = [f"{m} v{_get(c)}" for m, c in (("clv_model", "clv_model_version"),
                                          ("segment_model", "segment_model_version")) if _get(c) is not None]
if versions:
    st.caption("Scored by " + ", ".join(versions))
