"""Smoke test of `clv bench features` on a small population (the figures are for people; no timing asserted),
and the benchmark's reference query against lifetimes itself."""

import json
import warnings

import duckdb
import pandas as pd
from click.testing import CliRunner

from benchmarks import bench_features
from clv_platform.cli import cli
from clv_platform.lib import features


def test_bench_features_prints_both_ratios():
    result = CliRunner().invoke(cli, ["bench", "features", "--customers", "2000", "--lines", "20000",
                                      "--subset-customers", "500", "--lifetimes-full", "yes", "--json"])
    assert result.exit_code == 0, result.output
    assert "speedup at full size" in result.output
    assert "reference, the same 4 columns in DuckDB SQL" in result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["customers"] == 2000 and figures["lines"] == 20000
    assert figures["summary_columns_seconds"] > 0 and figures["summary_speedup"] > 0
    assert isinstance(figures["meets_goals"], bool)


def test_reference_summary_sql_equals_lifetimes():
    from lifetimes.utils import summary_data_from_transaction_data

    con = duckdb.connect()
    bench_features.make_transactions(con, customers=300, lines=3000)
    sql = bench_features.SUMMARY_SQL.read_text().replace("{source}", "bench_tx")
    ours = features.query_frame(con, sql, {"as_of": bench_features.AS_OF, "time_unit": 1.0}).set_index("customer_id")
    purchases = con.execute("SELECT customer_id, order_ts, CAST(amount AS DOUBLE) AS amount FROM bench_tx "
                            "WHERE quantity > 0").df()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = summary_data_from_transaction_data(purchases, "customer_id", "order_ts", monetary_value_col="amount",
                                                    observation_period_end=str(bench_features.AS_OF))
    theirs.index.name = "customer_id"
    pd.testing.assert_frame_equal(ours, theirs.loc[ours.index, list(ours.columns)], check_dtype=False, rtol=1e-9)
    assert len(ours) == len(theirs) == 300
