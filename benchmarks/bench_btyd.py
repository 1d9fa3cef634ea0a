"""Benchmark: BTYD fit and prediction at 1M customers, measured side by side in one run.

Data: customers simulated from the BG/NBD × Gamma-Gamma process itself (btyd.simulate_bgnbd; CDNOW-like
parameters, in weeks), acquired over 12 weeks and observed for 39 more, recency on a daily grid — the shape of
a calibration set built from daily transactions. Monetary values are rounded to cents.

fit:     our fit (compress rows + BG/NBD + Gamma-Gamma, lifetimes fitters with `weights`) against
         `lifetimes.BetaGeoFitter().fit` on the uncompressed rows (BG/NBD alone); parameters compared.
predict: btyd.predict (P(alive), 30/90/365-day purchases, expected order value, discounted 1-year CLV) on all
         customers, best of `repeats`; customers/s.
"""

import time

import numpy as np

from clv_platform.lib import btyd

PARAMS = {"r": 0.25, "alpha": 4.4, "a": 0.8, "b": 2.4}
GG_PARAMS = {"p": 6.25, "q": 3.74, "v": 15.44}


def make_customers(customers: int = 1_000_000, seed: int = 7):
    rng = np.random.default_rng(seed)
    T = (273 + rng.integers(0, 84, customers)) / 7.0  # weeks, daily grid
    df = btyd.simulate_bgnbd(customers, PARAMS, T, GG_PARAMS, seed=seed + 1, recency_grid=1 / 7)
    df["monetary_value"] = df["monetary_value"].round(2)
    return df


def run_fit(customers: int = 1_000_000, plain: bool = True, seed: int = 7, progress=None) -> dict:
    df = make_customers(customers, seed)
    x, tx, T, m = (df[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    out = {"customers": customers, "repeat_buyers": int((x > 0).sum())}
    t0 = time.perf_counter()
    (_, _, _), w, _ = btyd.compress(x, tx, T)
    out["compress_seconds"] = time.perf_counter() - t0
    out["bgnbd_rows"] = len(w)
    t0, c0 = time.perf_counter(), time.process_time()
    bg = btyd.fit_bgnbd(x, tx, T)
    out["bgnbd_seconds"], c1 = time.perf_counter() - t0, time.process_time()
    t0 = time.perf_counter()
    gg = btyd.fit_gamma_gamma(x, m)
    out["gamma_gamma_seconds"], c2 = time.perf_counter() - t0, time.process_time()
    out["gamma_gamma_rows"] = gg.n_rows
    out["ours_seconds"] = out["bgnbd_seconds"] + out["gamma_gamma_seconds"]
    out["ours_cpu_seconds"], out["bgnbd_cpu_seconds"] = c2 - c0, c1 - c0
    out["ours_params"] = bg.params | gg.params
    out["true_params"] = PARAMS | GG_PARAMS
    if plain:
        from lifetimes import BetaGeoFitter

        if progress:
            progress(f"ours: {out['ours_seconds']:.1f} s; now plain BetaGeoFitter().fit on {customers:,} rows...")
        t0, c0 = time.perf_counter(), time.process_time()
        with btyd._quiet():
            ref = BetaGeoFitter().fit(x, tx, T)
        out["plain_seconds"] = time.perf_counter() - t0
        out["plain_cpu_seconds"] = time.process_time() - c0
        out["speedup_cpu"] = out["plain_cpu_seconds"] / out["ours_cpu_seconds"]
        out["plain_params"] = {k: float(v) for k, v in ref.params_.items()}
        out["max_rel_param_diff"] = max(abs(bg.params[k] / out["plain_params"][k] - 1) for k in PARAMS)
        out["speedup"] = out["plain_seconds"] / out["ours_seconds"]
        out["speedup_bgnbd_only"] = out["plain_seconds"] / out["bgnbd_seconds"]
    return out


def run_predict(customers: int = 1_000_000, repeats: int = 3, seed: int = 7) -> dict:
    df = make_customers(customers, seed)
    models = btyd.BtydModels(
        bgnbd=btyd.FittedModel("bgnbd", None, PARAMS, {}, float("nan"), customers, 0, 0.0, 0),
        gamma_gamma=btyd.FittedModel("gamma_gamma", None, GG_PARAMS, {}, float("nan"), customers, 0, 0.0, 0),
    )
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        pred = btyd.predict(models, df, horizon_days=365, discount_rate_annual=0.10, input_unit_days=7.0)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    best = min(times)
    return {
        "customers": customers,
        "seconds_best": best,
        "seconds_all": times,
        "customers_per_s": customers / best,
        "cpu_seconds_best": min(cpu),
        "customers_per_cpu_s": customers / min(cpu),
        "goal_customers_per_s": 2_000_000,
        "ratio_to_goal": customers / best / 2_000_000,
        "mean_btyd_clv": float(pred["btyd_clv"].mean()),
    }


def run(kind: str = "all", customers: int = 1_000_000, plain: bool = True, progress=None) -> dict:
    out = {}
    if kind in ("all", "fit"):
        out["fit"] = run_fit(customers, plain=plain, progress=progress)
    if kind in ("all", "predict"):
        out["predict"] = run_predict(customers)
    return out


def format_fit(r: dict) -> str:
    lines = [
        f"BTYD fit on {r['customers']:,} customers ({r['repeat_buyers']:,} repeat buyers)",
        f"  compressed rows: BG/NBD {r['bgnbd_rows']:,} ({r['customers'] / r['bgnbd_rows']:.1f}x fewer), "
        f"Gamma-Gamma {r['gamma_gamma_rows']:,} (compress {r['compress_seconds']:.2f} s)",
        f"  ours  BG/NBD {r['bgnbd_seconds']:.2f} s + Gamma-Gamma {r['gamma_gamma_seconds']:.2f} s "
        f"= {r['ours_seconds']:.2f} s",
    ]
    if "plain_seconds" in r:
        lines += [
            f"  plain BetaGeoFitter().fit on every row: {r['plain_seconds']:.2f} s (BG/NBD only)",
            f"  speedup (wall): {r['speedup']:.1f}x (BG/NBD+GG vs plain BG/NBD; goal >= 10x), "
            f"BG/NBD alone {r['speedup_bgnbd_only']:.1f}x",
            f"  speedup (CPU time, robust to other processes): {r['speedup_cpu']:.1f}x "
            f"({r['ours_cpu_seconds']:.2f} s vs {r['plain_cpu_seconds']:.2f} s)",
            f"  max relative parameter difference ours vs plain: {r['max_rel_param_diff']:.2e} (goal <= 1e-4)",
        ]
    names = ("r", "alpha", "a", "b", "p", "q", "v")
    lines.append("  param   true      ours      plain")
    for k in names:
        plain = r.get("plain_params", {}).get(k)
        lines.append(f"  {k:<6}{r['true_params'][k]:>8.4f}  {r['ours_params'][k]:>8.4f}  "
                     f"{'' if plain is None else f'{plain:8.4f}'}")
    return "\n".join(lines)


def format_predict(r: dict) -> str:
    return (
        f"btyd.predict on {r['customers']:,} customers: best {r['seconds_best']:.3f} s of "
        f"{', '.join(f'{t:.3f}' for t in r['seconds_all'])} -> {r['customers_per_s']:,.0f} customers/s "
        f"(goal 2,000,000/s: {r['ratio_to_goal']:.2f}x the goal); per CPU second (robust to other processes): "
        f"{r['customers_per_cpu_s']:,.0f} customers/s"
    )


if __name__ == "__main__":
    res = run(progress=print)
    print(format_fit(res["fit"]))
    print(format_predict(res["predict"]))
