"""features/customer_features materialises on a temporary warehouse."""

import dagster as dg
import pandas as pd

from clv_platform.defs.features.assets import customer_features
from clv_platform.defs.resources import WarehouseResource
from clv_platform.lib import warehouse


def test_customer_features_asset_materialises(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    db = tmp_path / "warehouse.duckdb"
    con = warehouse.connect(db)
    con.execute(
        """INSERT INTO staging.transactions VALUES
        ('2024-01-01', 'O1', 1, 'A', '2024-01-01 10:00', 'books', 1, 10, 10, 'web', 'US', NULL, 'f', 2),
        ('2024-01-05', 'O2', 1, 'A', '2024-01-05 10:00', 'music', 2, 5, 10, 'app', 'US', NULL, 'f', 3),
        ('2024-01-07', 'O3', 1, 'B', '2024-01-07 10:00', 'toys', 1, 4, 4, 'store', 'DE', NULL, 'f', 4)"""
    )
    con.close()

    result = dg.materialize([customer_features], resources={"warehouse": WarehouseResource(database=str(db))})
    assert result.success
    (mat,) = result.asset_materializations_for_node("features__customer_features")
    assert mat.asset_key == dg.AssetKey(["features", "customer_features"])
    assert mat.metadata["customers"].value == 2
    assert mat.metadata["as_of"].value == "2024-01-07"
    assert "customer_id" in mat.metadata["preview"].value

    con = warehouse.connect(db)
    table = con.execute("SELECT * FROM features.customer_features ORDER BY customer_id").df()
    con.close()
    assert list(table["customer_id"]) == ["A", "B"]
    assert (table["as_of_date"] == pd.Timestamp("2024-01-07")).all()
    assert table.set_index("customer_id").loc["A", ["frequency", "recency", "T"]].tolist() == [1, 4.0, 6.0]

    # re-materialising replaces the table rather than appending
    assert dg.materialize([customer_features], resources={"warehouse": WarehouseResource(database=str(db))}).success
    con = warehouse.connect(db)
    assert con.execute("SELECT count(*) FROM features.customer_features").fetchone()[0] == 2
    con.close()


def test_customer_features_asset_on_empty_warehouse(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    result = dg.materialize([customer_features], resources={"warehouse": WarehouseResource(database=str(db))})
    assert result.success
    (mat,) = result.asset_materializations_for_node("features__customer_features")
    assert mat.metadata["customers"].value == 0


def test_asset_is_in_the_code_location():
    from clv_platform.definitions import defs

    spec = defs().resolve_asset_graph().get(dg.AssetKey(["features", "customer_features"]))
    assert spec.group_name == "features"
    assert dg.AssetKey(["staging", "transactions"]) in spec.parent_keys


def test_features_refuse_while_a_loaded_day_has_not_passed_its_checks(tmp_path, monkeypatch):
    """A blocking check stops what is downstream in its own run; a later run (another day's load and the
    rescore sensor, `clv materialize score`) must not compute from the failed day either."""
    import datetime as dt

    from clv_platform.lib import ingest, validation

    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    landing = tmp_path / "landing"
    landing.mkdir()
    header = "order_id,line_number,customer_id,order_ts,category,quantity,unit_price,channel,country,original_order_id"

    def day(name: str, bad: int) -> None:
        rows = [f"O{name}-{i},1,C{i},{name}T09:00:00,books,1,5,web,{'XX' if i < bad else 'US'}," for i in range(20)]
        (landing / f"transactions_{name}.csv").write_text("\n".join([header, *rows]) + "\n")

    db = tmp_path / "warehouse.duckdb"
    now = dt.datetime(2024, 3, 20)

    def load(name: str, validate: bool = True) -> None:
        con = warehouse.connect(db)
        ingest.load_partition(con, name, landing, now=now)
        if validate:
            validation.validate_partitions(con, [name], now=now)
        con.close()

    def features_run():
        return dg.materialize([customer_features], resources={"warehouse": WarehouseResource(database=str(db))},
                              raise_on_error=False)

    day("2024-03-01", bad=0)
    day("2024-03-02", bad=5)                                         # 25% quarantined: fails its share check
    load("2024-03-01")
    load("2024-03-02")
    failed = features_run()
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message
    assert "1 loaded partition(s) have not passed the blocking checks: 2024-03-02 fails " in message, message
    assert "transactions_quarantine_share_is_acceptable" in message and "(transactions_2024-03-02.csv)" in message
    assert "`clv materialize ingest --from 2024-03-02 --to 2024-03-02`" in message

    day("2024-03-02", bad=0)                                         # fixed and loaded again: features run
    load("2024-03-02")
    assert features_run().success
    day("2024-03-03", bad=0)
    load("2024-03-03", validate=False)                               # a run stopped between load and checks
    message = [e for e in features_run().all_events if e.is_step_failure][0].event_specific_data.error.message
    assert "2024-03-03 not validated since its load" in message
