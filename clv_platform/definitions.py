"""The Dagster code location: every definition found under defs/, run in-process (one DuckDB writer)."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(project_root=Path(__file__).parent.parent),
        dg.Definitions(executor=dg.in_process_executor),
    )
