"""Customer features and calibration/holdout sets on tiny hand-built transaction sets (values by hand)."""

import datetime as dt
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from clv_platform.lib import features, warehouse


def _line(customer, order, ts, amount, quantity=1, category="books", channel="web", country="US", orig=None):
    return {
        "customer_id": customer,
        "order_id": order,
        "order_ts": pd.Timestamp(ts),
        "amount": amount,
        "quantity": quantity,
        "category": category,
        "channel": channel,
        "country": country,
        "original_order_id": orig,
    }


def _load(con, rows, table="staging.transactions"):
    df = pd.DataFrame(rows)
    df["line_number"] = df.groupby("order_id").cumcount() + 1
    con.register("rows_df", df)
    if table == "staging.transactions":
        con.execute(
            """INSERT INTO staging.transactions
               SELECT CAST(order_ts AS DATE), order_id, line_number, customer_id, order_ts, category, quantity,
                      CAST(abs(amount) / abs(quantity) AS DECIMAL(18, 6)), CAST(amount AS DECIMAL(18, 2)),
                      channel, country, original_order_id, 'test', row_number() OVER ()
               FROM rows_df"""
        )
    else:
        con.execute(
            f"""CREATE OR REPLACE TABLE {table} AS
                SELECT customer_id, order_id, order_ts, CAST(amount AS DECIMAL(18, 2)) AS amount, quantity,
                       category, channel, country FROM rows_df"""
        )
    con.unregister("rows_df")


@pytest.fixture
def con():
    c = warehouse.connect(":memory:")
    yield c
    c.close()


# A: two orders on Jan 1 (same day), a Saturday order on Jan 6 returned on Jan 8, an order on Jan 11.
# B: one purchase only (Jan 3). C: first seen on Jan 20 (after the cutoff used below).
ROWS = [
    _line("A", "O1", "2024-01-01 10:00", 10.0, 1, "books", "web"),
    _line("A", "O1", "2024-01-01 10:00", 10.0, 2, "music", "web"),
    _line("A", "O2", "2024-01-01 18:00", 7.0, 1, "books", "app"),
    _line("A", "O3", "2024-01-06 09:00", 30.0, 1, "home", "store"),
    _line("A", "R1", "2024-01-08 09:00", -30.0, -1, "home", "store", orig="O3"),
    _line("A", "O4", "2024-01-11 09:00", 12.0, 1, "home", "web", "GB"),
    _line("B", "O5", "2024-01-03 09:00", 12.0, 3, "toys", "phone", "DE"),
    _line("C", "O6", "2024-01-20 23:59:59", 4.0, 1, "toys", "phone", "DE"),
]


def _by_id(df):
    return df.set_index("customer_id")


def test_as_of_in_the_middle_values_by_hand(con):
    _load(con, ROWS)
    f = _by_id(features.customer_features(con, dt.date(2024, 1, 10)))
    assert list(f.index) == ["A", "B"]  # C's first purchase is after as_of
    a = f.loc["A"]
    # purchase days Jan 1 (10+10+7 = 27) and Jan 6 (30); the Jan 8 return makes no purchase; Jan 11 is later
    assert a.frequency == 1
    assert a.recency == 5.0 and a["T"] == 9.0
    assert a.monetary_value == 30.0  # mean over repeat purchase days only (Jan 6)
    assert a.orders == 3  # O1, O2, O3 (R1 is a return, O4 after as_of)
    assert a.gross_spend == 57.0 and a.total_spend == 27.0
    assert a.return_rate == pytest.approx(30 / 57)
    assert a.avg_order_value == pytest.approx(19.0)  # (20 + 7 + 30) / 3
    assert a.avg_order_value_std == pytest.approx(np.std([20, 7, 30], ddof=1))
    assert a.inter_purchase_days_mean == 5.0
    assert math.isnan(a.inter_purchase_days_std)  # one gap only
    assert a.days_since_last_order == 4 and a.tenure_days == 9
    assert a.spend_last_90d == 27.0 and a.spend_prev_90d == 0.0 and a.spend_trend == 1.0
    assert a.category_diversity == 3  # books, music, home
    assert (a.channel_share_web, a.channel_share_app, a.channel_share_store, a.channel_share_phone) == (
        pytest.approx(1 / 3),
        pytest.approx(1 / 3),
        pytest.approx(1 / 3),
        0.0,
    )
    assert a.weekend_share == pytest.approx(1 / 3)  # 2024-01-06 is a Saturday
    assert a.avg_basket_size == pytest.approx(5 / 3)  # items 3, 1, 1
    assert a.avg_lines_per_order == pytest.approx(4 / 3)
    assert a.country == "US"  # the GB order is after as_of
    assert pd.Timestamp(a.as_of_date) == pd.Timestamp("2024-01-10")


def test_money_is_exact_to_the_cent_not_a_float_sum(con):
    # summed as floats in any order, 586.78 + 710.06 + 85.38 is 1382.2199999999998, and the two repeat days
    # 795.4399999999999
    _load(con, [_line("D", "O1", "2024-01-01 09:00", 586.78), _line("D", "O2", "2024-01-02 09:00", 710.06),
                _line("D", "O3", "2024-01-03 09:00", 85.38)])
    d = _by_id(features.customer_features(con, "2024-01-10")).loc["D"]
    assert (d.total_spend, d.gross_spend, d.spend_last_90d) == (1382.22, 1382.22, 1382.22)
    assert d.monetary_value == 795.44 / 2 and d.avg_order_value == 1382.22 / 3


def test_one_purchase_only(con):
    _load(con, ROWS)
    b = _by_id(features.customer_features(con, "2024-01-10")).loc["B"]
    assert (b.frequency, b.recency, b["T"], b.monetary_value) == (0, 0.0, 7.0, 0.0)
    assert b.orders == 1 and b.total_spend == 12.0 and b.avg_basket_size == 3.0
    assert math.isnan(b.avg_order_value_std) and math.isnan(b.inter_purchase_days_mean)
    assert b.channel_share_phone == 1.0 and b.country == "DE" and b.category_diversity == 1


def test_same_day_purchases_merge_and_later_as_of(con):
    _load(con, ROWS)
    f = _by_id(features.customer_features(con, "2024-01-31"))
    a = f.loc["A"]
    # purchase days Jan 1, Jan 6, Jan 11: frequency 2, repeat days spend 30 and 12
    assert (a.frequency, a.recency, a["T"], a.monetary_value) == (2, 10.0, 30.0, 21.0)
    assert a.inter_purchase_days_mean == 5.0 and a.inter_purchase_days_std == 0.0
    assert a.orders == 4 and a.total_spend == 39.0
    c = f.loc["C"]  # 23:59:59 on Jan 20 still belongs to Jan 20
    assert (c.frequency, c["T"]) == (0, 11.0)


def test_time_unit_weeks(con):
    _load(con, ROWS)
    a = _by_id(features.customer_features(con, "2024-01-31", time_unit_days=7)).loc["A"]
    assert a.recency == pytest.approx(10 / 7) and a["T"] == pytest.approx(30 / 7)
    assert a.tenure_days == 30  # day-valued columns stay in days


def test_as_of_before_everything_is_empty_with_columns(con):
    _load(con, ROWS)
    f = features.customer_features(con, "2023-12-31")
    assert len(f) == 0
    assert list(f.columns[:5]) == ["customer_id", "frequency", "recency", "T", "monetary_value"]


def test_no_leakage_later_rows_do_not_change_features(con):
    _load(con, ROWS)
    before = features.customer_features(con, "2024-01-10")
    _load(con, [_line("A", "O9", "2024-01-10 23:59:59", 5.0), _line("B", "O10", "2024-01-11 00:00:00", 99.0)])
    after = _by_id(features.customer_features(con, "2024-01-10"))
    assert after.loc["A"].frequency == 2  # the Jan 10 order counts ...
    pd.testing.assert_series_equal(after.loc["B"], _by_id(before).loc["B"])  # ... the Jan 11 one does not


def test_return_only_day_is_not_a_purchase_and_return_rate(con):
    rows = [
        _line("D", "O1", "2024-02-01 12:00", 50.0, 2),
        _line("D", "R1", "2024-02-05 12:00", -25.0, -1, orig="O1"),
    ]
    _load(con, rows)
    d = _by_id(features.customer_features(con, "2024-02-10")).loc["D"]
    assert (d.frequency, d.recency, d["T"], d.monetary_value) == (0, 0.0, 9.0, 0.0)
    assert d.orders == 1 and d.total_spend == 25.0 and d.return_rate == 0.5
    assert d.days_since_last_order == 9


def test_spend_windows_and_trend(con):
    rows = [
        _line("E", "O1", "2024-01-01 12:00", 100.0),  # 181 days before as_of: in neither window
        _line("E", "O2", "2024-03-01 12:00", 40.0),  # prev 90 days (as_of-180, as_of-90]
        _line("E", "O3", "2024-06-29 12:00", 10.0),  # last 90 days (as_of-90, as_of]
    ]
    _load(con, rows)
    e = _by_id(features.customer_features(con, "2024-06-30")).loc["E"]
    assert e.spend_last_90d == 10.0 and e.spend_prev_90d == 40.0
    assert e.spend_trend == pytest.approx((10 - 40) / 50)


def test_country_is_the_latest_orders_with_same_day_ties_to_the_last_name(con):
    rows = [_line("F", "O1", "2024-01-01", 1.0, country="SE"), _line("F", "O2", "2024-01-02", 1.0, country="FR")]
    rows += [_line("G", f"G{i}", f"2024-01-0{i + 1}", 1.0, country=c) for i, c in enumerate(["US", "US", "DE"])]
    rows += [_line("H", f"H{i}", "2024-01-01", 1.0, country=c) for i, c in enumerate(["US", "GB", "US", "AA"])]
    rows += [_line("J", "J1", "2024-01-01", 1.0, country="NL"), _line("J", "J2", "2024-01-06", 1.0, country="GB")]
    _load(con, rows)
    f = _by_id(features.customer_features(con, "2024-01-05"))
    assert f.loc["F"].country == "FR"  # the later order
    assert f.loc["G"].country == "DE"  # latest wins over most frequent
    assert f.loc["H"].country == "US"  # one day, four countries: the last name in sort order
    assert f.loc["J"].country == "NL"  # the GB order is after as_of


def test_category_diversity_counts_up_to_64_categories_exactly(con):
    rows = [_line("K", f"K{i}", "2024-01-01", 1.0, category=f"cat{i:02d}") for i in range(70)]
    rows += [_line("L", f"L{i}", "2024-01-02", 1.0, category=f"cat{i:02d}") for i in range(64)]
    rows += [_line("L", "L99", "2024-01-02", -1.0, -1, category="returned-only")]  # returns add none
    _load(con, rows)
    f = _by_id(features.customer_features(con, "2024-01-05"))
    assert f.loc["L"].category_diversity == 64
    assert f.loc["K"].category_diversity == 64  # categories beyond the 63 most frequent share one bit


def test_calibration_holdout_by_hand(con):
    _load(con, ROWS)
    ch = _by_id(features.calibration_holdout(con, "2024-01-10", 10))
    assert list(ch.index) == ["A", "B"]  # C first seen after the cutoff: excluded
    calib = _by_id(features.customer_features(con, "2024-01-10"))
    pd.testing.assert_frame_equal(ch[calib.columns], calib)
    assert ch.loc["A", "frequency_holdout"] == 1 and ch.loc["A", "spend_holdout"] == 12.0
    assert ch.loc["B", "frequency_holdout"] == 0 and ch.loc["B", "spend_holdout"] == 0.0
    assert (ch["duration_holdout"] == 10.0).all()
    # the horizon ends inclusively on cutoff + horizon_days; a week time unit scales duration only
    ch_weeks = _by_id(features.calibration_holdout(con, "2024-01-06", 5, time_unit_days=7))
    assert ch_weeks.loc["A", "frequency_holdout"] == 1  # Jan 11 = Jan 6 + 5 days
    assert ch_weeks.loc["A", "spend_holdout"] == -18.0  # the Jan 8 return is in the horizon, net
    assert ch_weeks.loc["A", "duration_holdout"] == pytest.approx(5 / 7)


def test_holdout_same_day_purchases_count_once(con):
    rows = [
        _line("G", "O1", "2024-01-01", 5.0),
        _line("G", "O2", "2024-01-03 08:00", 5.0),
        _line("G", "O3", "2024-01-03 20:00", 6.0),
    ]
    _load(con, rows)
    g = _by_id(features.calibration_holdout(con, "2024-01-01", 30)).loc["G"]
    assert g.frequency_holdout == 1 and g.spend_holdout == 11.0


def test_any_source_table_and_identifier_validation(con):
    con.execute("CREATE SCHEMA IF NOT EXISTS bench")
    _load(con, ROWS, table="bench.tx")
    _load(con, ROWS)
    pd.testing.assert_frame_equal(
        features.customer_features(con, "2024-01-10", source="bench.tx"),
        features.customer_features(con, "2024-01-10"),
    )
    for bad in ["tx; DROP TABLE x", "a.b.c.d", "x y", "", "1abc", 'a"b']:
        with pytest.raises(ValueError):
            features.customer_features(con, "2024-01-10", source=bad)


def test_write_customer_features_replaces_table(con):
    _load(con, ROWS)
    as_of, n = features.write_customer_features(con)
    assert (as_of, n) == (dt.date(2024, 1, 20), 3)
    stored = con.execute("SELECT * FROM features.customer_features ORDER BY customer_id").df()
    pd.testing.assert_frame_equal(stored, features.customer_features(con, as_of))
    assert features.write_customer_features(con, as_of="2024-01-10")[1] == 2


def _random_transactions(seed=7, customers=60, lines=600):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01")
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:03d}" for i in rng.integers(0, customers, lines)],
            "order_id": [f"O{i:05d}" for i in range(lines)],
            "order_ts": start + pd.to_timedelta(rng.integers(0, 200 * 86400, lines), unit="s"),
            "amount": np.round(rng.gamma(2.0, 20.0, lines), 2),
            "quantity": rng.integers(1, 4, lines),
            "category": rng.choice(["books", "music", "home"], lines),
            "channel": rng.choice(["web", "app", "store", "phone"], lines),
            "country": "US",
        }
    )


@pytest.mark.parametrize("as_of,unit", [("2023-07-19", 1.0), ("2023-04-15", 1.0), ("2023-07-19", 7.0)])
def test_summary_equals_lifetimes(con, as_of, unit):
    from lifetimes.utils import summary_data_from_transaction_data

    tx = _random_transactions()
    con.register("tx_df", tx)
    con.execute("CREATE TABLE tx AS SELECT * REPLACE (CAST(amount AS DECIMAL(18, 2)) AS amount) FROM tx_df")
    ours = _by_id(features.customer_features(con, as_of, source="tx", time_unit_days=unit))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # lifetimes on pandas 2.x: give it datetime64[ns] and a float money column; it counts purchase days
        # up to and including observation_period_end's day.
        theirs = summary_data_from_transaction_data(
            tx[["customer_id", "order_ts", "amount"]].astype({"amount": float}),
            "customer_id",
            "order_ts",
            monetary_value_col="amount",
            observation_period_end=as_of,
            freq="D",
            freq_multiplier=unit,
        )
    assert len(theirs) > 20 and (theirs["frequency"] > 0).sum() > 10
    theirs = theirs.sort_index()
    assert list(ours.index) == list(theirs.index)
    for col in features.SUMMARY_COLUMNS:
        np.testing.assert_allclose(ours[col].to_numpy(float), theirs[col].to_numpy(float), rtol=1e-12, err_msg=col)


def test_the_same_lines_give_bit_identical_features_run_after_run():
    """stddev_samp's floating-point state, merged across threads in the order they finish, differed in the last
    bits from run to run, and LightGBM then grew other trees (the CDNOW backtest's top-10% moved by 0.0004). The
    spreads now come from sums of whole numbers (cents, days): every run returns the same bits, equal to
    stddev_samp's value."""
    import duckdb

    from benchmarks.bench_features import AS_OF, make_transactions

    con = duckdb.connect()
    con.execute("SET threads = 4")            # parallel partial aggregates even on a 2-core machine
    make_transactions(con, customers=20_000, lines=400_000)
    runs = [features.customer_features(con, AS_OF, source="bench_tx") for _ in range(4)]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0], other, check_exact=True)
    reference = con.execute(
        """SELECT customer_id, stddev_samp(gross) AS s FROM (
               SELECT customer_id, order_id, CAST(sum(amount) AS DOUBLE) AS gross FROM bench_tx WHERE quantity > 0
               GROUP BY ALL) GROUP BY customer_id ORDER BY customer_id""").df()
    merged = runs[0].merge(reference, on="customer_id")
    assert len(merged) > 10_000
    np.testing.assert_allclose(merged["avg_order_value_std"], merged["s"], rtol=1e-9, equal_nan=True)
