"""BTYD diagnostics as matplotlib (Agg) figures saved to PNG, plus the tables behind them.

* calibration_histogram: customers by calibration-period repeat purchases 0..7+, actual vs BG/NBD
  (Σ_i P(X(T_i) = n), eq. 8 of FHL 2005, each customer at their own T).
* conditional_holdout: mean holdout purchases by calibration frequency 0..7+, actual vs E[Y(t) | x, t_x, T].
* p_alive_matrix: P(alive) over frequency × recency for a customer of the largest observed age.
* cumulative_tracking: cumulative repeat purchases of the calibration cohort per day, actual vs
  Σ_cohorts n_c · E[X(d − c)] (the unconditional BG/NBD curve convolved with daily acquisitions).
"""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from clv_platform.lib import btyd, features, plots, warehouse

plt = plots.pyplot()

TOP = 7  # the "7+" bucket


def _bucket_labels(top: int = TOP) -> list[str]:
    return [str(i) for i in range(top)] + [f"{top}+"]


def calibration_histogram_table(models: btyd.BtydModels, summary_df, input_unit_days=1.0, top=TOP) -> pd.DataFrame:
    x, _, T = btyd._summary_arrays(summary_df, models.time_unit_days, input_unit_days)
    (uT,), w, _ = btyd.compress(T)
    pmf = btyd.bgnbd_pmf(models.bgnbd.params, uT, top - 1)  # (len(uT), top)
    expected = (pmf * w[:, None]).sum(axis=0)
    expected = np.append(expected, len(x) - expected.sum())
    actual = np.bincount(np.minimum(x, top).astype(int), minlength=top + 1)[: top + 1]
    return pd.DataFrame({"frequency": _bucket_labels(top), "actual": actual, "model": expected})


def conditional_holdout_table(models: btyd.BtydModels, cal_df, horizon_days, input_unit_days=1.0, top=TOP):
    expected = btyd.expected_holdout_purchases(models, cal_df, horizon_days, input_unit_days=input_unit_days)
    groups = np.minimum(cal_df["frequency"].to_numpy(), top)
    frame = pd.DataFrame({"g": groups, "actual": cal_df["frequency_holdout"].to_numpy(), "model": expected})
    out = frame.groupby("g").agg(customers=("actual", "size"), actual=("actual", "mean"), model=("model", "mean"))
    out = out.reindex(range(top + 1))
    out["customers"] = out["customers"].fillna(0).astype(int)    # an empty bucket: 0 customers, no means
    out.insert(0, "frequency", _bucket_labels(top))
    return out.reset_index(drop=True)


def tracking_frame(con, cutoff, as_of, source: str = "staging.transactions") -> pd.DataFrame:
    """Per day up to `as_of`: new customers (first purchase day, cohort = first seen on or before `cutoff`) and
    repeat purchase days of that cohort (lib/sql/btyd_tracking.sql)."""
    sql = warehouse.read_sql("btyd_tracking").replace("{source}", features.quote_identifier(source))
    return con.execute(sql, {"cutoff": pd.Timestamp(cutoff).date(), "as_of": pd.Timestamp(as_of).date()}).df()


def cumulative_tracking_table(models: btyd.BtydModels, daily: pd.DataFrame) -> pd.DataFrame:
    daily = daily.sort_values("day").reset_index(drop=True)
    start = pd.Timestamp(daily["day"].iloc[0])
    days = (pd.to_datetime(daily["day"]) - start).dt.days.to_numpy()
    n = int(days.max()) + 1
    new = np.zeros(n)
    rep = np.zeros(n)
    np.add.at(new, days, daily["new_customers"].to_numpy(dtype=float))
    np.add.at(rep, days, daily["repeat_purchases"].to_numpy(dtype=float))
    curve = btyd.bgnbd_expected_unconditional(models.bgnbd.params, np.arange(n) / models.time_unit_days)
    curve[0] = 0.0
    expected = np.convolve(new, curve)[:n]
    return pd.DataFrame({"day": pd.date_range(start, periods=n, freq="D"),
                         "actual_cumulative": np.cumsum(rep), "model_cumulative": expected})


# ----------------------------------------------------------------------------------------------- figures


def plot_calibration_histogram(table: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    pos = np.arange(len(table))
    ax.bar(pos - 0.2, table["actual"], 0.4, label="actual")
    ax.bar(pos + 0.2, table["model"], 0.4, label="BG/NBD")
    ax.set_xticks(pos, table["frequency"])
    ax.set(xlabel="repeat purchases in calibration", ylabel="customers", title="Calibration period: model vs actual")
    ax.legend()
    return plots.save(fig, path, dpi=80)


def plot_conditional_holdout(table: pd.DataFrame, path: Path, horizon_days: int) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(table["frequency"], table["actual"], "o-", label="actual")
    ax.plot(table["frequency"], table["model"], "s--", label="BG/NBD")
    ax.set(xlabel="repeat purchases in calibration", ylabel=f"mean purchases in next {horizon_days} days",
           title="Conditional expectations (holdout)")
    ax.legend()
    return plots.save(fig, path, dpi=80)


def plot_p_alive_matrix(models: btyd.BtydModels, T_units: float, max_frequency: int, path: Path) -> Path:
    freq = np.arange(max_frequency + 1, dtype=float)
    rec = np.linspace(0, T_units, 60)
    F, R = np.meshgrid(freq, rec, indexing="ij")
    P = btyd.bgnbd_p_alive(models.bgnbd.params, F.ravel(), np.where(F.ravel() == 0, 0, R.ravel()),
                           np.full(F.size, T_units)).reshape(F.shape)
    fig, ax = plt.subplots(figsize=(6, 4))
    im = ax.imshow(P, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                   extent=[0, T_units, -0.5, max_frequency + 0.5])
    fig.colorbar(im, ax=ax, label="P(alive)")
    ax.set(xlabel=f"recency ({models.time_unit_days:g}-day units)", ylabel="frequency",
           title=f"P(alive) for a customer of age T = {T_units:.1f}")
    return plots.save(fig, path, dpi=80)


def plot_cumulative_tracking(table: pd.DataFrame, path: Path, cutoff=None) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(table["day"], table["actual_cumulative"], label="actual")
    ax.plot(table["day"], table["model_cumulative"], "--", label="BG/NBD")
    if cutoff is not None:
        ax.axvline(pd.Timestamp(cutoff), color="grey", linestyle=":", label="calibration end")
    ax.set(ylabel="cumulative repeat purchases", title="Cumulative tracking")
    ax.legend()
    fig.autofmt_xdate()
    return plots.save(fig, path, dpi=80)


def write_all(
    con,
    out_dir: Path,
    cutoff: dt.date,
    as_of: dt.date,
    time_unit_days: float = btyd.WEEK_DAYS,
    source: str = "staging.transactions",
    full_models: btyd.BtydModels | None = None,
) -> dict:
    """Fit BG/NBD on data up to `cutoff`, compare with what happened up to `as_of`, write the four PNGs
    (the P(alive) matrix from `full_models`, the fit on all data, when given).

    Returns {"files": {name: Path}, "tables": {name: DataFrame}, "calibration_params": {...}}."""
    horizon = (pd.Timestamp(as_of) - pd.Timestamp(cutoff)).days
    cal = features.calibration_holdout(con, cutoff, horizon, source=source, time_unit_days=1.0)
    models = btyd.BtydModels(bgnbd=btyd.fit_bgnbd(*btyd._summary_arrays(cal, time_unit_days, 1.0)),
                             gamma_gamma=None, time_unit_days=time_unit_days)
    tables = {
        "calibration_histogram": calibration_histogram_table(models, cal),
        "conditional_holdout": conditional_holdout_table(models, cal, horizon),
        "cumulative_tracking": cumulative_tracking_table(models, tracking_frame(con, cutoff, as_of, source)),
    }
    out_dir = Path(out_dir)
    T_max = float(cal["T"].max()) / time_unit_days
    files = {
        "calibration_histogram": plot_calibration_histogram(tables["calibration_histogram"],
                                                            out_dir / "calibration_histogram.png"),
        "conditional_holdout": plot_conditional_holdout(tables["conditional_holdout"],
                                                        out_dir / "conditional_holdout.png", horizon),
        "p_alive_matrix": plot_p_alive_matrix(full_models or models, T_max, int(min(30, max(5, cal["frequency"].quantile(0.99)))),
                                              out_dir / "p_alive_matrix.png"),
        "cumulative_tracking": plot_cumulative_tracking(tables["cumulative_tracking"],
                                                        out_dir / "cumulative_tracking.png", cutoff),
    }
    return {"files": files, "tables": tables, "calibration_params": models.bgnbd.params,
            "cutoff": cutoff, "horizon_days": horizon}
