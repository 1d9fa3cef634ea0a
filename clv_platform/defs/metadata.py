"""Helpers for asset metadata shown in the Dagster UI."""

import base64
from pathlib import Path

import dagster as dg


def png_markdown(path: Path) -> dg.MetadataValue:
    """A PNG plot inline in the Dagster UI (markdown with a data URI)."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return dg.MetadataValue.md(f"![{Path(path).stem}](data:image/png;base64,{data})")
