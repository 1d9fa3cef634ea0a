"""Smoke test of `clv bench fit` / `clv bench predict` on a small population (no timing assertions)."""

from click.testing import CliRunner

from clv_platform.cli import cli


def test_bench_fit_and_predict_small():
    runner = CliRunner()
    res = runner.invoke(cli, ["bench", "fit", "--customers", "20000"])
    assert res.exit_code == 0, res.output
    assert "speedup (wall)" in res.output and "max relative parameter difference" in res.output
    diff = float(res.output.split("max relative parameter difference ours vs plain: ")[1].split()[0])
    assert diff <= 1e-4
    res = runner.invoke(cli, ["bench", "predict", "--customers", "20000"])
    assert res.exit_code == 0, res.output
    assert "customers/s" in res.output
