"""Segment names the code relies on, shared by the segment model, scoring and the dashboard (which does not
import the model's dependencies)."""

NEW_CUSTOMERS = "new customers"   # the rule segment: one purchase day, within the last `new_customer_days` days
# the migration matrix's row for customers absent from the earlier snapshot, column for those absent from the later
FIRST_SEEN, GONE = "(first seen)", "(gone)"
FIRST_SEEN_BEFORE = "(new)"       # FIRST_SEEN's name in snapshots published before it was renamed
