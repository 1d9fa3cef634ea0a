"""Backtest: K-fold over customers on the CDNOW sample, the FoldModel hook, output files, `clv backtest`."""

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from clv_platform.cli import cli
from clv_platform.lib import backtest, cdnow_frame
from clv_platform.lib.metrics import METRIC_NAMES


@pytest.fixture(scope="module")
def sample_cal() -> pd.DataFrame:
    cal, cutoff, horizon = backtest.load_calibration_holdout("cdnow-sample")
    assert str(cutoff) == "1997-09-30" and horizon == 273
    return cal


def _mean_spend_model(train, test, ctx):
    """A naive model: every test customer gets the train customers' mean holdout spend."""
    assert "btyd_clv" in train and "btyd_clv" in test and ctx["btyd_models"].gamma_gamma is not None
    value = float(train["spend_holdout"].mean())
    return pd.DataFrame({"customer_id": test["customer_id"], "predicted_clv": value,
                         "predicted_clv_p10": 0.0, "predicted_clv_p50": 0.0, "predicted_clv_p90": 2 * value})


def test_kfold_backtest_out_of_fold(sample_cal):
    hook = backtest.FoldModel("naive", "predicted_clv", _mean_spend_model, also_scored={"zero": "predicted_clv_p50"})
    result, rows = backtest.run_backtest(sample_cal, 273, folds=3, fold_models=[hook], include_pareto=False)
    assert len(rows) == len(sample_cal) == result["n_customers"] == 2357
    assert rows["customer_id"].is_unique and set(rows["fold"]) == {0, 1, 2}
    for col in ("btyd_expected_purchases", "btyd_clv", "predicted_clv", "predicted_clv_p10", "predicted_clv_p50",
                "predicted_clv_p90"):
        assert rows[col].notna().all(), col
    np.testing.assert_allclose(rows["btyd_clv"],
                               rows["btyd_expected_purchases"] * rows["btyd_expected_avg_order_value"])
    assert set(result["metrics"]) == {"btyd", "naive", "zero"}
    assert result["metrics"]["zero"]["total_bias"] == -1.0  # the also_scored column, scored on its own
    assert set(result["metrics"]["btyd"]) == set(METRIC_NAMES)
    assert set(result["metrics_bootstrap_sd"]) == {"btyd", "naive", "zero"}
    assert 0 < result["metrics_bootstrap_sd"]["btyd"]["top10_capture"] < 0.1
    # BTYD ranks customers far better than a constant
    assert result["metrics"]["btyd"]["normalized_gini"] > 0.5
    assert len(result["fold_params"]) == 3
    json.dumps(backtest.jsonable(result), allow_nan=False)


def test_single_fold_is_the_published_in_sample_fit(sample_cal):
    result, rows = backtest.run_backtest(sample_cal, 273, folds=1, include_pareto=True)
    assert result["params"]["bgnbd"]["params"]["r"] == pytest.approx(0.2426, abs=1e-3)
    assert set(result["holdout_purchases"]) == {"bgnbd", "pareto_nbd"}
    assert rows["fold"].eq(0).all()
    # in weeks of the full window, mean predicted 39-week purchases is close to the realised mean
    assert rows["btyd_expected_purchases"].mean() == pytest.approx(rows["frequency_holdout"].mean(), rel=0.15)


def test_write_rows_by_extension(tmp_path):
    frame = pd.DataFrame({"customer_id": ["a"], "btyd_clv": [1.5]})
    assert pd.read_parquet(backtest.write_rows(frame, tmp_path / "r.parquet")).equals(frame)
    assert pd.read_csv(backtest.write_rows(frame, tmp_path / "r.csv"))["btyd_clv"].tolist() == [1.5]
    with pytest.raises(ValueError, match="parquet or .csv"):
        backtest.write_rows(frame, tmp_path / "r.json")


def test_warehouse_dataset_reads_staging(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    cdnow_frame.load_cdnow(con, sample=True)
    con.close()
    cal, cutoff, horizon = backtest.load_calibration_holdout("warehouse", warehouse_path=path, horizon_days=273)
    assert str(cutoff) == "1997-09-30" and len(cal) == 2357  # latest day 1998-06-30 minus 273 days
    # no --horizon-days: training's rule, half of the 546-day history (365 would leave 26 weeks of calibration):
    # the published protocol's 39 weeks after 1997-09-30
    cal, cutoff, horizon = backtest.load_calibration_holdout("warehouse", warehouse_path=path)
    assert (horizon, str(cutoff)) == (273, "1997-09-30")
    with pytest.raises(FileNotFoundError):
        backtest.load_calibration_holdout("warehouse", warehouse_path=tmp_path / "missing.duckdb")


def test_cli_prints_one_json_object(tmp_path, monkeypatch):
    # BTYD only here (the CLV model's own tests cover its fold hook)
    monkeypatch.setattr(backtest, "default_fold_models", lambda: [])
    out = tmp_path / "rows.csv"
    res = CliRunner().invoke(cli, ["backtest", "--dataset", "cdnow-sample", "--cutoff", "1997-09-30",
                                   "--horizon-days", "273", "--folds", "2", "--no-pareto", "--out", str(out)])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout.strip())
    assert payload["dataset"] == "cdnow-sample" and payload["folds"] == 2
    assert set(payload["metrics"]["btyd"]) == set(METRIC_NAMES)
    rows = pd.read_csv(out, dtype={"customer_id": str})
    assert {"customer_id", "btyd_expected_purchases", "btyd_clv"} <= set(rows.columns) and len(rows) == 2357


@pytest.mark.parametrize(("args", "message"), [
    (["--cutoff", "1998-01-01", "--horizon-days", "273"],
     "the 273-day horizon after 1998-01-01 runs past the end of the cdnow-sample data (1998-06-30)"),
    (["--cutoff", "1999-01-01"], "cutoff 1999-01-01 leaves no holdout: the cdnow-sample data ends on 1998-06-30"),
    (["--cutoff", "1997-01-01"], "backtest at cutoff 1997-01-01 failed: BG/NBD did not converge"),
    (["--out", "/nonexistent-folder/rows.parquet"], "Invalid value for --out: cannot write into /nonexistent-folder"),
])
def test_cli_refuses_what_would_mislead_or_fail_late_in_one_line(args, message):
    res = CliRunner().invoke(cli, ["backtest", "--dataset", "cdnow-sample", "--no-pareto", *args])
    assert res.exit_code != 0 and message in res.output, res.output
    assert isinstance(res.exception, SystemExit)       # a one-line error, not an exception


def test_one_fold_leaves_the_clv_model_out_and_says_why(monkeypatch):
    """With --folds 1 every customer is both fitted and scored: fine for BTYD (it never sees the holdout), but
    the CLV model learns from the holdout spend, so its figures would be in-sample: not computed, and said."""
    asked = []
    monkeypatch.setattr(backtest, "default_fold_models", lambda: asked.append(1) or [])
    res = CliRunner().invoke(cli, ["backtest", "--dataset", "cdnow-sample", "--folds", "1", "--no-pareto"])
    assert res.exit_code == 0, res.output
    assert not asked and "--folds 1: the CLV model is left out" in res.stderr
    assert set(json.loads(res.stdout.strip())["metrics"]) == {"btyd"}
