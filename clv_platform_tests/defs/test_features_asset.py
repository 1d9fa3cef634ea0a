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
