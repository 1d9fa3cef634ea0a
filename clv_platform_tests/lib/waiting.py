"""Waiting in tests for something another thread or process does."""

import time


def eventually(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Whether `predicate()` became true within `timeout` seconds (asked every `interval` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True
