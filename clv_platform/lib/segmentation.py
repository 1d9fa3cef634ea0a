"""Customer value segments: KMeans vs Gaussian mixture over k, named from centroid profiles, stable names.

* Inputs per customer (`segment_inputs`): predicted CLV, P(alive), frequency, days since last order and
  average order value. Skewed ones go through log1p, then a StandardScaler; both live inside the sklearn
  Pipeline, so the model artifact carries its own scaling and assigning a customer uses that row only.
* Candidates: KMeans and GMM for k = 3..8. Each gets silhouette (on a sample), Davies-Bouldin, BIC (GMM)
  and bootstrap stability (mean adjusted Rand index between the candidate's labels and those of refits on
  bootstrap resamples). Score = silhouette × stability ("stability-weighted silhouette"); the best score
  wins, Davies-Bouldin breaks ties. The score is what promotion compares.
* Names: centroids are matched (Hungarian, squared distance in scaled space) to archetype profiles
  (champions, loyal, big spenders, promising, one-time buyers, need attention, at risk, hibernating,
  lost), which makes
  names unique. With `previous` (the production model), new centroids are first matched to the previous
  segments' centroids, and matched segments keep the previous id and name.
* New customers: a customer whose only purchase day is one of the last `new_customer_days` (30) days is put
  in the segment "new customers" by that rule, before any clustering, and the clusters are fitted on everyone
  else. Such a customer's other inputs (frequency 0, P(alive) 1, few days since the order) otherwise put them
  with the recent repeat buyers, named "loyal" with few clusters. The rule reads the same row's inputs only.
* `segment_migration(prev, cur)` (from `migration`): customers moving between segments from one as-of date to
  the next.
"""

import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from clv_platform.lib.migration import migration_long, segment_migration  # noqa: F401 (part of this module's API)
from clv_platform.lib.segment_names import NEW_CUSTOMERS

SEGMENT_FEATURES = ["predicted_clv", "p_alive", "frequency", "days_since_last_order", "avg_order_value"]
_LOG_FEATURES = {"predicted_clv", "frequency", "days_since_last_order", "avg_order_value"}
FORMAT_VERSION = 1

# Archetype centroids in standardised units, in SEGMENT_FEATURES order
# (log CLV, P(alive), log frequency, log days since last order, log order value).
ARCHETYPES: dict[str, tuple[float, float, float, float, float]] = {
    "champions": (1.6, 0.7, 1.6, -0.9, 0.4),
    "loyal": (0.8, 0.5, 0.9, -0.4, 0.0),
    "big spenders": (0.8, 0.2, -0.2, 0.0, 1.5),
    "promising": (0.0, 0.8, -0.7, -1.3, 0.0),
    # bought on one day only (frequency 0: P(alive) is 1 by BG/NBD's definition), recently or long ago: without
    # it such a segment was named "hibernating" (win-back campaigns reached last week's first-time buyers)
    "one-time buyers": (-0.4, 0.9, -1.1, 0.0, 0.0),
    "need attention": (0.0, 0.0, 0.0, 0.0, 0.0),
    "at risk": (0.3, -0.8, 0.8, 0.7, 0.0),
    "hibernating": (-0.7, -0.4, -0.5, 0.6, -0.3),
    "lost": (-1.3, -1.3, -0.7, 1.2, -0.5),
}


def segment_inputs(df: pd.DataFrame) -> pd.DataFrame:
    """The five segmentation inputs from a scored customer frame (row by row), with fallbacks:
    predicted_clv <- btyd_clv; days_since_last_order <- T - recency; avg_order_value <- total_spend / orders
    <- monetary_value."""
    out = pd.DataFrame(index=df.index)
    out["predicted_clv"] = df["predicted_clv"] if "predicted_clv" in df.columns else df["btyd_clv"]
    out["p_alive"] = df["p_alive"]
    out["frequency"] = df["frequency"]
    if "days_since_last_order" in df.columns:
        out["days_since_last_order"] = df["days_since_last_order"]
    else:
        out["days_since_last_order"] = df["T"] - df["recency"]
    if "avg_order_value" in df.columns:
        out["avg_order_value"] = df["avg_order_value"]
    elif "total_spend" in df.columns and "orders" in df.columns:
        out["avg_order_value"] = df["total_spend"] / df["orders"].where(df["orders"] > 0)
    else:
        out["avg_order_value"] = df["monetary_value"]
    return out.astype("float64").fillna(0.0)


def is_new_customer(df: pd.DataFrame, new_customer_days: int | None) -> np.ndarray:
    """True for customers whose only purchase day is one of the last `new_customer_days` days, the as-of day
    included (frequency 0, so days since the last order is their tenure; days since < new_customer_days: with 30,
    the customers of one day are new at two consecutive month-ends only across February)."""
    if new_customer_days is None:
        return np.zeros(len(df), dtype=bool)
    x = segment_inputs(pd.DataFrame(df))
    return ((x["frequency"] == 0) & (x["days_since_last_order"] < new_customer_days)).to_numpy()


def _prepare(df) -> np.ndarray:
    """Pipeline step 1 (module-level so the pipeline pickles): inputs -> log1p where skewed."""
    x = segment_inputs(pd.DataFrame(df))
    for col in _LOG_FEATURES:
        x[col] = np.log1p(x[col].clip(lower=0.0))
    return x[SEGMENT_FEATURES].to_numpy()


def _limits(n_rows: int):
    # One BLAS/OpenMP thread for small inputs: spin-waiting threads make KMeans/GMM crawl on a busy machine.
    return threadpool_limits(1 if n_rows < 200_000 else None)


def _estimator(algorithm: str, k: int, seed: int):
    if algorithm == "kmeans":
        return KMeans(n_clusters=k, n_init=3, random_state=seed)
    if algorithm == "gmm":
        return GaussianMixture(n_components=k, covariance_type="full", n_init=1, random_state=seed,
                               reg_covar=1e-4)
    raise ValueError(f"unknown segmentation algorithm {algorithm!r} (kmeans or gmm)")


@dataclass
class SegmentModel:
    """Fitted segmentation. `predict(df)` -> DataFrame[segment_id, segment_name], one row per input row."""

    pipeline: Pipeline
    algorithm: str
    k: int
    label_to_segment: dict[int, int]         # cluster label -> stable segment id
    names: dict[int, str]                    # segment id -> name
    centroids: dict[int, list[float]]        # segment id -> mean prepared (log1p, unscaled) inputs
    profiles: pd.DataFrame                   # per segment: size, share, mean of raw inputs
    selection: pd.DataFrame                  # every candidate with its metrics
    score: float                             # stability-weighted silhouette of the chosen candidate
    info: dict = field(default_factory=dict)
    # the "new customers" rule (models saved before it existed load with it off)
    new_customer_days: int | None = None
    new_segment_id: int | None = None

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        with _limits(len(df)):
            labels = self.pipeline.predict(df)
        # label -> segment id -> name by array lookup (a Python loop per customer costs ~0.3 s per million)
        labels = np.asarray(labels, dtype="int64")
        lookup = np.full(max(self.label_to_segment) + 1, -1, dtype="int64")
        for label, segment in self.label_to_segment.items():
            lookup[int(label)] = segment
        seg = lookup[labels]
        if self.new_segment_id is not None:
            seg[is_new_customer(df, self.new_customer_days)] = self.new_segment_id
        unnamed = ~np.isin(seg, list(self.names))     # (-1: a label the model does not map)
        if unnamed.any():
            raise KeyError(f"cluster labels without a named segment: {sorted(set(labels[unnamed].tolist()))}")
        ids = np.array(sorted(self.names), dtype="int64")
        names = np.array([self.names[int(i)] for i in ids], dtype=object)[np.searchsorted(ids, seg)]
        return pd.DataFrame({"segment_id": seg, "segment_name": names}, index=df.index)

    @property
    def metrics(self) -> dict:
        row = self.selection.loc[self.selection["chosen"]].iloc[0]
        return {"score": self.score, "silhouette": float(row["silhouette"]),
                "davies_bouldin": float(row["davies_bouldin"]), "stability_ari": float(row["stability"]),
                "bic": float(row["bic"]), "k": self.k}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with open(path / "segment_model.pkl", "wb") as fh:
            pickle.dump(self, fh)
        summary = {"format_version": FORMAT_VERSION, "algorithm": self.algorithm, "k": self.k,
                   "names": {str(k): v for k, v in self.names.items()}, "score": self.score}
        (path / "segment_model.json").write_text(json.dumps(summary, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SegmentModel":
        with open(Path(path) / "segment_model.pkl", "rb") as fh:
            model = pickle.load(fh)
        if not isinstance(model, cls):
            raise TypeError(f"{path}: not a SegmentModel")
        return model


def _match(cost: np.ndarray) -> list[tuple[int, int]]:
    rows, cols = linear_sum_assignment(cost)
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


def _evaluate_candidates(xs: np.ndarray, k_range: Sequence[int], algorithms: Sequence[str],
                         silhouette_sample: int, n_bootstrap: int, seed: int) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    n = len(xs)
    boot_idx = [rng.integers(0, n, n) for _ in range(n_bootstrap)]
    rows, fitted = [], {}
    for algorithm in algorithms:
        for k in k_range:
            if k >= n:
                continue
            est = _estimator(algorithm, k, seed).fit(xs)
            labels = est.predict(xs)
            if len(np.unique(labels)) < 2:
                continue
            sil = float(silhouette_score(xs, labels, sample_size=min(n, silhouette_sample), random_state=seed))
            db = float(davies_bouldin_score(xs, labels))
            bic = float(est.bic(xs)) if algorithm == "gmm" else float("nan")
            aris = [adjusted_rand_score(labels, _estimator(algorithm, k, seed + 1 + b).fit(xs[idx]).predict(xs))
                    for b, idx in enumerate(boot_idx)]
            stability = float(np.mean(aris)) if aris else 1.0
            rows.append({"algorithm": algorithm, "k": k, "silhouette": sil, "davies_bouldin": db, "bic": bic,
                         "stability": stability, "score": sil * max(stability, 0.0),
                         "sizes": np.bincount(labels, minlength=k).tolist()})
            fitted[(algorithm, k)] = est
    if not rows:
        raise ValueError("segmentation: no candidate produced two or more clusters")
    table = pd.DataFrame(rows).sort_values(["score", "davies_bouldin"], ascending=[False, True])
    table["chosen"] = False
    table.loc[table.index[0], "chosen"] = True
    return table.reset_index(drop=True), fitted


def fit(
    df: pd.DataFrame,
    previous: SegmentModel | None = None,
    k_range: Sequence[int] = range(3, 9),
    algorithms: Sequence[str] = ("kmeans", "gmm"),
    fit_sample: int = 50_000,
    silhouette_sample: int = 10_000,
    n_bootstrap: int = 3,
    max_match_distance: float = 1.5,
    new_customer_days: int | None = 30,
    seed: int = 0,
) -> SegmentModel:
    """Choose and fit the segmentation on a scored customer frame (see `segment_inputs` for columns).

    `previous`: the production model; segments whose new centroid lies within `max_match_distance`
    (Euclidean, standardised units) of a previous centroid it is matched to keep that segment's id and name.
    `new_customer_days`: one-purchase-day customers this recent go to "new customers" and are left out of the
    clustering (None: no such rule).
    """
    silhouette_sample = min(silhouette_sample, 20_000)
    rng = np.random.default_rng(seed)
    new = is_new_customer(df, new_customer_days)
    established = df[~new]
    if len(established) <= min(k_range):
        set_aside = (f" (of {len(df)}; {int(new.sum())} are new customers with one purchase day in the last "
                     f"{new_customer_days} days)" if new.any() else "")
        raise ValueError(
            f"segmentation: {len(established)} customers to cluster{set_aside}, need more than {min(k_range)}: "
            "lower k_min" + (" or new_customer_days" if new.any() else "") + ", or load more history")
    sample = (established if len(established) <= fit_sample
              else established.iloc[np.sort(rng.choice(len(established), fit_sample, replace=False))])
    prep = FunctionTransformer(_prepare)
    xp = prep.fit_transform(sample)
    scaler = StandardScaler().fit(xp)
    xs = scaler.transform(xp)

    with _limits(len(xs)):
        table, fitted = _evaluate_candidates(xs, list(k_range), list(algorithms), silhouette_sample, n_bootstrap,
                                             seed)
    best = table.iloc[0]
    algorithm, k = str(best["algorithm"]), int(best["k"])
    est = fitted[(algorithm, k)]
    pipeline = Pipeline([("prepare", prep), ("scale", scaler), ("cluster", est)])

    labels = est.predict(xs)
    present = sorted(np.unique(labels).tolist())
    cent_prep = np.array([xp[labels == lab].mean(axis=0) for lab in present])  # log space, unscaled
    cent_std = scaler.transform(cent_prep)

    label_to_segment: dict[int, int] = {}
    names: dict[int, str] = {}
    matched_prev = 0
    if previous is not None:
        prev_ids = sorted(previous.centroids)
        prev_std = scaler.transform(np.array([previous.centroids[s] for s in prev_ids]))
        cost = ((cent_std[:, None, :] - prev_std[None, :, :]) ** 2).sum(axis=2)
        for i, j in _match(cost):
            if np.sqrt(cost[i, j]) <= max_match_distance:
                label_to_segment[present[i]] = prev_ids[j]
                names[prev_ids[j]] = previous.names[prev_ids[j]]
                matched_prev += 1
    # Remaining clusters: archetype names not already in use, new ids after every id used so far.
    free = [i for i, lab in enumerate(present) if lab not in label_to_segment]
    if free:
        arch_names = [a for a in ARCHETYPES if a not in names.values()]
        arch = np.array([ARCHETYPES[a] for a in arch_names])
        cost = ((cent_std[free][:, None, :] - arch[None, :, :]) ** 2).sum(axis=2)
        assigned = dict(_match(cost))
        used_ids = set(names) | (set(previous.names) if previous is not None else set())
        # Fresh ids in order of value (highest mean predicted CLV first) for readability.
        order = sorted(free, key=lambda i: -cent_prep[i][0])
        next_id = (max(used_ids) + 1) if used_ids else 0
        for i in order:
            fi = free.index(i)
            name = arch_names[assigned[fi]] if fi in assigned else f"segment {next_id}"
            label_to_segment[present[i]] = next_id
            names[next_id] = name
            next_id += 1
    # The rule segment keeps the production model's id and name when it had one, else takes the next free id.
    new_segment_id = None
    if new_customer_days is not None:
        new_segment_id = previous.new_segment_id if previous is not None else None
        if new_segment_id is None or new_segment_id in names:
            new_segment_id = max(set(names) | (set(previous.names) if previous is not None else set())) + 1
        names[new_segment_id] = (previous.names.get(new_segment_id, NEW_CUSTOMERS) if previous is not None
                                 else NEW_CUSTOMERS)
    # Labels the estimator never produced on the sample (rare with GMM) go to the nearest present cluster.
    for lab in range(k):
        if lab not in label_to_segment:
            label_to_segment[lab] = label_to_segment[present[0]]

    centroids = {label_to_segment[lab]: cent_prep[i].tolist() for i, lab in enumerate(present)}
    model = SegmentModel(pipeline=pipeline, algorithm=algorithm, k=k, label_to_segment=label_to_segment,
                         names=names, centroids=centroids, profiles=pd.DataFrame(), selection=table,
                         score=float(best["score"]),
                         info={"n_fit": int(len(sample)), "n_input": int(len(df)), "n_new": int(new.sum()),
                               "matched_previous": matched_prev, "seed": seed},
                         new_customer_days=new_customer_days, new_segment_id=new_segment_id)
    model.profiles = segment_profiles(df, model.predict(df), names)
    return model


def segment_profiles(df: pd.DataFrame, segments: pd.DataFrame, names: dict[int, str] | None = None) -> pd.DataFrame:
    """Per segment: customers, share and the mean of each raw segmentation input. With `names` (segment id ->
    name), segments nobody is in get a row too (0 customers), so "new customers: 0" is said, not left out."""
    x = segment_inputs(df)
    x["segment_id"] = segments["segment_id"].to_numpy()
    x["segment_name"] = segments["segment_name"].to_numpy()
    prof = x.groupby(["segment_id", "segment_name"]).agg(
        customers=("p_alive", "size"), **{f"mean_{c}": (c, "mean") for c in SEGMENT_FEATURES})
    prof = prof.reset_index()
    present = set(prof["segment_id"])
    empty = [{"segment_id": i, "segment_name": n, "customers": 0} for i, n in (names or {}).items()
             if i not in present]
    if empty:
        prof = pd.concat([prof, pd.DataFrame(empty)], ignore_index=True)
    prof.insert(3, "share", prof["customers"] / prof["customers"].sum())
    return prof.sort_values("mean_predicted_clv", ascending=False, na_position="last").reset_index(drop=True)


# -- MLflow ----------------------------------------------------------------------------------------

def log_to_mlflow(model: SegmentModel, example: pd.DataFrame, name: str = "segment_model",
                  registered_model_name: str | None = None):
    """Log `model` as an MLflow pyfunc (with signature) in the active run; returns the ModelInfo."""
    from clv_platform.lib import registry

    # the five inputs as the scores hold them (counts are integers), else as segment_inputs derives them
    example = (example[SEGMENT_FEATURES] if set(SEGMENT_FEATURES) <= set(example.columns)
               else segment_inputs(example))
    return registry.log_model_dir(model, "segment_model", example.head(200),
                                  ("scikit-learn", "lightgbm", "pandas", "numpy", "scipy"), name,
                                  registered_model_name)


def load_from_mlflow(model_uri: str) -> SegmentModel:
    """The SegmentModel behind a pyfunc logged by `log_to_mlflow` (e.g. 'models:/segment_model@production')."""
    from clv_platform.lib import registry

    return SegmentModel.load(registry.model_dir_from_uri(model_uri, "segment_model.pkl"))


def plot_selection(selection: pd.DataFrame, path):
    """Silhouette, stability-weighted silhouette, Davies-Bouldin and GMM BIC by k, per algorithm."""
    from clv_platform.lib import plots

    fig, axes = plots.pyplot().subplots(1, 3, figsize=(13, 3.8))
    for algorithm, tab in selection.sort_values("k").groupby("algorithm"):
        axes[0].plot(tab["k"], tab["silhouette"], "o-", label=f"{algorithm} silhouette")
        axes[0].plot(tab["k"], tab["score"], "s--", label=f"{algorithm} × stability")
        axes[1].plot(tab["k"], tab["davies_bouldin"], "o-", label=algorithm)
        if algorithm == "gmm":
            axes[2].plot(tab["k"], tab["bic"], "o-", label="gmm BIC")
    chosen = selection.loc[selection["chosen"]].iloc[0]
    axes[0].axvline(chosen["k"], color="grey", ls=":")
    axes[0].set_title(f"silhouette (chosen: {chosen['algorithm']} k={chosen['k']})")
    axes[1].set_title("Davies-Bouldin (lower is better)")
    axes[2].set_title("GMM BIC (lower is better)")
    for ax in axes:
        ax.set_xlabel("k")
        ax.legend(fontsize=7)
    return plots.save(fig, path)
