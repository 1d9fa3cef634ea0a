"""Segment migration between two as-of snapshots, in pandas only: the segment model's pipeline and the
dashboard (which does not import the model's dependencies) count it the same way."""

import pandas as pd

from clv_platform.lib.segment_names import FIRST_SEEN, GONE


def segment_migration(prev_df: pd.DataFrame, cur_df: pd.DataFrame, segment_col: str = "segment_name",
                      id_col: str = "customer_id", normalize: bool = False) -> pd.DataFrame:
    """Migration matrix between two consecutive as-of snapshots: rows = previous segment, columns = current.

    Customers only in `cur_df` come from row FIRST_SEEN, "(first seen)" (most of them go to "new customers",
    those who bought again within the month elsewhere); customers only in `prev_df` go to column GONE, "(gone)".
    Counts by default; `normalize=True` gives row shares (each row sums to 1).
    """
    prev = prev_df[[id_col, segment_col]].drop_duplicates(id_col).rename(columns={segment_col: "from"})
    cur = cur_df[[id_col, segment_col]].drop_duplicates(id_col).rename(columns={segment_col: "to"})
    both = prev.merge(cur, on=id_col, how="outer")
    both["from"] = both["from"].astype("object").where(both["from"].notna(), FIRST_SEEN)
    both["to"] = both["to"].astype("object").where(both["to"].notna(), GONE)
    mat = pd.crosstab(both["from"], both["to"])
    mat.index.name, mat.columns.name = "from_segment", "to_segment"
    if normalize:
        mat = mat.div(mat.sum(axis=1), axis=0)
    return mat


def migration_long(matrix: pd.DataFrame) -> pd.DataFrame:
    """The matrix as rows (from_segment, to_segment, customers) — handy for Parquet/snapshots."""
    out = matrix.stack().rename("customers").reset_index()
    return out[out["customers"] > 0].reset_index(drop=True)
