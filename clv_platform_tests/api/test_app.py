"""The Flask app through its test client: endpoints, validation, snapshot swaps, nothing opened at create time."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from api import create_app
from clv_platform.lib import snapshot
from clv_platform_tests.api.helpers import publish_fake


@pytest.fixture
def app(tmp_path):
    return create_app(snapshot_root=tmp_path / "serving", max_ids=100)


@pytest.fixture
def client(app):
    return app.test_client()


def test_create_app_opens_nothing_and_health_says_no_snapshot(app, client, tmp_path):
    assert not app.extensions["clv_snapshot"].opened
    assert not (tmp_path / "serving").exists()
    resp = client.get("/health")
    assert resp.status_code == 503
    assert resp.json["status"] == "unavailable" and "no serving snapshot" in resp.json["message"]
    assert resp.json["error"] == "no_snapshot"                         # the same code as every other endpoint
    assert str(tmp_path) not in resp.json["message"]                  # open to anyone: no server paths
    resp = client.post("/predict", json={"customer_ids": ["00001"]})
    assert resp.status_code == 503 and resp.json["error"] == "no_snapshot"


def test_default_root_comes_from_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_SNAPSHOT_ROOT", str(tmp_path / "elsewhere"))
    assert create_app().config["SNAPSHOT_ROOT"] == str(tmp_path / "elsewhere")


def test_health_predict_customer_segments(client, tmp_path):
    path = publish_fake(tmp_path / "serving", "7")
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json["snapshot_id"] == path.name
    assert health.json["as_of_date"] == "2024-12-31"
    assert health.json["model_versions"] == {"clv_model": "7", "segment_model": "1"}
    assert health.json["customers"] == 50

    resp = client.post("/predict", json={"customer_ids": ["00002", "nope", "00001", "00002", "zzz"]})
    assert resp.status_code == 200
    body = resp.json
    assert body["snapshot_id"] == path.name and body["model_versions"]["clv_model"] == "7"
    assert [p["customer_id"] for p in body["predictions"]] == ["00002", "00001"]
    assert body["unknown_ids"] == ["nope", "zzz"]
    assert (body["requested"], body["duplicates"], body["found"]) == (4, 1, 2)   # each id answered once
    first = body["predictions"][1]
    assert first["predicted_clv"] == 1.0 and first["predicted_clv_p10"] == 0.5 and first["predicted_clv_p90"] == 2.0
    assert first["predicted_clv_p50"] == 0.8  # the median forecast is served too
    assert 0 <= first["p_alive"] <= 1
    assert first["segment_name"] == "hibernating" and first["segment_since"] == "2024-10-31"
    assert first["as_of_date"] == "2024-12-31"
    assert first["days_since_last_order"] is None  # NaN -> null, valid JSON

    one = client.get("/customers/00050")
    assert one.status_code == 200 and one.json["customer"]["segment_name"] == "champions"
    missing = client.get("/customers/99999")
    assert missing.status_code == 404 and missing.json["error"] == "unknown_customer"

    seg = client.get("/segments")
    assert seg.status_code == 200
    assert {s["segment_name"] for s in seg.json["segments"]} == {"champions", "hibernating"}
    assert seg.json["customers"] == 50


@pytest.mark.parametrize(
    ("kwargs", "code", "text"),
    [
        ({"data": "not json", "content_type": "text/plain"}, "invalid_json", "not JSON"),
        ({"json": ["00001"]}, "invalid_body", "JSON object"),
        ({"json": {"ids": ["00001"]}}, "missing_field", "'customer_ids' is required"),
        ({"json": {"customer_ids": "00001"}}, "invalid_field", "must be a list"),
        ({"json": {"customer_ids": []}}, "invalid_field", "empty"),
        ({"json": {"customer_ids": [str(i) for i in range(101)]}}, "too_many_ids", "at most 100"),
        ({"json": {"customer_ids": ["00001", 2, None]}}, "invalid_id", "must be strings"),
        ({"data": "null", "content_type": "application/json"}, "invalid_body", "must be a JSON object"),  # JSON
        ({"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"}, "invalid_json", "not JSON"),
        ({"data": '{"customer_ids": ["00001", "\\ud800"]}', "content_type": "application/json"}, "invalid_id",
         "index 1: not valid Unicode (a lone surrogate)"),
        ({"json": {"customer_ids": ["00001", "00002", "x" * 201]}}, "invalid_id",
         "index 2: 201 characters, more than 200"),
        ({"json": {"customer_ids": ["00001"], "horizon_days": 90}}, "unknown_field",
         "unknown field(s) 'horizon_days': /predict takes only 'customer_ids'"),
        ({"json": {"ids": ["00001"]}}, "missing_field", 'like {"customer_ids": ["00001", "00002"]}'),  # its ids
        ({"data": '{"customer_ids": ["00001"], "customer_ids": ["nope"]}', "content_type": "application/json"},
         "repeated_field", "'customer_ids' given more than once"),     # not the last one silently
    ],
)
def test_predict_validation_errors_are_400_with_clear_json(client, tmp_path, kwargs, code, text):
    publish_fake(tmp_path / "serving", "1")
    resp = client.post("/predict", **kwargs)
    assert resp.status_code == 400
    assert resp.json["error"] == code and text in resp.json["message"]
    assert len(resp.get_data()) < 2000  # never echoes a huge body or id


def test_predict_body_over_the_limit_is_413(client, tmp_path):
    from api import MAX_BODY_BYTES

    publish_fake(tmp_path / "serving", "1")
    resp = client.post("/predict", json={"customer_ids": ["x" * MAX_BODY_BYTES]})
    assert resp.status_code == 413 and resp.json["error"] == "body_too_large"
    assert "over 4,194,304 bytes" in resp.json["message"] and len(resp.get_data()) < 2000
    # the largest valid request fits: max_ids (here 100) ids of 200 characters
    ok = client.post("/predict", json={"customer_ids": [f"{i:0200d}" for i in range(100)]})
    assert ok.status_code == 200 and len(ok.json["unknown_ids"]) == 100
    # chunked, without a Content-Length: werkzeug cuts the body at the limit; still a 413, not "not JSON"
    body = json.dumps({"customer_ids": ["x" * MAX_BODY_BYTES]}).encode()
    chunked = client.post("/predict", input_stream=io.BytesIO(body), content_type="application/json",
                          headers={"Transfer-Encoding": "chunked"},
                          environ_overrides={"wsgi.input_terminated": True})   # (as gunicorn sets it)
    assert chunked.status_code == 413 and chunked.json["error"] == "body_too_large", chunked.json


def test_invalid_id_details_and_http_errors_are_json(client, tmp_path):
    publish_fake(tmp_path / "serving", "1")
    resp = client.post("/predict", json={"customer_ids": ["a", 1, "b", 2.5]})
    assert resp.json["details"] == {"indexes": [1, 3]}
    assert client.get("/nope").json["error"] == "not_found"
    assert client.get("/predict").status_code == 405 and client.get("/predict").json["error"] == "method_not_allowed"
    put = client.put("/predict")
    assert put.status_code == 405 and put.mimetype == "application/json"
    assert set(put.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert set(client.post("/segments").headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_new_snapshot_is_served_without_restart(app, client, tmp_path):
    root = tmp_path / "serving"
    first = publish_fake(root, "1", clv_factor=1.0)
    assert client.post("/predict", json={"customer_ids": ["00003"]}).json["predictions"][0]["predicted_clv"] == 3.0
    second = publish_fake(root, "2", n=60, clv_factor=10.0)
    health = client.get("/health").json
    assert health["snapshot_id"] == second.name != first.name
    assert health["customers"] == 60 and health["model_versions"]["clv_model"] == "2"
    body = client.post("/predict", json={"customer_ids": ["00003", "00060"]}).json
    assert [p["predicted_clv"] for p in body["predictions"]] == [30.0, 600.0] and body["unknown_ids"] == []
    assert app.extensions["clv_snapshot"].reader().reloads == 2


def test_numbers_come_out_exact_and_in_their_shortest_form(client, tmp_path):
    """Every float is served with all its digits, written the short way (99.34, not 99.340000000000003), and
    NaN or infinity as null, so the body is valid JSON."""
    path = publish_fake(tmp_path / "serving", "1")
    scores = pd.read_parquet(path / "customer_scores.parquet")
    scores.loc[0, ["monetary_value", "predicted_clv_p50", "p_alive", "total_spend"]] = [
        99.34, 8.113656570900839e-11, 0.10369690606603159, 1234567.89]
    scores.loc[1, ["btyd_clv", "recency"]] = [np.inf, -np.inf]
    tables = {name: pd.read_parquet(f) for name, f in ((f.stem, f) for f in path.glob("*.parquet"))}
    tables["customer_scores"] = scores
    snapshot.publish(tmp_path / "serving", tables, json.loads((path / "manifest.json").read_text()))

    resp = client.post("/predict", json={"customer_ids": ["00001", "00002"]})
    text = resp.get_data(as_text=True)
    assert '"monetary_value":99.34,' in text and '"total_spend":1234567.89,' in text
    assert "99.340000000000003" not in text and "NaN" not in text and "Infinity" not in text
    first, second = json.loads(text)["predictions"]
    assert first["predicted_clv_p50"] == 8.113656570900839e-11 and first["p_alive"] == 0.10369690606603159
    assert second["btyd_clv"] is None and second["recency"] is None
    assert first["days_since_last_order"] is None and second["days_since_last_order"] == 100.0
    # the same values through the one-customer endpoint
    one = client.get("/customers/00001").json["customer"]
    assert one["monetary_value"] == 99.34 and one["predicted_clv_p50"] == 8.113656570900839e-11


def test_json_provider_writes_numpy_dates_and_flask_defaults(app):
    """Every endpoint's body goes through api/encoding.py: numpy values, dates, non-finite floats, and the types
    only Flask's default handles (Decimal), in column order unless told to sort."""
    import datetime as dt
    from decimal import Decimal

    body = {"b": np.float64(0.1), "a": np.array([1.5, np.nan]), "d": dt.date(2026, 11, 24), "x": Decimal("1.50"),
            "n": np.int64(7), "inf": float("inf")}
    assert app.json.dumps(body) == ('{"b":0.1,"a":[1.5,null],"d":"2026-11-24","x":"1.50","n":7,"inf":null}')
    assert app.json.dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a":2,"b":1}'
    assert app.json.dumps({"a": 1}, indent=2) == '{\n  "a": 1\n}'


def test_customer_list_filters_sorts_and_pages(client, tmp_path):
    publish_fake(tmp_path / "serving", "1")          # predicted_clv 1..50; champions above 25
    scores = pd.read_parquet(next((tmp_path / "serving" / "snapshots").iterdir()) / "customer_scores.parquet")

    body = client.get("/customers").json                     # default: by predicted CLV, highest first
    assert body["total"] == 50 and body["returned"] == 50 and body["limit"] == 100
    assert [c["predicted_clv"] for c in body["customers"][:3]] == [50.0, 49.0, 48.0]

    body = client.get("/customers?max_p_alive=0.5&min_predicted_clv=10&sort=-predicted_clv&limit=3").json
    expected = scores[(scores.p_alive <= 0.5) & (scores.predicted_clv >= 10)].sort_values(
        "predicted_clv", ascending=False)
    assert body["total"] == len(expected) > 3 and body["returned"] == 3
    assert [c["customer_id"] for c in body["customers"]] == expected.customer_id.head(3).tolist()
    second = client.get("/customers?max_p_alive=0.5&min_predicted_clv=10&limit=3&offset=3").json
    assert [c["customer_id"] for c in second["customers"]] == expected.customer_id.iloc[3:6].tolist()

    body = client.get("/customers?segment=hibernating&sort=predicted_clv&limit=2").json
    assert body["total"] == 25 and [c["predicted_clv"] for c in body["customers"]] == [1.0, 2.0]
    # NaN never passes a bound and sorts last
    assert client.get("/customers?min_days_since_last_order=0").json["total"] == 49
    last = client.get("/customers?sort=-days_since_last_order&limit=50").json["customers"][-1]
    assert last["customer_id"] == "00001" and last["days_since_last_order"] is None


@pytest.mark.parametrize("sort", ["predicted_clv", "-predicted_clv", "-p_alive", "segment_name", "-segment_name",
                                  "-segment_since", "days_since_last_order", "-days_since_last_order"])
def test_customer_list_pages_match_a_full_sort(tmp_path, sort):
    """The page comes from a partial sort; it must equal the full sort's rows (ties by customer id, NaN last)
    for every page, also where ties and NaNs straddle a page boundary."""
    from api.store import ScoresView

    n = 400
    rng = np.random.default_rng(7)
    path = publish_fake(tmp_path / "serving", "1", n=n)
    scores = pd.read_parquet(path / "customer_scores.parquet").sample(frac=1.0, random_state=3)  # ids unordered
    scores["predicted_clv"] = rng.integers(0, 20, n).astype(float)                  # many ties
    scores["days_since_last_order"] = np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 5, n))
    scores["segment_since"] = pd.to_datetime("2024-10-31") - pd.to_timedelta(rng.integers(0, 3, n), unit="D")
    tables = {f.stem: pd.read_parquet(f) for f in path.glob("*.parquet")}
    snapshot.publish(tmp_path / "serving", {**tables, "customer_scores": scores},
                     json.loads((path / "manifest.json").read_text()))
    view = ScoresView(snapshot.SnapshotReader(tmp_path / "serving").get())
    column, descending = sort.lstrip("-"), sort.startswith("-")
    keep = scores[scores["p_alive"] <= 0.8]
    expected = keep.sort_values([column, "customer_id"], ascending=[not descending, True], na_position="last",
                                kind="stable")["customer_id"].tolist()
    for offset, limit in [(0, 7), (5, 30), (60, 100), (len(keep) - 3, 10), (len(keep) + 5, 10)]:
        page, total = view.select({"p_alive": (None, 0.8)}, [], column, descending, offset, limit)
        assert total == len(keep)
        assert page["customer_id"].tolist() == expected[offset:offset + limit], (offset, limit)


def test_customer_list_as_csv(client, tmp_path):
    publish_fake(tmp_path / "serving", "1")
    resp = client.get("/customers?segment=champions&format=csv&limit=5")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["X-Total-Count"] == "25"
    assert resp.headers["Content-Disposition"] == "attachment; filename=customers_2024-12-31.csv"
    assert resp.headers["X-Snapshot-Id"] == snapshot.current_snapshot_dir(tmp_path / "serving").name
    lines = resp.get_data(as_text=True).splitlines()
    assert lines[0].startswith("customer_id,as_of_date,predicted_clv,") and len(lines) == 6
    assert lines[1].startswith("00050,2024-12-31,50.0,")

    # an id from the supplier's file that a spreadsheet would run as a formula: text in the CSV, as is in JSON
    path = snapshot.current_snapshot_dir(tmp_path / "serving")
    tables = {f.stem: pd.read_parquet(f) for f in path.glob("*.parquet")}
    tables["customer_scores"].loc[tables["customer_scores"]["customer_id"] == "00050", "customer_id"] = "=1+1"
    snapshot.publish(tmp_path / "serving", tables, json.loads((path / "manifest.json").read_text()))
    lines = client.get("/customers?segment=champions&format=csv&limit=1").get_data(as_text=True).splitlines()
    assert lines[1].startswith("'=1+1,2024-12-31,50.0,")
    assert client.get("/customers?segment=champions&limit=1").json["customers"][0]["customer_id"] == "=1+1"


@pytest.mark.parametrize("query, code, words", [
    ("max_p_alvie=0.5", "unknown_column", "'p_alvie' is not a numeric score column"),
    ("min_segment_name=1", "unknown_column", "'segment_name' is not a numeric score column"),
    ("max_p_alive=half", "invalid_parameter", "max_p_alive='half' is not a number"),
    ("top=5", "unknown_parameter", "unknown parameter 'top'"),
    ("segment=vip", "unknown_segment", "no segment named 'vip'"),
    ("sort=-value", "unknown_column", "sort: 'value' is not a column"),
    ("limit=0", "invalid_parameter", "limit='0' must be a number >= 1"),
    ("limit=101", "invalid_parameter", "limit='101' is too large (at most 100)"),      # the app's max_ids
    ("limit=-" + "9" * 30, "invalid_parameter", "must be a number >= 1"),
    ("offset=-1", "invalid_parameter", "offset='-1' must be a number >= 0"),
    ("format=xml", "invalid_parameter", "format='xml': use json or csv"),
    ("offset=99999999999999999999999999&limit=1", "invalid_parameter",
     "offset='99999999999999999999999999' is too large (at most 9007199254740991)"),
    ("offset=" + "9" * 5000, "invalid_parameter", "is too large"),
    ("limit=" + "9" * 309, "invalid_parameter", "is too large"),        # (309-4,300 digits overflowed: a 500)
    ("offset=" + "9" * 400, "invalid_parameter", "is too large"),
    ("min_predicted_clv=nan", "invalid_parameter", "NaN and infinity are not allowed"),
    ("max_p_alive=-inf", "invalid_parameter", "NaN and infinity are not allowed"),
    ("min_predicted_clv=1e999", "invalid_parameter", "min_predicted_clv='1e999' is too large"),
    ("min_predicted_clv=1_000", "invalid_parameter", "min_predicted_clv='1_000' is not a number"),
    ("limit=%EF%BC%91", "invalid_parameter", "limit='１' is not an integer"),            # full-width 1
    ("limit=%205", "invalid_parameter", "limit=' 5' is not an integer"),
    ("sort=--predicted_clv", "unknown_column", "sort: '-predicted_clv' is not a column"),
    ("max_p_alive=0.5&max_p_alive=0.1", "repeated_parameter", "'max_p_alive' is given 2 times"),
    ("limit=1&limit=abc", "repeated_parameter", "'limit' is given 2 times"),
])
def test_customer_list_rejects_bad_parameters_by_name(client, tmp_path, query, code, words):
    publish_fake(tmp_path / "serving", "1")
    resp = client.get(f"/customers?{query}")
    assert resp.status_code == 400 and resp.json["error"] == code and words in resp.json["message"]
    assert len(resp.get_data()) < 2000


def test_numbers_in_plain_decimal_forms_are_accepted(client, tmp_path):
    publish_fake(tmp_path / "serving", "1")
    for query in ("min_predicted_clv=1e1", "min_predicted_clv=10.", "min_predicted_clv=%2B10.0",
                  "min_predicted_clv=.5e2&max_predicted_clv=50", "segment=champions&segment=hibernating&limit=1"):
        assert client.get(f"/customers?{query}").status_code == 200, query
    assert client.get("/customers?min_predicted_clv=1e1").json["total"] == 41
    assert client.get("/customers?offset=9007199254740991").json["returned"] == 0


@pytest.mark.parametrize("path", ["/health", "/segments", "/segments/migration", "/customers/00001",
                                  "/customers/00001/history"])
def test_every_endpoint_rejects_unknown_and_repeated_parameters(client, tmp_path, path):
    publish_fake(tmp_path / "serving", "1")
    resp = client.get(f"{path}?top=5")
    assert resp.status_code == 400 and resp.json["error"] == "unknown_parameter"
    assert f"unknown parameter 'top' for {path}" in resp.json["message"] and resp.json["details"] == {"parameter": "top"}
    if path == "/segments/migration":
        resp = client.get(f"{path}?to_month=2024-11&to_month=2024-10")
        assert resp.status_code == 400 and resp.json["error"] == "repeated_parameter"
        assert "'to_month' is given 2 times" in resp.json["message"]
    post = client.post("/predict?dry_run=1", json={"customer_ids": ["00001"]})
    assert post.status_code == 400 and post.json["error"] == "unknown_parameter"


def test_token_guards_every_endpoint_but_health(tmp_path, monkeypatch):
    publish_fake(tmp_path / "serving", "1")
    monkeypatch.setenv("CLV_API_TOKEN", "s3cret")
    client = create_app(snapshot_root=tmp_path / "serving").test_client()
    assert client.get("/health").status_code == 200                      # the load balancer's probe
    missing = client.post("/predict", json={"customer_ids": ["00001"]})
    assert missing.status_code == 401 and missing.json["error"] == "unauthorized"
    assert "missing token" in missing.json["message"] and missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/customers", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong token" in wrong.json["message"]
    ok = {"Authorization": "Bearer s3cret"}
    assert client.post("/predict", json={"customer_ids": ["00001"]}, headers=ok).json["found"] == 1
    for scheme in ("bearer", "BEARER", "bEaReR"):                        # scheme names are case-insensitive
        assert client.get("/segments", headers={"Authorization": f"{scheme} s3cret"}).status_code == 200
    for value in ("Basic s3cret", "Bearer S3CRET", "Bearers3cret", "s3cret"):  # the token itself is not
        assert client.get("/segments", headers={"Authorization": value}).status_code == 401
    for path in ("/customers?limit=1", "/customers/00001", "/segments"):
        assert client.get(path, headers=ok).status_code == 200 and client.get(path).status_code == 401
    # no endpoint there: 404 and 405 as without a token (there is nothing to guard)
    assert client.get("/nope").status_code == 404 and client.post("/health").status_code == 405
    monkeypatch.delenv("CLV_API_TOKEN")
    assert create_app(snapshot_root=tmp_path / "serving").test_client().get("/segments").status_code == 200
    # a token read from a secrets file with its newline, and a non-ASCII token sent as UTF-8, both match
    with_newline = create_app(snapshot_root=tmp_path / "serving", token="s3cret\n").test_client()
    assert with_newline.get("/segments", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    accented = create_app(snapshot_root=tmp_path / "serving", token="pässwort").test_client()
    utf8 = "Bearer pässwort".encode().decode("latin-1")          # the bytes a UTF-8 client sends, as werkzeug reads
    assert accented.get("/segments", headers={"Authorization": utf8}).status_code == 200
    assert accented.get("/segments", headers={"Authorization": "Bearer passwort"}).status_code == 401


def test_customer_history_and_segment_migration(client, tmp_path):
    path = publish_fake(tmp_path / "serving", "1")
    tables = {f.stem: pd.read_parquet(f) for f in path.glob("*.parquet")}
    # before any history: a known customer has an empty history, the migration is missing
    assert client.get("/customers/00003/history").json["history"] == []
    missing = client.get("/segments/migration")
    assert missing.status_code == 404 and "backfill serving/segment_history" in missing.json["message"]

    tables["segment_history"] = pd.DataFrame({
        "month": ["2024-11", "2024-10", "2024-11", "2024-10"], "customer_id": ["00003", "00003", "00004", "00009"],
        "segment_name": ["champions", "hibernating", "hibernating", "hibernating"],
        "predicted_clv": [30.5, 3.25, 4.0, 9.0], "p_alive": [0.9, 0.2, 0.3, 0.1]})
    tables["segment_migration"] = pd.DataFrame({     # its "(new)": a snapshot published before the rename
        "from_month": ["2024-10", "2024-10", "2024-10"], "to_month": ["2024-11", "2024-11", "2024-11"],
        "from_segment": ["hibernating", "hibernating", "(new)"], "to_segment": ["champions", "(gone)", "hibernating"],
        "customers": [1, 1, 1], "share": [0.5, 0.5, 1.0]})
    snapshot.publish(tmp_path / "serving", tables, json.loads((path / "manifest.json").read_text()))

    body = client.get("/customers/00003/history").json
    assert body["customer_id"] == "00003"
    assert [(h["month"], h["segment_name"], h["predicted_clv"]) for h in body["history"]] == [
        ("2024-10", "hibernating", 3.25), ("2024-11", "champions", 30.5)]     # oldest first
    assert "customer_id" not in body["history"][0]
    assert len(client.get("/customers/00009/history").json["history"]) == 1  # in the history only: still served
    unknown = client.get("/customers/nobody/history")
    assert unknown.status_code == 404 and unknown.json["error"] == "unknown_customer"

    moves = client.get("/segments/migration?to_month=2024-11").json["migration"]
    assert [(m["from_segment"], m["to_segment"], m["customers"]) for m in moves] == [
        ("hibernating", "champions", 1), ("hibernating", "(gone)", 1), ("(first seen)", "hibernating", 1)]
    bad = client.get("/segments/migration?to_month=2023-01")
    assert bad.status_code == 400 and bad.json["details"]["to_months"] == ["2024-11"]


def test_a_damaged_snapshot_is_a_503_naming_it_not_a_500_or_no_snapshot(client, tmp_path):
    """Files of the current snapshot removed or damaged after it was published: /health said ok (or 500), the
    history endpoint 'pruned', and no endpoint said what to do."""
    path = publish_fake(tmp_path / "serving", "7")
    (path / "segment_history.parquet").unlink()
    health = client.get("/health")
    assert health.status_code == 503 and health.json["error"] == "snapshot_unreadable"
    assert f"snapshot {path.name}: table(s) segment_history missing or damaged" in health.json["message"]
    assert "`clv materialize score`" in health.json["message"] and str(tmp_path) not in health.json["message"]
    resp = client.get("/customers/00001/history")
    assert resp.status_code == 503 and resp.json["error"] == "snapshot_unreadable"

    path = publish_fake(tmp_path / "serving", "8")                      # a table cut short, not the scores
    (path / "segment_summary.parquet").write_bytes((path / "segment_summary.parquet").read_bytes()[:300])
    health = client.get("/health")
    assert health.status_code == 503 and health.json["error"] == "snapshot_unreadable"
    assert "segment_summary" in health.json["message"] and "damaged" in health.json["message"]
    (path / "manifest.json").write_text('{"snapshot_id": ')                 # truncated
    resp = client.post("/predict", json={"customer_ids": ["00001"]})
    assert resp.status_code == 503 and resp.json["error"] == "snapshot_unreadable"
    assert "manifest.json is damaged" in resp.json["message"] and str(tmp_path) not in resp.json["message"]


def test_a_body_of_exactly_the_limit_passes_chunked_or_not(client, tmp_path):
    from api import MAX_BODY_BYTES

    publish_fake(tmp_path / "serving", "1")
    head = b'{"customer_ids": ["00001"]}'
    body = head + b" " * (MAX_BODY_BYTES - len(head))
    plain = client.post("/predict", data=body, content_type="application/json")
    chunked = client.post("/predict", input_stream=io.BytesIO(body), content_type="application/json",
                          headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert plain.status_code == chunked.status_code == 200 and chunked.json["found"] == 1
    over = client.post("/predict", input_stream=io.BytesIO(body + b" "), content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert over.status_code == 413 and "send fewer ids per request (at most 100, and at most 4,194,304 bytes" \
        in over.json["message"]
    assert client.post("/predict", data=body + b" ", content_type="application/json").status_code == 413


def test_ids_with_a_slash_or_padding_and_what_the_figures_cover(client, tmp_path):
    """An id holding '/' is served by /customers/<id> and its history (percent-encoded or not); ids with
    surrounding whitespace are looked up without it, as in the dashboard; every answer says the periods the two
    CLV figures cover; a long unknown id is not echoed whole."""
    path = publish_fake(tmp_path / "serving", "1")
    tables = {f.stem: pd.read_parquet(f) for f in path.glob("*.parquet")}
    tables["customer_scores"].loc[0, "customer_id"] = "ACME/42"
    tables["customer_scores"].loc[1, "customer_id"] = "X/history"
    tables["customer_scores"].loc[2, "customer_id"] = "/Z"
    tables["segment_history"] = pd.DataFrame({"month": ["2024-11"], "customer_id": ["ACME/42"],
                                              "segment_name": ["champions"], "predicted_clv": [3.0]})
    manifest = {**json.loads((path / "manifest.json").read_text()), "clv_horizon_days": 200,
                "btyd_clv_horizon_days": 365}
    snapshot.publish(tmp_path / "serving", tables, manifest)

    for url in ("/customers/ACME%2F42", "/customers/ACME/42", "/customers/%20ACME%2F42%20"):
        resp = client.get(url)
        assert resp.status_code == 200 and resp.json["customer"]["customer_id"] == "ACME/42", (url, resp.json)
    history = client.get("/customers/ACME%2F42/history")
    assert history.status_code == 200 and history.json["customer_id"] == "ACME/42"
    assert [h["month"] for h in history.json["history"]] == ["2024-11"]
    assert client.get("/customers/ACME/43/history").json["error"] == "unknown_customer"
    # an id ending in "/history" or starting with "/": found, not another customer, not a redirect
    assert client.get("/customers/X%2Fhistory").json["customer"]["customer_id"] == "X/history"
    assert client.get("/customers/%2FZ").json["customer"]["customer_id"] == "/Z"
    csv = client.get("/customers?format=csv&limit=1")
    assert (csv.headers["X-Clv-Horizon-Days"], csv.headers["X-Btyd-Clv-Horizon-Days"]) == ("200", "365")

    resp = client.post("/predict", json={"customer_ids": [" ACME/42 ", "00005\t", "ACME/42"]})
    assert [p["customer_id"] for p in resp.json["predictions"]] == ["ACME/42", "00005"]
    assert (resp.json["requested"], resp.json["duplicates"]) == (2, 1)

    for url in ("/health", "/customers/00005", "/segments"):
        body = client.get(url).json
        assert (body["clv_horizon_days"], body["btyd_clv_horizon_days"]) == (200, 365), url
    missing = client.get("/customers/" + "x" * 4000)
    assert missing.status_code == 404 and len(missing.get_data()) < 1000
