"""CSV exports are safe to open in a spreadsheet: text that starts like a formula stays text."""

import pandas as pd

from clv_platform.lib import export


def test_text_cells_starting_like_a_formula_get_an_apostrophe_and_nothing_else_changes():
    frame = pd.DataFrame({
        "customer_id": ['=HYPERLINK("https://evil.example","Open")', "+SUM(1,2)", "-1+1", "@SUM(1+1)", "\tC7",
                        "C0000001", "a=b"],
        "predicted_clv": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        "segment_name": ["loyal"] * 7,
    })
    safe = export.spreadsheet_safe(frame)
    assert list(safe["customer_id"]) == ["'=HYPERLINK(\"https://evil.example\",\"Open\")", "'+SUM(1,2)", "'-1+1",
                                         "'@SUM(1+1)", "'\tC7", "C0000001", "a=b"]
    assert safe["predicted_clv"].tolist() == frame["predicted_clv"].tolist()      # a negative number is a number
    assert frame["customer_id"].iloc[0].startswith("=")                           # the caller's frame untouched
    lines = export.to_csv(frame).splitlines()
    assert lines[1].startswith("\"'=HYPERLINK(") and lines[6].startswith("C0000001,6.0,loyal")
    plain = frame.iloc[5:]
    assert export.spreadsheet_safe(plain) is plain                                 # nothing to change: no copy
