"""`clv status` on a warehouse built here: counts that reconcile, files waiting, what needs a look, a busy
warehouse, an empty data dir."""

import datetime as dt
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from clv_platform.cli import cli
from clv_platform.lib import ingest, registry, snapshot, status, validation, warehouse
from clv_platform.lib.settings import get_settings
from clv_platform_tests.api.helpers import publish_fake
from clv_platform_tests.lib.bad_inputs.cases import HEADER
from clv_platform_tests.lib.locks import hold_lock
from clv_platform_tests.lib.mlflow_store import new_store
from clv_platform_tests.lib.test_registry import _log

NOW = dt.datetime(2024, 3, 20, 12, 0, 0)
CLV = registry.MODELS["clv"]


def _data_dir(tmp_path, monkeypatch):
    """CLV_DATA_DIR at tmp_path, with its landing folder: (settings, landing folder)."""
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    settings = get_settings()
    settings.landing_dir.mkdir(parents=True)
    return settings, settings.landing_dir


def _day(landing, day, rows):
    (landing / f"transactions_{day}.csv").write_text("\n".join([HEADER, *rows]) + "\n")


def test_status_counts_waiting_files_and_attention(tmp_path, monkeypatch):
    settings, landing = _data_dir(tmp_path, monkeypatch)
    _day(landing, "2024-03-10", ["O1,1,C1,2024-03-10T09:00:00,books,2,12.5,web,US,",
                                 "O2,1,C2,2024-03-10T09:00:00,books,0,12.5,web,US,"])       # quantity 0: quarantined
    _day(landing, "2024-03-11", ["O3,1,C1,2024-03-11T09:00:00,books,1,5,web,US,"])
    _day(landing, "2024-03-12", ["O4,1,C3,2024-03-12T09:00:00,books,1,5,web,US,"])          # not loaded yet
    _loaded_warehouse(settings, ["2024-03-10", "2024-03-11"])

    st = status.collect(settings)
    assert st.landing["files"] == 3 and st.landing["not_loaded"] == 1
    assert {k: st.warehouse[k] for k in ("partitions", "rows_read", "rows_loaded", "rows_quarantined")} == {
        "partitions": 2, "rows_read": 3, "rows_loaded": 2, "rows_quarantined": 1}
    assert st.attention == ["1 landing file(s) not loaded yet (first 2024-03-12): `clv materialize ingest --new` "
                            "loads them",
                            "no models yet: train (`make run` or `clv materialize train`)",
                            "no serving snapshot yet: score (`clv materialize score`)"]
    assert not settings.mlflow_db.exists()          # looking did not create the MLflow store

    out = CliRunner().invoke(cli, ["status"])
    assert out.exit_code == 1
    assert "3 daily files 2024-03-10..2024-03-12" in out.output and "1 not loaded yet" in out.output
    assert "3 rows read = 2 loaded + 1 quarantined (33.33%)" in out.output
    assert "attention:\n  - 1 landing file(s) not loaded yet" in out.output

    as_json = CliRunner().invoke(cli, ["status", "--json"])         # the same facts for a monitor
    assert as_json.exit_code == 1
    facts = json.loads(as_json.output)
    assert facts["state"] == "attention" and facts["attention"] == st.attention
    assert facts["warehouse"]["rows_read"] == 3 and facts["warehouse"]["rows_quarantined"] == 1
    assert facts["warehouse"]["last_load"] == st.warehouse["last_load"].isoformat()
    assert facts["landing"]["first"] == "2024-03-10" and facts["snapshot"]["published"] is False

    with hold_lock(settings.warehouse_path):                     # a run (another process) holding the warehouse
        busy = status.collect(settings)
    assert busy.warehouse["state"].startswith("busy: a run is writing it")


def test_status_of_an_empty_data_dir_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path / "nothing"))
    out = CliRunner().invoke(cli, ["status"])
    assert out.exit_code == 1
    assert "0 daily files -" in out.output and "not created yet (run `make run`" in out.output
    assert "snapshot      none yet" in out.output


def test_status_reports_the_snapshot_and_a_large_score_shift(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    path = publish_fake(tmp_path / "serving", "1")
    st = status.collect(get_settings())
    assert st.snapshot["published"] and st.snapshot["customers"] == 50 and st.snapshot["psi"] == {}
    assert not any("PSI" in a for a in st.attention)

    tables = {f.stem: pd.read_parquet(f) for f in path.glob("*.parquet")}
    manifest = {"as_of_date": "2024-12-31", "model_versions": {"clv_model": "2", "segment_model": "1"},
                "metrics": {"psi.predicted_clv": 0.4, "psi.p_alive": 0.01}}
    snapshot.publish(tmp_path / "serving", tables, manifest)
    st = status.collect(get_settings())
    assert "scores moved since the previous scoring (PSI > 0.25): predicted_clv 0.40" in st.attention
    out = CliRunner().invoke(cli, ["status"])
    assert "largest PSI 0.400 (predicted_clv)" in out.output and out.exit_code == 1
    assert not any("older than the last load" in a for a in st.attention)

    # a load after the snapshot was published (a CLI load: no sensor rescored it)
    landing = get_settings().landing_dir
    landing.mkdir(parents=True)
    _day(landing, "2024-03-10", ["O1,1,C1,2024-03-10T09:00:00,books,1,5,web,US,"])
    con = warehouse.connect(get_settings().warehouse_path)
    ingest.load_partition(con, "2024-03-10", landing)
    con.close()
    # not validated yet (its run stopped before the checks): scoring would refuse it, so not "rescore" yet
    assert any(a.startswith("the snapshot (published ") and "is older than the last load" in a
               and "rescore once the partitions above pass their checks" in a
               for a in status.collect(get_settings()).attention)
    con = warehouse.connect(get_settings().warehouse_path)
    validation.validate_partitions(con, ["2024-03-10"])
    con.close()
    assert any(a.startswith("the snapshot (published ") and "is older than the last load" in a
               and "`clv materialize score`" in a for a in status.collect(get_settings()).attention)
    # an earlier snapshot served again on purpose: a plain "rescore" would undo that
    assert CliRunner().invoke(cli, ["snapshot", "use", path.name]).exit_code == 0
    assert any("it was served again by `clv snapshot use`; rescore (`clv materialize score`) once what made you "
               "go back is fixed" in a for a in status.collect(get_settings()).attention)


def _loaded_warehouse(settings, days, validate=True):
    """The days loaded, and validated as the ingestion run's checks do (unless not `validate`)."""
    con = warehouse.connect(settings.warehouse_path)
    for day in days:
        ingest.load_partition(con, day, settings.landing_dir, now=NOW)
    if validate:
        validation.validate_partitions(con, days)
    con.close()


def _landing_attention(st):
    return [a for a in st.attention if not a.startswith(("no models yet", "no serving snapshot yet"))]


def test_status_names_landing_files_outside_the_daily_partitions(tmp_path, monkeypatch):
    """Dated before CLV_PARTITIONS_START or after today: no partition loads them, so they are named with what
    to do, and not counted as waiting for `--new`."""
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLV_PARTITIONS_START", "2024-01-01")
    settings = get_settings()
    landing = settings.landing_dir
    landing.mkdir(parents=True)
    for day in ("2023-12-30", "2023-12-31", "2024-03-10", "2034-04-02"):
        _day(landing, day, [f"O{day},1,C1,{day}T09:00:00,books,1,5,web,US,"])
    _loaded_warehouse(settings, ["2024-03-10"])

    st = status.collect(settings, now=NOW)
    assert st.landing["not_loaded"] == 0 and st.landing["out_of_range"] == 3
    assert _landing_attention(st) == [
        "landing file(s) dated before the first daily partition 2024-01-01 never load: transactions_2023-12-30.csv, "
        "transactions_2023-12-31.csv: set CLV_PARTITIONS_START=2023-12-30 (or earlier)",
        "landing file(s) dated after today (2024-03-20, UTC) have no partition yet: transactions_2034-04-02.csv: "
        "each loads when its day comes (a shop ahead of UTC); otherwise check the date in the file name"]


def test_status_reports_landing_files_changed_since_they_were_loaded(tmp_path, monkeypatch):
    settings, landing = _data_dir(tmp_path, monkeypatch)
    for day in ("2024-03-10", "2024-03-11", "2024-03-12"):
        _day(landing, day, [f"O{day},1,C1,{day}T09:00:00,books,1,5,web,US,"])
    _loaded_warehouse(settings, ["2024-03-10", "2024-03-11", "2024-03-12"])
    _day(landing, "2024-03-10", ["O2024-03-10,1,C1,2024-03-10T09:00:00,books,1,5,web,US,"])  # same bytes again
    assert status.collect(settings, now=NOW).landing["changed"] == 0

    _day(landing, "2024-03-11", ["O9,1,C1,2024-03-11T09:00:00,books,3,5,web,US,"])      # re-delivered, other rows
    _day(landing, "2024-03-12", ["O9,1,C1,2024-03-12T09:00:00,books,3,5,web,US,"])
    st = status.collect(settings, now=NOW)
    assert st.landing["not_loaded"] == 0 and st.landing["changed"] == 2
    assert _landing_attention(st) == ["2 landing file(s) changed since they were loaded (first 2024-03-11): "
                                      "`clv materialize ingest --new` reloads them"]


def test_status_lists_files_that_are_not_landing_file_names(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    settings = get_settings()
    landing = settings.landing_dir
    (landing / "import_rejects").mkdir(parents=True)
    bad = ["a.txt", "b.txt", "transactions_2024-02-30.csv", "transactions_2024-03-11.CSV",
           "transactions_2024-3-11.csv", "x.csv", "y.csv"]
    for name in [*bad, ".hidden", "import_rejects/e.csv.unassigned.csv"]:
        (landing / name).write_text("x")
    st = status.collect(settings, now=NOW)
    assert st.landing["misnamed"] == 7 and st.landing["files"] == 0
    assert _landing_attention(st) == [
        "not a landing file name: a.txt, b.txt, transactions_2024-02-30.csv, transactions_2024-03-11.CSV, "
        "transactions_2024-3-11.csv and 2 more (expected transactions_YYYY-MM-DD.csv or .parquet)"]


def test_status_names_a_rolled_back_staging_version_and_a_snapshot_scored_with_other_versions(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    settings = get_settings()
    uri = new_store(tmp_path)
    assert uri == settings.mlflow_uri
    for value in (0.60, 0.65):
        registry.register(_log(uri, tmp_path, CLV.metric, value, value, sklearn=True), "model", CLV.name,
                          tracking_uri=uri)
        assert registry.promote(CLV.name, CLV.metric, tracking_uri=uri).promoted
    publish_fake(tmp_path / "serving", "1")                       # scored before v2 was promoted

    st = status.collect(settings)
    assert ("the snapshot was scored with clv_model v1, production is now v2: rescore (`clv materialize score`)"
            in st.attention)
    # served again on purpose (`clv snapshot use`), after a newer snapshot: a plain rescore would undo that
    first = (tmp_path / "serving" / "current").resolve().name
    newer = publish_fake(tmp_path / "serving", "2")
    assert CliRunner().invoke(cli, ["snapshot", "use", first]).exit_code == 0
    assert ("the snapshot was scored with clv_model v1, production is now v2: it was served again by `clv snapshot "
            "use`: if v2 was the cause, `clv rollback clv` first; a rescore (`clv materialize score`) publishes anew"
            in status.collect(settings).attention)
    assert newer.name in status.collect(settings).snapshot["newer_kept"]

    registry.rollback(CLV.name, uri)                              # production back on v1, v2 still staging
    st = status.collect(settings)
    note = st.models[CLV.name]["note"]                            # judged: a note, nothing to do
    assert note.startswith("staging v2 was rolled back out of production at ")
    assert "`clv promote clv --force` overrides" in note
    assert not any(a.startswith("clv_model") or "snapshot was scored with" in a for a in st.attention)
    out = CliRunner().invoke(cli, ["status"])
    assert "staging v2 was rolled back" in out.output

    # a worse version: waits in staging (attention) until the gate refuses it (a note)
    registry.register(_log(uri, tmp_path, CLV.metric, 0.55, 0.55, sklearn=True), "model", CLV.name, tracking_uri=uri)
    assert "clv_model v3 waits in staging (promotion gate: `clv promote clv`)" in status.collect(settings).attention
    assert not registry.promote(CLV.name, CLV.metric, tracking_uri=uri).promoted
    st = status.collect(settings)
    assert not any(a.startswith("clv_model") for a in st.attention), st.attention
    assert st.models[CLV.name]["note"].startswith("the gate refused staging v3 at ")
    assert "staging is worse than production" in st.models[CLV.name]["note"]


def test_a_file_over_the_quarantine_share_is_named_with_its_share_and_the_share_is_a_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))

    landing = get_settings().landing_dir
    landing.mkdir(parents=True)
    rows = [f"O{i},1,C{i},2024-03-10T09:00:00,books,1,5,web,US," for i in range(18)]
    _day(landing, "2024-03-10", rows + ["X1,1,C1,2024-03-10T09:00:00,books,0,5,web,US,",      # 2 of 20 quarantined
                                        "X2,1,C1,2024-03-10T09:00:00,bookz,1,5,web,US,"])
    con = warehouse.connect(get_settings().warehouse_path)
    ingest.load_partition(con, "2024-03-10", landing, now=NOW)
    run = validation.validate_partitions(con, [dt.date(2024, 3, 10)])
    share = next(o for o in run.outcomes if o.expectation == "quarantine_share_at_most_sql")
    assert not share.success
    assert share.examples == ["transactions_2024-03-10.csv: 2/20 rows quarantined (10%; at most 5% allowed, "
                              "CLV_MAX_QUARANTINE_SHARE)"]
    con.close()
    st = status.collect(get_settings())
    assert any("failing expectation result(s) in 1 partition(s): 2024-03-10 "
               "transactions_quarantine_share_is_acceptable:quarantine_share_at_most_sql "
               "(transactions_2024-03-10.csv)" in line for line in st.attention), st.attention

    monkeypatch.setenv("CLV_MAX_QUARANTINE_SHARE", "0.1")
    con = warehouse.connect(get_settings().warehouse_path)
    run = validation.validate_partitions(con, [dt.date(2024, 3, 10)])
    assert next(o for o in run.outcomes if o.expectation == "quarantine_share_at_most_sql").success
    con.close()
    monkeypatch.setenv("CLV_MAX_QUARANTINE_SHARE", "5%")
    out = CliRunner().invoke(cli, ["status"])
    assert out.exit_code != 0 and "CLV_MAX_QUARANTINE_SHARE='5%' is not a share between 0 and 1" in out.output


def test_status_counts_the_rows_import_history_set_aside(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    from clv_platform.lib import history_import

    export = tmp_path / "export.csv"
    export.write_text("\n".join([HEADER, "O1,1,C1,2024-03-01T09:00:00,books,2,12.5,web,US,",
                                 'O2,1,C2,,"home\ngarden",1,5,web,US,', "O3,1,C3,03/02/2024,toys,1,5,web,US,"]) + "\n")
    history_import.import_history(export, get_settings().landing_dir)
    st = status.collect(get_settings())
    assert st.landing["unassigned_rows"] == 2
    assert any(line.startswith("2 row(s) of history exports set aside by `clv import-history`")
               and "export.csv.unassigned.csv" in line for line in st.attention), st.attention


def test_status_spots_quarantined_rows_that_widened_vocabularies_now_allow(tmp_path, monkeypatch):
    settings, landing = _data_dir(tmp_path, monkeypatch)
    _day(landing, "2024-03-10", ["O1,1,C1,2024-03-10T09:00:00,garden,1,5,web,US,",        # unknown category
                                 "O2,1,C2,2024-03-10T09:00:00,garden,0,5,web,US,",        # ... and quantity 0
                                 "O3,1,C3,2024-03-10T09:00:00,books,1,5,web,AU,"])        # unknown country
    con = warehouse.connect(settings.warehouse_path)
    ingest.load_partition(con, "2024-03-10", landing, now=NOW)
    con.close()
    assert not any("vocabularies now allow" in line for line in status.collect(settings).attention)

    (tmp_path / "vocabularies.toml").write_text('categories = ["books", "garden"]\n')
    monkeypatch.setenv("CLV_VOCABULARIES", str(tmp_path / "vocabularies.toml"))
    attention = status.collect(get_settings()).attention
    assert ("1 quarantined row(s) in 1 partition(s) only had channel/country/category values the vocabularies now "
            "allow: `clv materialize ingest --from 2024-03-10 --to 2024-03-10` reloads them") in attention, attention


def test_status_names_partitions_loaded_but_not_validated_and_returns_whose_sale_came_later(tmp_path, monkeypatch):
    settings, landing = _data_dir(tmp_path, monkeypatch)
    _day(landing, "2024-03-06", ["R1,1,C1,2024-03-06T09:00:00,books,-1,5,web,US,S1"])   # return lands first
    _loaded_warehouse(settings, ["2024-03-06"], validate=False)                           # (a run stopped)
    attention = _landing_attention(status.collect(settings, now=NOW))
    assert attention == ["1 partition(s) loaded since their last validation (a run stopped between its load and "
                         "its checks), first 2024-03-06: `clv materialize ingest --from 2024-03-06 --to 2024-03-06` "
                         "loads and validates them again"]

    _loaded_warehouse(settings, ["2024-03-06"])                  # validated: quarantined, for want of its sale
    for day in ("2024-03-04", "2024-03-05"):                        # days without orders: header-only files
        _day(landing, day, [])
    _day(landing, "2024-03-03", ["S1,1,C1,2024-03-03T09:00:00,books,1,5,web,US,"])      # then its sale, late
    _loaded_warehouse(settings, ["2024-03-03", "2024-03-04", "2024-03-05"])
    assert _landing_attention(status.collect(settings, now=NOW)) == [
        "1 quarantined return(s) in 1 partition(s) now have their sale in the warehouse (its day was loaded after "
        "them): `clv materialize ingest --from 2024-03-06 --to 2024-03-06` reloads them"]
    _loaded_warehouse(settings, ["2024-03-06"])                  # as it says: the return is loaded now
    assert _landing_attention(status.collect(settings, now=NOW)) == []
    _day(landing, "2024-03-08", [])                                 # 2024-03-07: no file at all
    _loaded_warehouse(settings, ["2024-03-08"])
    assert _landing_attention(status.collect(settings, now=NOW)) == [
        "1 day(s) between 2024-03-03 and 2024-03-08 have no landing file (first 2024-03-07): a day without orders "
        "still gets a header-only file, so a missing file is a missing day of data"]


def test_status_says_a_file_refused_as_a_whole_needs_fixing_not_loading(tmp_path, monkeypatch):
    settings, landing = _data_dir(tmp_path, monkeypatch)
    _day(landing, "2024-03-10", ["O1,1,C1,2024-03-10T09:00:00,books,1,5,web,US,"])
    (landing / "transactions_2024-03-11.csv").write_text(HEADER + "\nO2,1,C1,2024-03-11T09:00:00,books,1,5,web\n")
    con = warehouse.connect(settings.warehouse_path)
    ingest.load_partition(con, "2024-03-10", landing, now=NOW)
    with pytest.raises(ingest.LandingFileError):
        ingest.load_partition(con, "2024-03-11", landing, now=NOW)
    validation.validate_partitions(con, ["2024-03-10"])
    con.close()
    assert _landing_attention(status.collect(settings, now=NOW)) == [
        "1 landing file(s) refused as a whole at their last load (transactions_2024-03-11.csv: malformed CSV: line 2 "
        "has 8 fields, expected 10): fix the file (`clv validate FILE` shows what is wrong) and drop it in again"]

    _day(landing, "2024-03-11", ["O2,1,C1,2024-03-11T09:00:00,books,1,5,web,US,"])   # fixed: waits for a load
    assert _landing_attention(status.collect(settings, now=NOW)) == [
        "1 landing file(s) not loaded yet (first 2024-03-11): `clv materialize ingest --new` loads them"]
    _loaded_warehouse(settings, ["2024-03-11"])
    assert _landing_attention(status.collect(settings, now=NOW)) == []
    con = warehouse.connect(settings.warehouse_path)
    assert con.execute("SELECT count(*) FROM raw.load_failures").fetchone()[0] == 0    # gone with the load
    # a loaded day re-delivered broken: refused again at its load, and named as such, not as "changed"
    (landing / "transactions_2024-03-10.csv").write_text("order_id;line\nO9;1\n")
    with pytest.raises(ingest.LandingFileError):
        ingest.load_partition(con, "2024-03-10", landing, now=NOW)
    con.close()
    attention = _landing_attention(status.collect(settings, now=NOW))
    assert len(attention) == 1 and attention[0].startswith(
        "1 landing file(s) refused as a whole at their last load (transactions_2024-03-10.csv: wrong delimiter"), attention
    # the same for a monitor (the JSON crashed on the refused files, keyed by day)
    facts = json.loads(status.to_json(status.collect(settings, now=NOW)))
    refused = facts["refused_files"]["2024-03-10"]
    assert refused["file"] == "transactions_2024-03-10.csv" and "wrong delimiter" in refused["problem"]
    assert len(refused["sha256"]) == 64 and facts["state"] == "attention"


def test_a_lost_or_damaged_warehouse_or_snapshot_needs_a_look(tmp_path, monkeypatch):
    """`clv status` said "all clear" (exit 0) with a truncated or deleted warehouse, and crashed on a damaged
    snapshot: each now needs a look, with the commands that rebuild it."""
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    settings = get_settings()
    settings.landing_dir.mkdir(parents=True)
    _day(settings.landing_dir, "2024-03-10", ["O1,1,C1,2024-03-10T09:00:00,books,1,5,web,US,"])
    _loaded_warehouse(settings, ["2024-03-10"])
    path = publish_fake(settings.snapshot_root, "1")
    settings.warehouse_path.write_bytes(settings.warehouse_path.read_bytes()[:5000])       # truncated
    st = status.collect(settings)
    assert any(a.startswith(f"the warehouse {settings.warehouse_path} cannot be read") and
               "`clv materialize history`" in a for a in st.attention), st.attention
    settings.warehouse_path.unlink()
    st = status.collect(settings)
    assert any(a.startswith(f"no warehouse at {settings.warehouse_path}, though a snapshot was published")
               for a in st.attention)
    assert any("1 landing file(s) not loaded yet" in a for a in st.attention)
    (path / "customer_scores.parquet").write_bytes(b"PAR1 not really")
    (path / "segment_summary.parquet").unlink()
    out = CliRunner().invoke(cli, ["status"])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "snapshot      UNREADABLE" in out.output and "`clv materialize score`" in out.output


def test_a_snapshot_without_segment_history_says_how_to_rebuild_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    publish_fake(get_settings().snapshot_root, "1")                  # its segment_history has no rows
    assert any("has no segment history" in a and "`clv materialize history`" in a
               for a in status.collect(get_settings()).attention)


def test_the_run_summary_survives_what_it_cannot_read(tmp_path, monkeypatch):
    """A job that succeeded ended in a traceback and exit 1 when its summary could not read the snapshot (or
    the warehouse, taken by the next run): operators reran it and registered duplicate models."""
    from clv_platform import orchestrate

    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    path = publish_fake(get_settings().snapshot_root, "1")
    (path / "manifest.json").write_text("{")
    text = orchestrate.summary_text()
    assert "(not shown: SnapshotUnreadableError: snapshot" in text and "clv status" in text


def test_a_lost_or_damaged_mlflow_store_needs_a_look(tmp_path, monkeypatch):
    """A truncated mlflow.db crashed `clv status`; a deleted one read as "no models yet: train"."""
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    settings = get_settings()
    publish_fake(settings.snapshot_root, "5")
    assert any(a.startswith(f"no MLflow store at {settings.mlflow_db}, though a snapshot was scored")
               for a in status.collect(settings).attention)
    settings.mlflow_db.write_bytes(b"")                 # emptied: read as no store, and not written by status
    assert any(a.startswith(f"no MLflow store at {settings.mlflow_db}, though a snapshot was scored")
               for a in status.collect(settings).attention)
    assert settings.mlflow_db.stat().st_size == 0
    settings.mlflow_db.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)            # damaged
    out = CliRunner().invoke(cli, ["status"])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    assert f"the MLflow store {settings.mlflow_db} cannot be read" in out.output


def test_a_snapshot_table_cut_short_needs_a_look(tmp_path, monkeypatch):
    """A truncated segment_summary or segment_history left `clv status` all clear while the API was down."""
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    path = publish_fake(get_settings().snapshot_root, "1")
    (path / "segment_summary.parquet").write_bytes((path / "segment_summary.parquet").read_bytes()[:300])
    assert any("table(s) segment_summary missing or damaged" in a and "`clv materialize score`" in a
               for a in status.collect(get_settings()).attention)


def test_an_earlier_snapshot_can_be_served_again_and_status_says_so(tmp_path, monkeypatch):
    """`clv snapshot use ID` swaps the pointer to a kept snapshot (readers follow at once); `clv snapshot list`
    marks it; status notes the newer ones without asking for attention; an unknown or damaged one is refused
    and the pointer stays; the next publish serves the new one."""
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    root = get_settings().snapshot_root
    first, second, third = (publish_fake(root, token).name for token in ("1", "2", "3"))
    reader = snapshot.SnapshotReader(root)
    assert reader.get().snapshot_id == third

    out = CliRunner().invoke(cli, ["snapshot", "use", first])
    assert out.exit_code == 0, out.output
    assert f"serving {first} (as of 2024-12-31) instead of {third}" in out.output
    assert reader.get().snapshot_id == first
    assert reader.table("customer_scores")["clv_model_version"].iloc[0] == "1"
    listing = CliRunner().invoke(cli, ["snapshot", "list"]).output
    assert f"* {first}  as of 2024-12-31" in listing and f"  {third}  as of 2024-12-31" in listing
    assert "50 customers, clv_model v1" in listing
    st = status.collect(get_settings())
    assert st.snapshot["id"] == first and st.snapshot["newer_kept"] == [second, third]
    assert not any("newer" in a or "snapshot use" in a for a in st.attention), st.attention
    assert f"2 newer one(s) kept, the newest {third}" in CliRunner().invoke(cli, ["status"]).output
    assert "already the snapshot served" in CliRunner().invoke(cli, ["snapshot", "use", first]).output

    out = CliRunner().invoke(cli, ["snapshot", "use", "20240101T000000000000Z-abcdef"])
    assert out.exit_code == 1 and f"kept, oldest first: {first}, {second}, {third}" in out.output
    (root / "snapshots" / second / "customer_scores.parquet").write_bytes(b"PAR1 cut short")
    out = CliRunner().invoke(cli, ["snapshot", "use", second])
    assert out.exit_code == 1 and "customer_scores missing or damaged" in out.output
    assert f"  {second}  UNREADABLE" in CliRunner().invoke(cli, ["snapshot", "list"]).output
    assert reader.get().snapshot_id == first

    fourth = publish_fake(root, "4").name
    assert reader.get().snapshot_id == fourth and status.collect(get_settings()).snapshot["newer_kept"] == []


def test_a_feed_that_stopped_needs_a_look(tmp_path, monkeypatch):
    """Days missing between loaded days were named, but a daily export that stopped was "all clear"."""
    settings, landing = _data_dir(tmp_path, monkeypatch)
    _day(landing, "2024-03-10", ["O1,1,C1,2024-03-10T09:00:00,books,2,12.5,web,US,"])
    _loaded_warehouse(settings, ["2024-03-10"])
    monkeypatch.setenv("CLV_FEED_STALE_DAYS", "3")
    stale = [a for a in status.collect(get_settings(), now=dt.datetime(2024, 3, 14, 8)).attention if "no data" in a]
    assert stale == ["no data since 2024-03-10 (4 days before today): the newest landing file is older than "
                     "CLV_FEED_STALE_DAYS=3: is the daily export running? (a history that no longer grows: set "
                     "CLV_FEED_STALE_DAYS=0)"]
    assert not any("no data" in a for a in status.collect(get_settings(), now=dt.datetime(2024, 3, 13, 8)).attention)
    monkeypatch.setenv("CLV_FEED_STALE_DAYS", "0")
    assert not any("no data" in a for a in status.collect(get_settings(), now=dt.datetime(2025, 1, 1)).attention)
    monkeypatch.setenv("CLV_FEED_STALE_DAYS", "three")
    assert get_settings().data_dir == settings.data_dir           # read by status only: nothing else stops
    out = CliRunner().invoke(cli, ["status"])
    assert out.exit_code == 1 and "CLV_FEED_STALE_DAYS='three' is not a whole number of days" in out.output


def test_a_return_whose_sale_was_reloaded_away_is_named_with_what_to_do(tmp_path, monkeypatch):
    """A day loaded again without a sale that a later return refers to: the later day fails the returns check
    (the reload's run validates it), and `clv validate` of either file finds nothing: status says what to do."""
    settings, landing = _data_dir(tmp_path, monkeypatch)
    _day(landing, "2024-03-03", ["S1,1,C1,2024-03-03T09:00:00,books,1,5,web,US,",
                                 "S2,1,C2,2024-03-03T09:00:00,books,1,5,web,US,"])
    _day(landing, "2024-03-04", ["R1,1,C1,2024-03-04T09:00:00,books,-1,5,web,US,S1"])
    _loaded_warehouse(settings, ["2024-03-03", "2024-03-04"])
    assert _landing_attention(status.collect(settings, now=NOW)) == []
    _day(landing, "2024-03-03", ["S2,1,C2,2024-03-03T09:00:00,books,1,5,web,US,"])       # S1 left out
    con = warehouse.connect(settings.warehouse_path)
    ingest.load_partition(con, "2024-03-03", landing, now=NOW)
    validation.validate_partitions(con, ["2024-03-03", "2024-03-04"])
    con.close()
    [note] = _landing_attention(status.collect(settings, now=NOW))
    assert "2024-03-04 transactions_returns_refer_to_known_orders:returns_match_known_sales_sql" in note
    assert ("a return failing returns_match_known_sales_sql on 2024-03-04 lost its sale (the sale's day was loaded "
            "again without it): put the sale back in its day's file, or load the return's day again (`clv "
            "materialize ingest --from 2024-03-04 --to 2024-03-04`), which quarantines the return") in note


def test_a_segment_history_month_written_before_it_ended_needs_a_look(tmp_path, monkeypatch):
    """`clv run` wrote the month in progress as of its latest day; without the daemon's monthly schedule nothing
    rewrote it once the month ended, and the migration compared a partial month."""
    from clv_platform.lib import scoring

    settings, landing = _data_dir(tmp_path, monkeypatch)
    for day in ("2024-02-10", "2024-03-01"):
        _day(landing, day, [f"O{day},1,C1,{day}T09:00:00,books,1,5,web,US,"])
    _loaded_warehouse(settings, ["2024-02-10"])
    con = warehouse.connect(settings.warehouse_path)
    con.execute(scoring.HISTORY_DDL)
    con.execute(f"INSERT INTO {scoring.HISTORY_TABLE} (month, as_of_date, customer_id) VALUES "
                "('2024-01', DATE '2024-01-31', 'C1'), ('2024-02', DATE '2024-02-10', 'C1')")
    con.close()
    assert not any("segment history" in a for a in status.collect(settings).attention)   # February goes on

    _loaded_warehouse(settings, ["2024-03-01"])                                            # February has ended
    (line,) = [a for a in status.collect(settings).attention if a.startswith("segment history")]
    assert "1 ended month(s) written before they ended, or missing (2024-02)" in line
    assert "`clv materialize history`" in line
    assert status.unfinished_history_months({"2024-01": dt.date(2024, 1, 31)}, dt.date(2024, 4, 2)) == [
        "2024-02", "2024-03"]                                                              # missing months too

    # a month older than the six that `clv materialize history` rewrites: the advice is the UI's backfill
    con = warehouse.connect(settings.warehouse_path)
    con.execute(f"INSERT INTO {scoring.HISTORY_TABLE} (month, as_of_date, customer_id) VALUES "
                "('2023-06', DATE '2023-06-30', 'C1')")
    con.close()
    (line,) = [a for a in status.collect(settings).attention if a.startswith("segment history")]
    assert "backfill those months of serving/segment_history in the Dagster UI" in line


def test_a_bad_snapshots_kept_setting_needs_a_look_before_a_scoring_fails_on_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLV_SNAPSHOTS_KEPT", "0")
    assert any(a.startswith("CLV_SNAPSHOTS_KEPT='0' is not a whole number of snapshots from 1")
               for a in status.collect(get_settings()).attention)
