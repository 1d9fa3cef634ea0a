"""warehouse.connect while another process holds the file: a writer waits for a short reader, and says who
holds it when the wait runs out."""

import time

import pytest

from clv_platform.lib import warehouse
from clv_platform_tests.lib.locks import hold_lock


def test_connect_waits_for_the_lock_and_then_opens(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    warehouse.connect(database).close()
    with hold_lock(database, seconds=1.5):
        started = time.monotonic()
        con = warehouse.connect(database, wait_seconds=30)
        waited = time.monotonic() - started
    assert 0.5 < waited < 30
    assert con.execute("SELECT count(*) FROM raw.load_audit").fetchall() == [(0,)]
    con.close()


def test_connect_gives_up_with_a_clear_error(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    warehouse.connect(database).close()
    with hold_lock(database):
        started = time.monotonic()
        with pytest.raises(warehouse.WarehouseBusyError, match=r"warehouse\.duckdb is in use by another process.*PID"):
            warehouse.connect(database, read_only=True, wait_seconds=0.3)
        assert time.monotonic() - started < 5
