"""clv_metrics on tiny cases whose values are computed by hand (see lib/metrics.py for the definitions)."""

import math

import numpy as np
import pytest

from clv_platform.lib import metrics

ACTUAL = [10, 0, 5, 0]


def test_hand_computed_case():
    m = metrics.clv_metrics(ACTUAL, [8, 1, 2, 0])
    assert m["mae"] == pytest.approx(6 / 4)  # |8-10| + |1-0| + |2-5| + 0
    assert m["rmse"] == pytest.approx(math.sqrt((4 + 1 + 9) / 4))
    assert m["spearman"] == pytest.approx(math.sqrt(0.9))  # ranks (4,1.5,3,1.5) vs (4,2,3,1)
    assert m["normalized_gini"] == pytest.approx(1.0)  # ranks customers exactly as the actuals do
    assert m["top10_capture"] == pytest.approx(10 / 15)  # ceil(0.4) = 1 customer: the 10
    assert m["total_bias"] == pytest.approx((11 - 15) / 15)


def test_gini_imperfect_ranking():
    # order by prediction: actuals 0, 5, 10, 0 -> L = 0, 1/3, 1, 1; gini = 7/3/4 - 5/8 = -1/24
    assert metrics.gini(ACTUAL, [1, 3, 2, 0]) == pytest.approx(-1 / 24)
    # perfect: L = 2/3, 1, 1, 1 -> 11/3/4 - 5/8 = 7/24
    assert metrics.gini(ACTUAL, ACTUAL) == pytest.approx(7 / 24)
    assert metrics.normalized_gini(ACTUAL, [1, 3, 2, 0]) == pytest.approx(-1 / 7)
    assert metrics.top_capture(ACTUAL, [1, 3, 2, 0]) == pytest.approx(0.0)


def test_ties_are_averaged_not_ordered():
    # groups {10, 0} and {5, 0}: smoothed 5, 5, 2.5, 2.5 -> L = 1/3, 2/3, 5/6, 1 -> gini 17/24 - 15/24 = 1/12
    assert metrics.gini(ACTUAL, [1, 1, 0, 0]) == pytest.approx(1 / 12)
    assert metrics.normalized_gini(ACTUAL, [1, 1, 0, 0]) == pytest.approx(2 / 7)
    # swapping actuals inside a tie group changes nothing
    assert metrics.gini([0, 10, 0, 5], [1, 1, 0, 0]) == pytest.approx(1 / 12)
    assert metrics.top_capture(ACTUAL, [1, 1, 0, 0]) == pytest.approx(5 / 15)


def test_decile_mape_weighted_by_actual_decile_means():
    predicted = list(range(20, 0, -1))  # 20..1, deciles = consecutive pairs
    actual = [30, 0] + predicted[2:]  # first decile: mean actual 15 vs mean prediction 19.5
    # sum of actual decile means = 15 + (18+...+1)/2 = 15 + 85.5
    assert metrics.decile_mape(actual, predicted) == pytest.approx(4.5 / 100.5)
    table = metrics.decile_table(actual, predicted)
    assert [r["n"] for r in table] == [2] * 10
    assert table[0]["mean_predicted"] == pytest.approx(19.5) and table[0]["mean_actual"] == pytest.approx(15)


def test_all_metrics_present_and_validation():
    m = metrics.clv_metrics([1, 2, 3], [1, 2, 3])
    assert set(m) == set(metrics.METRIC_NAMES)
    assert m["mae"] == 0 and m["normalized_gini"] == pytest.approx(1) and m["decile_mape"] == 0
    with pytest.raises(ValueError):
        metrics.clv_metrics([1, 2], [1])
    with pytest.raises(ValueError):
        metrics.clv_metrics([1, float("nan")], [1, 2])
    assert math.isnan(metrics.clv_metrics([0, 0], [1, 2])["total_bias"])


def test_bootstrap_sd_measures_sampling_noise():
    rng = np.random.default_rng(0)
    actual = rng.gamma(0.5, 20.0, 2000) * (rng.random(2000) < 0.4)
    noisy = actual + rng.normal(0, 5, 2000)
    sd = metrics.bootstrap_sd(actual, noisy, resamples=50, seed=1)
    assert set(sd) == set(metrics.METRIC_NAMES) - {"spearman"}
    assert all(v > 0 for v in sd.values()) and sd == metrics.bootstrap_sd(actual, noisy, resamples=50, seed=1)
    # a constant error of 1 is 1 on every resample: no spread in MAE
    assert metrics.bootstrap_sd(actual, actual + 1, resamples=20)["mae"] == pytest.approx(0, abs=1e-12)


def test_psi_by_hand_and_its_edges():
    from clv_platform.lib.metrics import psi, psi_categorical

    e = np.arange(100.0)                      # 2 bins at the median: shares (0.5, 0.5)
    a = np.r_[np.zeros(80), np.full(20, 99.0)]  # (0.8, 0.2)
    assert psi(e, a, bins=2) == pytest.approx((0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5))
    assert psi(e, e) == 0.0 and psi(e, e + 0.0) == 0.0
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 50.0, 20_000)
    assert psi(x, rng.gamma(2.0, 50.0, 20_000)) < 0.01      # same distribution, other sample: stable
    assert psi(x, x * 2) > 0.25                              # doubled: a large shift
    assert psi(np.r_[x, np.nan], x) == psi(x, x) and np.isnan(psi([], x))
    # all expected values equal: one edge, (-inf, 0] and (0, inf); everything moved to the other bin
    assert psi(np.zeros(50), np.ones(50)) == pytest.approx(2 * (1 - 1e-4) * np.log(1 / 1e-4))
    # categories: one only on one side counts with the floor share
    assert psi_categorical(["a", "a", "b", "b"], ["a", "a", "b", "b"]) == 0.0
    assert psi_categorical(["a", "b"], ["a", "c"]) == pytest.approx(
        (1e-4 - 0.5) * np.log(1e-4 / 0.5) + (0.5 - 1e-4) * np.log(0.5 / 1e-4))
