from datetime import date, timedelta

from clv_platform.lib.landing import changed_files, contiguous_ranges, list_landing_files


def test_contiguous_ranges():
    d = date.fromisoformat
    days = [d("2024-01-03"), d("2024-01-01"), d("2024-01-02"), d("2024-01-05"), d("2024-01-05")]
    assert contiguous_ranges(days) == [(d("2024-01-01"), d("2024-01-03")), (d("2024-01-05"), d("2024-01-05"))]
    assert contiguous_ranges([]) == []


def test_only_well_named_files_are_listed(tmp_path):
    for name in ("transactions_2024-01-01.csv", "transactions_2024-01-02.parquet", "transactions_2024-13-01.csv",
                 "transactions_20240103.csv", "readme.md"):
        (tmp_path / name).write_text("x")
    assert [f.day.isoformat() for f in list_landing_files(tmp_path)] == ["2024-01-01", "2024-01-02"]
    assert list_landing_files(tmp_path / "missing") == []


def test_changed_files_tracks_content_not_timestamps(tmp_path):
    path = tmp_path / "transactions_2024-01-01.csv"
    path.write_text("a")
    changed, cursor = changed_files(tmp_path, None)
    assert len(changed) == 1
    path.write_text("a")  # same bytes, new mtime
    changed, cursor = changed_files(tmp_path, cursor)
    assert changed == []
    path.write_text("b")
    changed, _ = changed_files(tmp_path, cursor)
    assert [f.path.name for f in changed] == [path.name]


def test_a_file_the_warehouse_already_loaded_is_not_new(tmp_path):
    """New to the cursor but loaded with the same content (by `clv run` before the sensor looked): not a
    change; a different content for a loaded day, or a day never loaded, is. The warehouse is asked once."""
    from clv_platform.lib.landing import sha256_of

    for day, text in (("2024-01-01", "a"), ("2024-01-02", "b"), ("2024-01-03", "c")):
        (tmp_path / f"transactions_{day}.csv").write_text(text)
    asked = []
    loaded = {date(2024, 1, 1): sha256_of(tmp_path / "transactions_2024-01-01.csv"), date(2024, 1, 2): "other"}
    changed, cursor = changed_files(tmp_path, None, loaded=lambda: asked.append(1) or loaded)
    assert [f.day.isoformat() for f in changed] == ["2024-01-02", "2024-01-03"] and asked == [1]
    # every file is in the cursor now: the warehouse is not asked again
    changed, cursor = changed_files(tmp_path, cursor, loaded=lambda: asked.append(1) or loaded)
    assert changed == [] and asked == [1]
    # changed since the cursor saw it, but already loaded as it is now (`clv materialize ingest --new` while the
    # sensor was off): not a change; a change the warehouse does not hold is
    (tmp_path / "transactions_2024-01-01.csv").write_text("a, corrected")
    (tmp_path / "transactions_2024-01-03.csv").write_text("c, corrected")
    loaded[date(2024, 1, 1)] = sha256_of(tmp_path / "transactions_2024-01-01.csv")
    changed, _ = changed_files(tmp_path, cursor, loaded=lambda: asked.append(1) or loaded)
    assert [f.day.isoformat() for f in changed] == ["2024-01-03"] and asked == [1, 1]


def test_misnamed_files_are_named_but_hidden_files_folders_and_demo_answers_are_not(tmp_path):
    from clv_platform.lib import generator
    from clv_platform.lib.landing import DEMO_FILES, misnamed_files

    bad = ["notes.txt", "transactions_2024-02-30.csv", "transactions_2024-03-11.CSV", "transactions_2024-03-11.csv.gz",
           "transactions_2024-3-11.csv"]
    for name in [*bad, "transactions_2024-03-12.csv", ".DS_Store", *DEMO_FILES]:
        (tmp_path / name).write_text("x")
    (tmp_path / "import_rejects").mkdir()
    (tmp_path / "import_rejects" / "export.csv.unassigned.csv").write_text("x")
    assert misnamed_files(tmp_path) == sorted(bad)
    assert [f.path.name for f in list_landing_files(tmp_path)] == ["transactions_2024-03-12.csv"]
    assert misnamed_files(tmp_path / "missing") == []
    assert DEMO_FILES == {generator.GROUND_TRUTH_FILE, generator.GROUND_TRUTH_CUSTOMERS_FILE}


def test_the_cursor_stays_small_and_an_earlier_plain_cursor_still_reads(tmp_path):
    """Dagster writes the cursor into every tick (two a minute): at 137 bytes a file it grew the instance by about
    160 MB a day at 400 files with nothing to load. A cursor written by an earlier version keeps its meaning."""
    import json
    import os

    from clv_platform.lib.landing import sha256_of

    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(400)]
    for i, day in enumerate(days):
        (tmp_path / f"transactions_{day}.csv").write_text(f"order_id,line_number\nO{i},1\n")
    changed, cursor = changed_files(tmp_path, None)
    assert len(changed) == 400 and len(cursor) < 400 * 30
    plain = json.dumps({f.path.name: [f.fingerprint, sha256_of(f.path)] for f in list_landing_files(tmp_path)})
    assert changed_files(tmp_path, plain)[0] == []
    first = tmp_path / f"transactions_{days[0]}.csv"
    os.utime(first, ns=(1, 1))                              # touched, same bytes: not a change
    assert changed_files(tmp_path, plain)[0] == [] and changed_files(tmp_path, cursor)[0] == []
    first.write_text("order_id,line_number\nO0,2\n")
    assert [f.path.name for f in changed_files(tmp_path, plain)[0]] == [first.name]
    assert [f.path.name for f in changed_files(tmp_path, cursor)[0]] == [first.name]
