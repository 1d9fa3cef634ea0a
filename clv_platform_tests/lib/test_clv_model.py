"""CLV model: training and scoring on simulated customers, comparison with BTYD, save/load.
(The MLflow pyfunc round trip is tested with the asset: clv_platform_tests/defs/test_models_assets.py.)"""

import dataclasses
import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from clv_platform.lib import clv_model, training
from clv_platform_tests.lib.clv_sim import load_source, simulate_lines

HORIZON = 365


@pytest.fixture(scope="module")
def trained():
    con = duckdb.connect()
    source = load_source(con, simulate_lines(3000, seed=0))
    ts = training.warehouse_training_set(con, horizon_days=HORIZON, source=source)
    con.close()
    model = clv_model.train(ts["train"], horizon_days=HORIZON, seed=0)
    table, rows = training.evaluate(model, ts["test"], ts["btyd_models"], HORIZON)
    return {"ts": ts, "model": model, "table": table, "rows": rows}


def test_training_set_is_split_by_customer_and_has_btyd_features(trained):
    ts = trained["ts"]
    assert set(ts["train"]["customer_id"]).isdisjoint(ts["test"]["customer_id"])
    n = len(ts["train"]) + len(ts["test"])
    assert len(ts["test"]) == pytest.approx(0.2 * n, abs=3 * (0.2 * 0.8 * n) ** 0.5)   # a hash: about 20%
    # the same customers at every retrain, whatever their order or the rows around them
    ids = pd.concat([ts["train"]["customer_id"], ts["test"]["customer_id"]], ignore_index=True)
    held = set(ids[training.held_out(ids, 0.2)])
    assert held == set(ts["test"]["customer_id"])
    assert set(ids[::-1][training.held_out(ids[::-1], 0.2)]) == held
    assert set(ids[:500][training.held_out(ids[:500], 0.2)]) == held & set(ids[:500])
    for col in training.BTYD_FEATURES + ["spend_holdout"]:
        assert col in ts["train"].columns
    feats = trained["model"].features
    assert "spend_holdout" not in feats and "frequency_holdout" not in feats and "customer_id" not in feats
    assert "btyd_clv" not in feats  # horizon-specific: the model derives value_btyd_365d instead
    assert {"p_alive", "expected_purchases_365d", "value_btyd_365d", "frequency", "recency"} <= set(feats)


def test_predictions_shape_interval_and_calibration(trained):
    model, test = trained["model"], trained["ts"]["test"]
    pred = model.predict(test)
    assert list(pred.columns) == clv_model.PREDICTION_COLUMNS
    assert len(pred) == len(test) and (pred.index == test.index).all()
    assert np.isfinite(pred.to_numpy()).all() and (pred.to_numpy() >= 0).all()
    assert (pred["predicted_clv_p10"] <= pred["predicted_clv"]).all()
    assert (pred["predicted_clv"] <= pred["predicted_clv_p90"]).all()
    assert (pred["predicted_clv_p10"] <= pred["predicted_clv_p50"]).all()
    assert (pred["predicted_clv_p50"] <= pred["predicted_clv_p90"]).all()
    # a quantile is 0 or at least half a cent, never boosting's 8e-11 for "nothing"
    for name in ("predicted_clv_p10", "predicted_clv_p50"):
        assert ((pred[name] == 0) | (pred[name] >= clv_model.HALF_CENT)).all(), name
    # the total-scale calibration holds on the training customers' out-of-fold predictions...
    assert model.info["n_train"] == len(trained["ts"]["train"])
    # ...and the held-out total is within 15 % (BTYD is 20-30 % low on this population)
    assert abs(trained["table"].loc["clv_model", "total_bias"]) < 0.15
    assert 0.6 < trained["table"].loc["clv_model", "interval_coverage"] <= 1.0


def test_model_beats_btyd_on_normalized_gini(trained):
    table = trained["table"]
    assert list(table.index) == ["clv_model", "clv_model_median", "btyd", "naive"]
    assert table.loc["clv_model", "normalized_gini"] > table.loc["btyd", "normalized_gini"] + 0.02
    assert table.loc["clv_model", "normalized_gini"] > table.loc["naive", "normalized_gini"]
    assert abs(table.loc["clv_model", "total_bias"]) < abs(table.loc["btyd", "total_bias"])
    # the median forecast is the one with the least absolute error (most customers most likely spend 0)
    assert table.loc["clv_model_median", "mae"] < table.loc["clv_model", "mae"]


def test_prediction_is_per_row_and_ignores_extra_columns(trained):
    model, test = trained["model"], trained["ts"]["test"]
    full = model.predict(test)
    one = model.predict(test.iloc[[7]])
    pd.testing.assert_frame_equal(one, full.iloc[[7]])
    shuffled = test.sample(frac=1.0, random_state=1).assign(unrelated="x")
    pd.testing.assert_frame_equal(model.predict(shuffled).sort_index(), full.sort_index())
    with pytest.raises(KeyError, match="lacks feature columns"):
        model.predict(test.drop(columns=["frequency"]))


def test_save_load_round_trip(trained, tmp_path):
    model, test = trained["model"], trained["ts"]["test"]
    path = model.save(tmp_path / "m")
    again = clv_model.ClvModel.load(path)
    assert again.features == model.features and again.scale == model.scale
    pd.testing.assert_frame_equal(again.predict(test), model.predict(test))


def test_two_part_model_and_tweedie_fallback(trained, tmp_path):
    model, ts = trained["model"], trained["ts"]
    # frequency_holdout in the training frame: purchases (Poisson) x order value (Gamma), one booster each
    assert model.info["model"].startswith("poisson") and len(model.boosters) == len(model.order_value_boosters) == 1
    assert len(model.info["n_trees"]) == 2
    # without a purchase-count column: one Tweedie booster of spend, still calibrated on the total
    tweedie = clv_model.train(ts["train"].drop(columns=["frequency_holdout"]), horizon_days=HORIZON, seed=0)
    assert tweedie.info["model"] == "tweedie spend" and not tweedie.order_value_boosters
    pred = tweedie.predict(ts["test"])["predicted_clv"]
    assert pred.sum() == pytest.approx(ts["test"]["spend_holdout"].clip(lower=0).sum(), rel=0.2)
    # models saved before the two-part model (format 1) still load and predict the same
    path = tweedie.save(tmp_path / "v1")
    manifest = json.loads((path / "clv_model.json").read_text())
    manifest["format_version"] = 1
    del manifest["n_order_value_boosters"]
    (path / "clv_model.json").write_text(json.dumps(manifest))
    pd.testing.assert_frame_equal(clv_model.ClvModel.load(path).predict(ts["test"]), tweedie.predict(ts["test"]))


def test_feature_columns_and_naive_baseline():
    df = pd.DataFrame({"customer_id": ["a", "b"], "frequency": [1, 0], "T": [100.0, 10.0], "total_spend": [50.0, 0.0],
                       "country": ["US", "FR"], "spend_holdout": [1.0, 0.0], "btyd_clv": [3.0, 1.0],
                       "btyd_expected_purchases": [1.0, 0.1], "as_of_date": pd.Timestamp("2024-01-01")})
    assert clv_model.feature_columns(df) == ["frequency", "T", "total_spend"]
    # Tenure below the horizon counts as the horizon: 50 spent in 100 days -> 50 over the next 365 days.
    np.testing.assert_allclose(clv_model.naive_baseline(df, 365), [50.0, 0.0])
    np.testing.assert_allclose(clv_model.naive_baseline(df, 50), [50 / 100 * 50, 0.0])


def test_calibration_map_is_monotone_and_keeps_zero():
    rng = np.random.default_rng(0)
    pred = rng.gamma(1.0, 10.0, 5000)
    actual = np.where(rng.random(5000) < 0.5, 0.0, pred * 1.5)
    kx, ky = clv_model._piecewise_fit(pred, actual, bins=20)
    grid = np.linspace(0, pred.max() * 1.2, 500)
    out = clv_model._piecewise_apply(grid, kx, ky)
    assert out[0] == 0 and (np.diff(out) >= -1e-9).all()
    assert clv_model._piecewise_apply(pred, kx, ky).mean() == pytest.approx(actual.mean(), rel=0.05)


def test_too_few_customers_is_a_clear_error():
    with pytest.raises(ValueError, match="at least"):
        clv_model.train(pd.DataFrame({"frequency": [1.0] * 5, "spend_holdout": [1.0] * 5}), horizon_days=30)


def test_auto_horizon_leaves_calibration_history():
    con = duckdb.connect()
    # (days = last day - first day: 729 is two years of daily files, 730 days, enough for 365 + 365)
    for days, expected in ((800, 365), (729, 365), (728, 364), (400, 200), (10, 7)):
        lines = pd.DataFrame({"order_ts": pd.Timestamp("2024-01-01") + pd.to_timedelta([0, days], unit="D")})
        con.register("lines", lines)
        con.execute("CREATE OR REPLACE TABLE tx AS SELECT * FROM lines").fetchall()
        assert training.auto_horizon(con, "tx") == expected
    with pytest.raises(ValueError, match="empty"):
        con.execute("DELETE FROM tx").fetchall()
        training.auto_horizon(con, "tx")


def test_model_without_median_booster_predicts_nan_median(trained):
    """Models saved before the p50 booster existed: same mean and interval, median NaN."""
    model, test = trained["model"], trained["ts"]["test"]
    old = dataclasses.replace(model, quantile_boosters={k: v for k, v in model.quantile_boosters.items() if k != "p50"})
    new, before = model.predict(test), old.predict(test)
    assert before["predicted_clv_p50"].isna().all()
    # p50 only ever moves p10 down / p90 up when the three quantiles are sorted
    assert (before["predicted_clv_p10"] >= new["predicted_clv_p10"]).all()
    assert (before["predicted_clv_p90"] <= new["predicted_clv_p90"]).all()
    pd.testing.assert_series_equal(before["predicted_clv"], new["predicted_clv"])
