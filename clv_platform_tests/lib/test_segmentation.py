"""Segmentation: model choice, names from profiles, stable names across retrains, per-row assignment,
save/load."""

import numpy as np
import pandas as pd
import pytest

from clv_platform.lib import segmentation as sg

KIND_NAMES = {0: "champions", 1: "loyal", 2: "promising", 3: "lost"}


def population(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Four kinds of customers: frequent recent high-value, regular, new one-timers, long-gone one-timers."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(4, n, p=[0.1, 0.25, 0.3, 0.35])
    return pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "predicted_clv": np.array([1500, 300, 60, 10])[kinds] * rng.lognormal(0, 0.4, n),
        "p_alive": np.clip(np.array([0.95, 0.8, 0.9, 0.2])[kinds] + rng.normal(0, 0.05, n), 0, 1),
        "frequency": np.array([12, 4, 0, 1])[kinds] + rng.poisson(1, n),
        "days_since_last_order": np.array([15, 60, 20, 300])[kinds] * rng.lognormal(0, 0.3, n),
        "avg_order_value": np.array([80, 50, 40, 35])[kinds] * rng.lognormal(0, 0.3, n),
        "kind": kinds,
    })


@pytest.fixture(scope="module")
def pop():
    return population()


@pytest.fixture(scope="module")
def model(pop):
    return sg.fit(pop, n_bootstrap=2, seed=0)


def test_candidates_metrics_and_choice(model):
    sel = model.selection
    assert set(sel["algorithm"]) == {"kmeans", "gmm"} and set(sel["k"]) == set(range(3, 9))
    assert sel["chosen"].sum() == 1
    best = sel.loc[sel["chosen"]].iloc[0]
    assert best["score"] == pytest.approx(sel["score"].max())
    assert best["score"] == pytest.approx(best["silhouette"] * best["stability"])
    assert sel.loc[sel["algorithm"] == "gmm", "bic"].notna().all()
    assert model.k == 4  # the population has four kinds of customers
    assert model.score == pytest.approx(best["score"]) and model.metrics["k"] == 4


def test_names_are_unique_and_follow_the_profiles(model, pop):
    assert len(set(model.names.values())) == len(model.names)
    seg = model.predict(pop)
    # each kind lands (mostly) in the segment named for it; one-purchase-day customers of the last 30 days
    # in "new customers", whatever their kind
    expected = pop["kind"].map(KIND_NAMES).where(~sg.is_new_customer(pop, 30), sg.NEW_CUSTOMERS)
    agree = (seg["segment_name"].to_numpy() == expected.to_numpy()).mean()
    assert agree > 0.9
    prof = model.profiles
    assert prof["share"].sum() == pytest.approx(1.0) and prof["customers"].sum() == len(pop)
    top = prof.iloc[0]
    assert top["segment_name"] == "champions" and top["mean_predicted_clv"] == prof["mean_predicted_clv"].max()


def test_names_stable_across_two_retrains_on_bootstrap_resamples(pop):
    rng = np.random.default_rng(1)
    ks = range(3, 7)
    first = sg.fit(pop.iloc[rng.integers(0, len(pop), len(pop))], k_range=ks, n_bootstrap=1, seed=1)
    second = sg.fit(pop.iloc[rng.integers(0, len(pop), len(pop))], previous=first, k_range=ks, n_bootstrap=1,
                    seed=2)
    assert second.info["matched_previous"] == min(first.k, second.k)
    a, b = first.predict(pop), second.predict(pop)
    assert (a["segment_name"] == b["segment_name"]).mean() > 0.95
    assert (a["segment_id"] == b["segment_id"]).mean() > 0.95
    # the stable name/id pairs carry over
    for sid, name in first.names.items():
        if sid in second.names:
            assert second.names[sid] == name


def test_previous_names_win_over_archetypes(pop):
    first = sg.fit(pop, k_range=[4], n_bootstrap=1, seed=0)
    renamed = {sid: f"custom {name}" for sid, name in first.names.items()}
    first.names = renamed
    second = sg.fit(pop.sample(frac=0.8, random_state=3), previous=first, k_range=[4], n_bootstrap=1, seed=4)
    assert set(second.names.values()) == set(renamed.values())


def test_assignment_is_per_row(model, pop):
    full = model.predict(pop)
    singles = pd.concat([model.predict(pop.iloc[[i]]) for i in range(0, len(pop), 97)])
    pd.testing.assert_frame_equal(singles, full.loc[singles.index])
    part = pop.sample(frac=0.1, random_state=0)
    pd.testing.assert_frame_equal(model.predict(part), full.loc[part.index])
    # a request holding only extreme customers does not move anyone else's segment
    extreme = pd.concat([part, pop.nlargest(50, "predicted_clv")])
    pd.testing.assert_frame_equal(model.predict(extreme).iloc[: len(part)], full.loc[part.index])


def test_inputs_fallbacks():
    df = pd.DataFrame({"btyd_clv": [5.0], "p_alive": [0.5], "frequency": [2], "T": [100.0], "recency": [40.0],
                       "total_spend": [90.0], "orders": [3]})
    x = sg.segment_inputs(df)
    assert x.iloc[0].to_dict() == {"predicted_clv": 5.0, "p_alive": 0.5, "frequency": 2.0,
                                   "days_since_last_order": 60.0, "avg_order_value": 30.0}


def test_save_load_round_trip(model, pop, tmp_path):
    again = sg.SegmentModel.load(model.save(tmp_path / "seg"))
    pd.testing.assert_frame_equal(again.predict(pop), model.predict(pop))
    assert again.names == model.names


def test_recent_one_purchase_day_customers_are_new_customers_and_left_out_of_the_clusters(pop):
    model = sg.fit(pop, k_range=[4], n_bootstrap=1, seed=0, new_customer_days=30)
    new = sg.is_new_customer(pop, 30)
    assert 0 < new.sum() < len(pop) and model.info["n_new"] == new.sum()
    assert model.info["n_fit"] == len(pop) - new.sum()
    assert model.names[model.new_segment_id] == sg.NEW_CUSTOMERS
    assert model.new_segment_id not in model.label_to_segment.values() and model.new_segment_id not in model.centroids
    # the rule reads the row only: a valuable recent one-timer is new (the last 30 days: 0 to 29 days back); one
    # more purchase day, or a day past them, and the clusters decide
    one = pop.iloc[[0]].assign(predicted_clv=5000.0, p_alive=1.0, frequency=0, days_since_last_order=3.0)
    assert model.predict(one)["segment_name"].iloc[0] == sg.NEW_CUSTOMERS
    assert model.predict(one.assign(days_since_last_order=29.0))["segment_name"].iloc[0] == sg.NEW_CUSTOMERS
    for other in (one.assign(frequency=1), one.assign(days_since_last_order=30.0)):
        assert model.predict(other)["segment_name"].iloc[0] != sg.NEW_CUSTOMERS
    seg = model.predict(pop)
    assert (seg["segment_name"] == sg.NEW_CUSTOMERS).to_numpy().tolist() == new.tolist()
    assert model.profiles.set_index("segment_name").loc[sg.NEW_CUSTOMERS, "customers"] == new.sum()

    # a retrain keeps the rule segment's id and name; a model without the rule (or saved before it) has none
    again = sg.fit(pop.sample(frac=0.8, random_state=5), previous=model, k_range=[4], n_bootstrap=1, seed=6)
    assert again.new_segment_id == model.new_segment_id and again.names[again.new_segment_id] == sg.NEW_CUSTOMERS
    # with nobody new, the segment is still there, with 0 customers
    old_only = pop[~new]
    prof = sg.fit(old_only, k_range=[4], n_bootstrap=1, seed=0).profiles.set_index("segment_name")
    assert prof.loc[sg.NEW_CUSTOMERS, "customers"] == 0 and prof["customers"].sum() == len(old_only)
    assert prof.index[-1] == sg.NEW_CUSTOMERS
    plain = sg.fit(pop, k_range=[4], n_bootstrap=1, seed=0, new_customer_days=None)
    assert plain.new_segment_id is None and sg.NEW_CUSTOMERS not in plain.predict(pop)["segment_name"].tolist()
    del plain.__dict__["new_customer_days"], plain.__dict__["new_segment_id"]   # as unpickled from an old save
    assert sg.NEW_CUSTOMERS not in plain.predict(pop)["segment_name"].tolist()


def test_too_few_customers_to_cluster_once_the_new_ones_are_set_aside_is_a_clear_error(pop):
    recent = pop.head(50).assign(frequency=0, days_since_last_order=5.0)
    with pytest.raises(ValueError, match=r"segmentation: 2 customers to cluster \(of 52; 50 are new customers"):
        sg.fit(pd.concat([recent, pop.tail(2)]), k_range=[3], n_bootstrap=1, new_customer_days=30)
