"""Smoke test of `clv bench score` on a small population (the figures are for people; no timing asserted)."""

from click.testing import CliRunner

from clv_platform.cli import cli


def test_bench_score_runs_every_stage_and_scores_every_customer():
    result = CliRunner().invoke(cli, ["bench", "score", "--customers", "20000"])
    assert result.exit_code == 0, result.output
    for stage in ("features (SQL)", "BTYD fit", "BTYD predictions", "CLV model + segment", "end to end"):
        assert stage in result.output
    assert "scoring 20,000 customers" in result.output  # every simulated customer has a first purchase
