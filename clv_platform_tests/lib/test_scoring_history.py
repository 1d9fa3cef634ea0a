"""serving.segment_history carries the median forecast, including in warehouses made before it existed."""

import duckdb
import numpy as np
import pandas as pd

from clv_platform.lib import scoring

# The table as the platform created it before predicted_clv_p50 (no median column).
OLD_HISTORY_DDL = """
CREATE SCHEMA serving;
CREATE TABLE serving.segment_history (
    month VARCHAR NOT NULL, as_of_date DATE NOT NULL, customer_id VARCHAR NOT NULL,
    predicted_clv DOUBLE, predicted_clv_p10 DOUBLE, predicted_clv_p90 DOUBLE, btyd_clv DOUBLE, p_alive DOUBLE,
    segment_id BIGINT, segment_name VARCHAR, clv_model_version VARCHAR, segment_model_version VARCHAR
);
INSERT INTO serving.segment_history VALUES
    ('2024-09', DATE '2024-09-30', 'C1', 10.0, 5.0, 20.0, 9.0, 0.9, 0, 'loyal', '1', '1');
"""


def _scores(month_end: str, median: list[float]) -> pd.DataFrame:
    return pd.DataFrame({
        "as_of_date": pd.Timestamp(month_end), "customer_id": ["C1", "C2"], "predicted_clv": [12.0, 3.0],
        "predicted_clv_p10": [6.0, 0.0], "predicted_clv_p50": median, "predicted_clv_p90": [25.0, 8.0],
        "btyd_clv": [11.0, 2.0], "p_alive": [0.95, 0.4], "segment_id": [0, 1], "segment_name": ["loyal", "at risk"],
        "clv_model_version": "2", "segment_model_version": "1",
    })


def test_history_keeps_the_median_and_migrates_an_old_table():
    con = duckdb.connect()
    con.execute(OLD_HISTORY_DDL)

    assert scoring.write_history_month(con, "2024-10", _scores("2024-10-31", [10.5, 1.0])) == 2
    hist = con.execute(
        "SELECT month, customer_id, predicted_clv, predicted_clv_p50, segment_name FROM serving.segment_history "
        "ORDER BY month, customer_id"
    ).df()
    # The old month is kept as it was (no median known then); the new month carries it, by name not position.
    assert hist["month"].tolist() == ["2024-09", "2024-10", "2024-10"]
    assert np.isnan(hist["predicted_clv_p50"].iloc[0])
    assert hist["predicted_clv_p50"].iloc[1:].tolist() == [10.5, 1.0]
    assert hist["predicted_clv"].tolist() == [10.0, 12.0, 3.0]
    assert hist["segment_name"].tolist() == ["loyal", "loyal", "at risk"]

    # Rewriting a month replaces it; a model without a median forecast leaves the column empty.
    scoring.write_history_month(con, "2024-10", _scores("2024-10-31", [np.nan, np.nan]).drop(
        columns="predicted_clv_p50"))
    again = con.execute("SELECT predicted_clv_p50 FROM serving.segment_history WHERE month = '2024-10'").df()
    assert len(again) == 2 and again["predicted_clv_p50"].isna().all()


def test_new_history_table_has_the_median_next_to_the_interval():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA serving")
    scoring.write_history_month(con, "2024-10", _scores("2024-10-31", [10.5, 1.0]))
    columns = [r[0] for r in con.execute("DESCRIBE serving.segment_history").fetchall()]
    assert columns == scoring.HISTORY_COLUMNS
