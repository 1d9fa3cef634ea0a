"""`clv run`/`clv materialize` failures end in one line per failed step that carries the cause."""

import sys

import dagster as dg
from dagster._utils.error import serializable_error_info_from_exc_info

from clv_platform import orchestrate


def test_a_plain_exception_in_an_asset_is_reported_by_its_own_message():
    @dg.asset
    def breaks():
        raise ValueError("actual and predicted must be finite (found NaN or inf)")

    result = dg.materialize([breaks], raise_on_error=False)
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.event_specific_data.error
    assert error.cause is not None       # Dagster wraps it: "Error occurred while executing op ..."
    assert orchestrate._cause(error) == "ValueError: actual and predicted must be finite (found NaN or inf)"


def test_an_error_without_a_cause_is_its_own_message():
    try:
        raise RuntimeError("no customers as of 2024-01-01")
    except RuntimeError:
        error = serializable_error_info_from_exc_info(sys.exc_info())
    assert orchestrate._cause(error) == "RuntimeError: no customers as of 2024-01-01"
