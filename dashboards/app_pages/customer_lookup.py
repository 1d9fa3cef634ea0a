"""Customer lookup: one customer's scores with interval, segment, features and segment history.

Deep link: /customer?customer_id=<id>.
"""

import pandas as pd
import streamlit as st

from dashboards import common, data

snap = common.require_snapshot()
common.header(snap, "Customer lookup")
scores = common.require_table(snap, "customer_scores", "customer lookups")

if "lookup_id" not in st.session_state:
    st.session_state["lookup_id"] = st.query_params.get("customer_id", "")
example = str(scores.sort_values("predicted_clv", ascending=False)["customer_id"].iloc[0])
customer_id = st.text_input(
    "Customer id", key="lookup_id", placeholder=f"e.g. {example}", help="Exact id, as in the landing files"
).strip()
if customer_id:
    st.query_params["customer_id"] = customer_id
elif "customer_id" in st.query_params:
    del st.query_params["customer_id"]

if not customer_id:
    top = scores.nlargest(5, "predicted_clv")["customer_id"].astype(str).tolist()
    st.info("Type a customer id and press Enter. Highest predicted CLV: " + ", ".join(f"`{c}`" for c in top))
    st.stop()

row = data.find_customer(scores, customer_id)
if row is None:
    st.error(
        f"No customer with id `{customer_id}` in snapshot `{snap.snapshot_id}` "
        f"(as of {data.fmt_date(snap.manifest.get('as_of_date'))}, {len(scores):,} customers).",
        icon=":material/person_off:",
    )
    similar = data.similar_ids(scores, customer_id)
    if similar:
        st.markdown("Did you mean: " + ", ".join(f"`{c}`" for c in similar))
    else:
        st.caption(f"Ids look like `{example}`. Customers first seen after the as-of date are not scored yet.")
    st.stop()


def _get(name: str):
    return row[name] if name in row.index else None


st.subheader(f"Customer {row['customer_id']}")
segment = _get("segment_name")
if segment is not None:
    since = data.fmt_date(_get("segment_since"))
    st.markdown(f"Segment **{segment}**" + (f" since {since}" if since != "–" else ""))

c1, c2, c3, c4 = st.columns(4)
c1.metric("Predicted CLV", data.fmt_money(_get("predicted_clv"), 2), border=True)
c2.metric(
    "80% interval (p10 – p90)",
    f"{data.fmt_money(_get('predicted_clv_p10'), 2)} – {data.fmt_money(_get('predicted_clv_p90'), 2)}",
    border=True,
)
c3.metric("BTYD CLV", data.fmt_money(_get("btyd_clv"), 2), border=True,
          help="BG/NBD x Gamma-Gamma baseline")
c4.metric("P(alive)", data.fmt_prob(_get("p_alive")), border=True)

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
        "value": [data.fmt_num(row[c]) for c in features],
    }).set_index("feature"))
with right:
    st.markdown("**Segment over time**")
    history = data.customer_history(common.table(snap, "segment_history"), str(row["customer_id"]))
    if history.empty:
        st.caption("No monthly history for this customer in the snapshot.")
    else:
        shown = history.copy()
        shown["month"] = shown["month"].map(data.fmt_date)
        for c in ("predicted_clv",):
            if c in shown:
                shown[c] = shown[c].map(lambda v: data.fmt_money(v, 2))
        if "p_alive" in shown:
            shown["p_alive"] = shown["p_alive"].map(data.fmt_prob)
        st.table(shown.set_index("month"))

versions = [f"{m} v{_get(c)}" for m, c in (("clv_model", "clv_model_version"),
                                          ("segment_model", "segment_model_version")) if _get(c) is not None]
if versions:
    st.caption("Scored by " + ", ".join(versions))
