"""features/customer_features: customer features as of the latest order day (lib/features.py does the work)."""

import dagster as dg

from clv_platform.defs.resources import WarehouseResource
from clv_platform.defs.validation.checks import require_passed_checks
from clv_platform.lib import features


@dg.asset(
    key=["features", "customer_features"],
    group_name="features",
    deps=[dg.AssetKey(["staging", "transactions"])],
    kinds={"duckdb", "sql"},
    description=(
        "One row per customer as of the latest order date in staging.transactions: lifetimes summary "
        "(frequency, recency, T, monetary_value in days) and behavioural features. Table "
        "features.customer_features, with an as_of_date column."
    ),
)
def customer_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        require_passed_checks(con)
        as_of, customers = features.write_customer_features(con)
        preview = con.execute(f"SELECT * FROM {features.FEATURES_TABLE} LIMIT 10").df()
    if as_of is None:
        context.log.warning("staging.transactions is empty: features.customer_features has no rows")
    return dg.MaterializeResult(
        metadata={
            "customers": dg.MetadataValue.int(customers),
            "as_of": dg.MetadataValue.text(str(as_of) if as_of else "none (no transactions)"),
            "table": dg.MetadataValue.text(features.FEATURES_TABLE),
            "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
        }
    )
