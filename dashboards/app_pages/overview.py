"""Overview: headline KPIs, model versions, CLV distribution, CLV model vs BTYD metrics."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import common, data

snap = common.require_snapshot()
common.header(snap, "Customer lifetime value")
scores = common.require_table(snap, "customer_scores", "the customer scores")
manifest = snap.manifest
k = data.kpis(scores)
horizon = manifest.get("clv_horizon_days") or manifest.get("horizon_days")
clv_label = f"Predicted CLV, {horizon:,} days" if horizon else "Predicted CLV"   # (short: a column's width)
clv_help = (f"Total spend expected from these customers over the {horizon:,} days after the as-of date. "
            if horizon else "Spend expected over the CLV model's horizon (not recorded in this snapshot). ")

c1, c2, c3, c4 = st.columns(4)
c1.metric("Customers", data.fmt_int(k["customers"]), border=True)
c2.metric(clv_label, data.fmt_money(k["total_predicted_clv"]), border=True,
          help=clv_help + f"Mean per customer {data.fmt_money(k['mean_predicted_clv'], 2)}.")
c3.metric("Mean P(alive)", data.fmt_prob(k["mean_p_alive"]), border=True,
          help="Mean probability that a customer is still active (BG/NBD)")
c4.metric("Snapshot as of", data.fmt_date(manifest.get("as_of_date")), border=True)

versions = common.model_versions(snap)
if versions:
    st.markdown("**Model versions** · " + " · ".join(f"`{name}` v{v}" for name, v in versions.items()))
moved = data.drift(manifest.get("metrics"))
if moved:
    (st.warning if moved[1] else st.caption)(moved[0])

left, right = st.columns([3, 2])
with left:
    st.subheader("Predicted CLV distribution")
    hist, clipped = common.clv_histogram(snap.snapshot_id, scores)
    chart = (
        alt.Chart(hist)
        .mark_bar()
        .encode(
            x=alt.X("clv_from:Q", bin="binned", title="Predicted CLV ($)"),
            x2="clv_to:Q",
            y=alt.Y("customers:Q", title="Customers"),
            tooltip=[alt.Tooltip("clv_from:Q", format=",.0f", title="from"),
                     alt.Tooltip("clv_to:Q", format=",.0f", title="to"), "customers:Q"],
        )
        .properties(height=300)
    )
    st.altair_chart(chart, width="stretch")
    if clipped:
        st.caption(f"{clipped:,} customers above the 99th percentile are counted in the last bar.")
with right:
    st.subheader("Value concentration")
    st.table(common.value_concentration(snap.snapshot_id, scores))
    total = k["total_predicted_clv"]
    if "segment_name" in scores:
        by_seg = common.clv_by_segment(snap.snapshot_id, scores)
        st.caption("Predicted CLV by segment: " + ", ".join(
            f"{name} {data.fmt_prob(v / total) if total else '–'}" for name, v in by_seg.items()))

st.subheader("CLV model vs BTYD baseline")
metrics = data.metrics_table(common.table(snap, "model_metrics"), manifest.get("metrics"))
if metrics.empty:
    common.missing_table(snap, "model_metrics", "the model comparison")
else:
    models = [c for c in metrics.columns if c != "better"]
    formats = {"MAE": "{:,.2f}", "RMSE": "{:,.2f}", "Total bias": "{:+.1%}", "Decile MAPE": "{:.1%}"}

    def _best(row: pd.Series) -> list[str]:
        values = pd.to_numeric(row[models], errors="coerce")
        if values.isna().all():
            return [""] * len(row)
        way = row["better"]
        target = {"higher": values.max(), "lower": values.min()}.get(way, values.abs().min())
        best = values == target if way in ("higher", "lower") else values.abs() == target
        return [""] + ["font-weight: bold" if b else "" for b in best]

    styler = metrics.style.apply(_best, axis=1)
    for label in metrics.index:
        styler = styler.format(formats.get(label, "{:.3f}"), subset=pd.IndexSlice[[label], models], na_rep="–")
    st.table(styler)
    caption = "Held-out customers, same split for every model; the best figure of each row is in bold."
    if "clv_model_median" in models:
        caption += (" clv_model_median is the CLV model's median forecast (p50), the typical single-customer "
                    "outcome and the one to read MAE on; clv_model (the mean) is the one that adds up over customers.")
    st.caption(caption)
other = data.other_metrics(common.table(snap, "model_metrics"))
if len(other):
    with st.expander(f"Other model metrics ({len(other)})"):
        st.dataframe(other, hide_index=True)
        st.caption("The segment model's metrics describe its clustering, of every customer but the new customers "
                   "(one purchase day, recently), who are in their segment by rule.")
