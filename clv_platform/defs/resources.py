"""Resources: where the warehouse and the landing files are. Defaults come from CLV_DATA_DIR."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from clv_platform.lib import warehouse
from clv_platform.lib.settings import get_settings


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file. Dagster is its only writer; open it only for the length of a step."""

    database: str

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = warehouse.connect(self.database)
        try:
            yield con
        finally:
            con.close()


class LandingResource(dg.ConfigurableResource):
    """The folder the daily transaction files land in."""

    directory: str

    @property
    def path(self) -> Path:
        return Path(self.directory)


def default_resources() -> dict:
    settings = get_settings()
    return {
        "warehouse": WarehouseResource(database=str(settings.warehouse_path)),
        "landing": LandingResource(directory=str(settings.landing_dir)),
    }


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources=default_resources())
