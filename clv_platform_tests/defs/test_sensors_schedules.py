"""landing_files_sensor and daily_ingestion_schedule, evaluated with real contexts on real files."""

import os
from datetime import datetime

import dagster as dg

from clv_platform.defs.resources import LandingResource, WarehouseResource
from clv_platform.defs.schedules import daily_ingestion_schedule
from clv_platform.defs.sensors import RANGE_END_TAG, RANGE_START_TAG, landing_files_sensor
from clv_platform.lib import ingest, warehouse
from clv_platform_tests.lib.locks import hold_lock

HEADER = "order_id,line_number,customer_id,order_ts,category,quantity,unit_price,channel,country,original_order_id\n"


def write_day(folder, day, rows=1, price="10.00"):
    lines = [f"O{day}-{i},1,C{i},{day}T10:00:00,books,1,{price},web,US,\n" for i in range(rows)]
    path = folder / f"transactions_{day}.csv"
    path.write_text(HEADER + "".join(lines))
    return path


def tick(landing_dir, cursor=None, database=None):
    database = database or landing_dir / "no_warehouse_yet.duckdb"
    context = dg.build_sensor_context(cursor=cursor, resources={
        "landing": LandingResource(directory=str(landing_dir)), "warehouse": WarehouseResource(database=str(database))})
    return landing_files_sensor(context)


def test_new_file_requests_a_run_and_the_same_file_is_skipped(tmp_path):
    write_day(tmp_path, "2024-03-01")
    first = tick(tmp_path)
    assert [r.partition_key for r in first.run_requests] == ["2024-03-01"]

    second = tick(tmp_path, first.cursor)
    assert not second.run_requests
    assert "no new or changed" in second.skip_reason.skip_message


def test_identical_redelivery_is_skipped_but_changed_content_is_requested(tmp_path):
    path = write_day(tmp_path, "2024-03-01")
    first = tick(tmp_path)
    # Re-delivered with the same bytes (new mtime): not a change.
    os.utime(path, ns=(1, 1))
    path.write_text(path.read_text())
    again = tick(tmp_path, first.cursor)
    assert not again.run_requests
    # Changed content: a new request, with a new run key.
    write_day(tmp_path, "2024-03-01", rows=2)
    changed = tick(tmp_path, again.cursor)
    assert [r.partition_key for r in changed.run_requests] == ["2024-03-01"]
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key


def test_days_the_warehouse_loaded_before_the_sensor_looked_are_not_requested(tmp_path):
    """`clv run` loads every file before the daemon starts: the sensor's first tick (no cursor) requests only
    what the warehouse does not hold; while a run writes the warehouse it skips the tick and keeps its cursor."""
    landing_dir = tmp_path / "landing"
    landing_dir.mkdir()
    for day in ("2024-03-01", "2024-03-02"):
        write_day(landing_dir, day)
    database = tmp_path / "warehouse.duckdb"
    con = warehouse.connect(database)
    for day in ("2024-03-01", "2024-03-02"):
        ingest.load_partition(con, day, landing_dir, now=datetime(2024, 4, 1))
    con.close()
    write_day(landing_dir, "2024-03-02", rows=3)   # changed since it was loaded
    write_day(landing_dir, "2024-03-03")           # never loaded
    first = tick(landing_dir, database=database)
    assert first.run_requests[0].tags[RANGE_START_TAG] == "2024-03-02"
    assert first.run_requests[0].tags[RANGE_END_TAG] == "2024-03-03" and len(first.run_requests) == 1

    with hold_lock(database):
        busy = tick(landing_dir, database=database)
    assert isinstance(busy, dg.SkipReason) and "warehouse is busy" in busy.skip_message   # (cursor kept)


def test_consecutive_days_become_one_ranged_run(tmp_path):
    for day in ("2024-03-01", "2024-03-02", "2024-03-03", "2024-03-07"):
        write_day(tmp_path, day)
    requests = tick(tmp_path).run_requests
    assert len(requests) == 2
    assert requests[0].tags[RANGE_START_TAG] == "2024-03-01"
    assert requests[0].tags[RANGE_END_TAG] == "2024-03-03"
    assert requests[1].partition_key == "2024-03-07"


def test_files_outside_the_partitions_are_ignored(tmp_path):
    write_day(tmp_path, "1999-01-01")  # before CLV_PARTITIONS_START (2020-01-01 by default)
    (tmp_path / "notes.txt").write_text("not a landing file")
    result = tick(tmp_path)
    assert not result.run_requests


def test_schedule_requests_yesterdays_partition_only_when_its_file_is_there(tmp_path):
    resources = {"landing": LandingResource(directory=str(tmp_path))}
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 3, 2, 2, 0), resources=resources)
    skipped = daily_ingestion_schedule(context)
    assert isinstance(skipped, dg.SkipReason) and "2024-03-01" in skipped.skip_message

    write_day(tmp_path, "2024-03-01")
    request = daily_ingestion_schedule(context)
    assert request.partition_key == "2024-03-01"
