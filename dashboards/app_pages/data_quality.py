"""Data quality: validation history per partition (pass/fail per expectation), rejected rows over time."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import common, data

snap = common.require_snapshot()
common.header(snap, "Data quality")
raw = common.require_table(snap, "data_quality", "the validation history")
dq, parts = common.data_quality(snap.snapshot_id, raw)
if dq.empty:
    st.warning("The `data_quality` table lacks the columns this page needs "
               "(partition_date, expectation, success).")
    st.stop()

# A load whose checks fail publishes nothing (scoring refuses the day), so this page, read from the snapshot,
# never shows it: say so, and where to look.
st.caption("Validation results as they were when this snapshot was published. A load that failed its checks since "
           "then is not here (nothing is published until the day passes): `clv status` and the Dagster UI show it.")
failing = parts[parts["failed"] > 0]
k1, k2, k3, k4 = st.columns(4)
# The snapshot carries the last `days` days of validation results (lib/scoring.data_quality), not all of them.
kept = snap.manifest.get("data_quality") or {}
days = kept.get("days") or (parts["partition_date"].max() - parts["partition_date"].min()).days + 1
total = kept.get("partitions_validated")
k1.metric(f"Validated, last {days:,} days", data.fmt_int(len(parts)), border=True,
          help=f"{data.fmt_date(parts['partition_date'].min())} to {data.fmt_date(parts['partition_date'].max())}"
          + (f"; {total:,} partitions validated in all" if total else "")
          + f". Partitions validated; the snapshot keeps the validation results of the last {days:,} days.")
k2.metric("Checks per partition", data.fmt_int(dq["check"].nunique()), border=True)
k3.metric("Partitions with failures", data.fmt_int(len(failing)), border=True)
if "rejected_rows" in parts:
    k4.metric("Rejected rows", data.fmt_int(parts["rejected_rows"].sum()), border=True,
              help=f"Source: {parts['rejected_source'].iloc[0]}")

dates = sorted(parts["partition_date"].unique())
if len(dates) > 1:
    start, end = st.select_slider("Partitions", options=dates, value=(dates[max(0, len(dates) - 90)], dates[-1]),
                                  format_func=data.fmt_date, key="dq_range")
else:
    start = end = dates[0]
in_range = dq[(dq["partition_date"] >= start) & (dq["partition_date"] <= end)]
parts_in = parts[(parts["partition_date"] >= start) & (parts["partition_date"] <= end)]



def day_axis(title: str = "Partition") -> alt.X:
    """The partitions' days from `start` to `end`, one band each, labelled at whole days (vega's own ticks put
    a single partition at repeated and wrong days)."""
    span = pd.date_range(start, end, freq="D")
    step = max(1, -(-len(span) // 12))         # at most about 12 labels
    ticks = [alt.DateTime(year=d.year, month=d.month, date=d.day) for d in span[::step]]
    last = end + pd.Timedelta(days=1)
    domain = [alt.DateTime(year=d.year, month=d.month, date=d.day) for d in (pd.Timestamp(start), pd.Timestamp(last))]
    return alt.X("yearmonthdate(day):T", title=title, scale=alt.Scale(domain=domain),
                 axis=alt.Axis(format="%b %d", values=ticks, labelOverlap=True))


st.subheader("Pass / fail per expectation")
grid = in_range.assign(result=in_range["success"].map({True: "pass", False: "fail"}),
                       day=pd.to_datetime(in_range["partition_date"]))
tooltip = [alt.Tooltip("day:T", title="partition", format="%Y-%m-%d"), "expectation:N", "result:N"]
if "column_name" in grid:
    tooltip.insert(2, alt.Tooltip("column_name:N", title="column"))
for c in ("unexpected_count", "element_count"):
    if c in grid:
        tooltip.append(alt.Tooltip(f"{c}:Q", format=","))
heat = (
    alt.Chart(grid)
    .mark_rect(stroke="white", strokeWidth=0.5)
    .encode(
        x=day_axis(),
        y=alt.Y("check:N", title=None, axis=alt.Axis(labelLimit=380)),
        color=alt.Color("result:N", scale=alt.Scale(domain=["pass", "fail"], range=["#59a14f", "#e15759"]),
                        title=None),
        tooltip=tooltip,
    )
    .properties(height=26 * grid["check"].nunique() + 50)
)
st.altair_chart(heat, width="stretch")

if "rejected_rows" in parts_in:
    st.subheader("Rejected rows over time")
if "rejected_rows" in parts_in and not parts_in["rejected_rows"].fillna(0).any():
    st.success("No row was rejected in these partitions.", icon=":material/check_circle:")
elif "rejected_rows" in parts_in:
    chart_df = parts_in.assign(day=pd.to_datetime(parts_in["partition_date"]))
    enc = [alt.Tooltip("day:T", title="partition", format="%Y-%m-%d"),
           alt.Tooltip("rejected_rows:Q", format=",", title="rejected rows")]
    if "rows_read" in chart_df:
        enc.append(alt.Tooltip("rows_read:Q", format=",", title="rows read"))
    bars = (
        alt.Chart(chart_df)
        .mark_bar(color="#e15759")
        .encode(x=day_axis(),
                y=alt.Y("rejected_rows:Q", title="Rejected rows"),
                tooltip=enc)
        .properties(height=220)
    )
    st.altair_chart(bars, width="stretch")
    st.caption(f"Source: {parts['rejected_source'].iloc[0]}.")

st.subheader("Partition detail")
default = failing["partition_date"].max() if len(failing) else dates[-1]
chosen = st.selectbox("Partition", options=dates[::-1], index=dates[::-1].index(default), format_func=data.fmt_date,
                    key="dq_partition", help="Defaults to the latest partition with a failure")
detail = dq[dq["partition_date"] == chosen]
cols = [c for c in ("check_name", "column_name", "success", "element_count", "unexpected_count") if c in detail]
shown = detail[cols].copy()
shown["success"] = shown["success"].map({True: "pass", False: "FAIL"})
shown = shown.rename(columns={"check_name": "check", "success": "result", "column_name": "column",
                              "element_count": "rows checked", "unexpected_count": "unexpected"})
for c in ("rows checked", "unexpected"):
    if c in shown:
        shown[c] = shown[c].map(data.fmt_int)
st.table(shown.reset_index(drop=True))
notes = []
if "checked_at" in detail and detail["checked_at"].notna().any():
    notes.append(f"Checked {pd.to_datetime(detail['checked_at']).max():%Y-%m-%d %H:%M}.")
if "rows_read" in detail:
    audit = detail.iloc[0]
    notes.append(f"Load audit: {data.fmt_int(audit.get('rows_read'))} rows read, "
                 f"{data.fmt_int(audit.get('rows_loaded'))} loaded, {data.fmt_int(audit.get('rows_rejected'))} rejected.")
if notes:
    st.caption(" ".join(notes))

with st.expander(f"All failed checks ({int((~dq['success']).sum()):,})"):
    st.dataframe(dq[~dq["success"]].drop(columns=["check"]).sort_values("partition_date", ascending=False),
                 hide_index=True)
