"""features/customer_features: customer features as of the latest order day (lib/features.py does the work)."""

from pathlib import Path

import dagster as dg

from clv_platform.defs.resources import WarehouseResource
from clv_platform.lib import features, validation, warehouse


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
        _require_checked_partitions(con)
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


def _require_checked_partitions(con) -> None:
    """The checks on staging/transactions block what is downstream in their own run only; a later run (a load of
    another day, the rescore sensor, `clv materialize score`) would compute from a day that failed them. So the
    features, the first step of training and scoring, refuse while any loaded day has not passed them."""
    if not warehouse.table_exists(con, "raw.load_audit"):
        return
    bad = validation.partitions_not_passed(con)
    if bad:
        shown = "; ".join(f"{day} {why} ({Path(source).name if source else 'no file'})" for day, why, source in bad[:3])
        raise dg.Failure(description=(
            f"{len(bad)} loaded partition(s) have not passed the blocking checks: {shown}{' ...' if len(bad) > 3 else ''}"
            f". Fix the file(s) and load the day(s) again (`clv materialize ingest --from {bad[0][0]} --to "
            f"{bad[-1][0]}`; `clv validate FILE` and `clv status` say what is wrong): nothing downstream uses a day "
            "that failed its checks."))
