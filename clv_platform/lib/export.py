"""CSV for spreadsheets: the API's `format=csv` and the dashboard's downloads end up in Excel or Sheets, which run
a cell that starts like a formula. Customer ids come from the data supplier's files, so such a cell is text."""

import pandas as pd

# OWASP's list of what a spreadsheet reads as the start of a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each text cell that starts like a formula prefixed by an apostrophe (a spreadsheet shows it
    as the text it is); numbers, dates and other text unchanged."""
    out = frame
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        risky = values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START)).astype(bool)
        if risky.any():
            out = out.copy() if out is frame else out
            out[column] = values.where(~risky, "'" + values.astype(str))
    return out


def to_csv(frame: pd.DataFrame) -> str:
    return spreadsheet_safe(frame).to_csv(index=False)
