"""Endpoints: GET /health, POST /predict, GET /customers (filtered list), GET /customers/<id>,
GET /customers/<id>/history, GET /segments, GET /segments/migration. All read the snapshot only."""

import json
import math
import re
from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.errors import ApiError
from api.store import SnapshotStore, jsonable, records
from clv_platform.lib import export
from clv_platform.lib.snapshot import Snapshot, SnapshotNotFoundError, SnapshotUnreadableError

bp = Blueprint("clv", __name__)


def _store() -> SnapshotStore:
    return current_app.extensions["clv_snapshot"]


def _about(snap: Snapshot) -> dict:
    """What every answer is about: the snapshot, its as-of date, the model versions, and the periods the two CLV
    figures cover (predicted_clv: spend over clv_horizon_days after the as-of date, undiscounted; btyd_clv:
    over btyd_clv_horizon_days, discounted), so that a client never puts a 200-day figure next to a 365-day
    one unawares. (Snapshots published before they were recorded give null.)"""
    return {
        "snapshot_id": snap.snapshot_id,
        "as_of_date": snap.as_of_date,
        "model_versions": snap.model_versions,
        "clv_horizon_days": snap.manifest.get("clv_horizon_days"),
        "btyd_clv_horizon_days": snap.manifest.get("btyd_clv_horizon_days"),
    }


def _check_query(allowed: tuple[str, ...] | None, repeatable: tuple[str, ...] = ()) -> None:
    """400 naming a query parameter given more than once (unless `repeatable`) or not `allowed` (None: the
    endpoint checks the names itself)."""
    for name in request.args:
        count = len(request.args.getlist(name))
        if count > 1 and name not in repeatable:
            raise ApiError(400, "repeated_parameter", f"parameter {name!r} is given {count} times; give it once",
                           {"parameter": name})
        if allowed is not None and name not in allowed:
            takes = f"it takes {', '.join(allowed)}" if allowed else "it takes none"
            raise ApiError(400, "unknown_parameter", f"unknown parameter {name!r} for {request.path}; {takes}",
                           {"parameter": name})


@bp.get("/health")
def health():
    _check_query(())
    try:
        snap = _store().snapshot()
        snap.check_tables()     # a file removed or cut after publishing: the endpoints reading it would fail
    except SnapshotNotFoundError:      # (open to anyone: the server's paths are not in the message)
        return jsonify({"status": "unavailable", "error": "no_snapshot",
                        "message": "no serving snapshot published yet: score and publish one (scoring_job, "
                                   "`clv materialize score`, or `make run`)"}), 503
    except SnapshotUnreadableError as exc:
        return jsonify({"status": "unavailable", "error": "snapshot_unreadable",
                        "message": f"{exc}: {exc.REMEDY}"}), 503
    published = snap.manifest.get("published_at")
    age = None
    if published:
        age = round((datetime.now(UTC) - datetime.fromisoformat(published)).total_seconds(), 1)
    return jsonify({
        "status": "ok",
        **_about(snap),
        "published_at": published,
        "snapshot_age_seconds": age,
        "customers": snap.manifest.get("row_counts", {}).get("customer_scores"),
    })


MAX_ID_CHARS = 200


def _short(value) -> str:
    """repr(value), cut to 40 characters (a message never echoes a huge value)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _id_problem(value) -> str | None:
    """Why `value` is not a customer id (None when it is one)."""
    if not isinstance(value, str):
        return "not a string"
    if len(value) > MAX_ID_CHARS:
        return f"{len(value):,} characters, more than {MAX_ID_CHARS}"
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): valid JSON escapes, no Unicode text
        return "not valid Unicode (a lone surrogate)"
    return None


def _example() -> str:
    """The request to send, with two ids of the snapshot served (so the example looks like real ids)."""
    ids = ["C0000001", "C0000002"]
    try:
        served = [str(c) for c in _store().view().scores["customer_id"].head(2)]
        if all(_PLAIN_ID.fullmatch(c) for c in served):     # never echo an odd id from a supplier's file
            ids = served
    except SnapshotNotFoundError:
        pass
    return f"send a JSON object like {json.dumps({'customer_ids': ids})}"


_PLAIN_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def _body() -> bytes:
    """The request body; 413 when it is over BODY_LIMIT, also when it comes chunked (no Content-Length):
    werkzeug then cuts the stream at MAX_CONTENT_LENGTH (one byte more) without saying so, so a body of
    exactly the limit passes either way."""
    data = request.get_data()  # (a declared Content-Length over MAX_CONTENT_LENGTH: 413 here)
    if len(data) > current_app.config["BODY_LIMIT"]:
        raise RequestEntityTooLarge()
    return data


def _no_repeated_keys(pairs: list) -> dict:
    """json.loads hook: a key given twice in one object is a 400 (else the last one would win silently)."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ApiError(400, "repeated_field", f"field(s) {', '.join(map(_short, repeated))} given more than once "
                       "in one JSON object; give each once", {"fields": repeated[:20]})
    return dict(pairs)


def _customer_ids() -> list[str]:
    if not request.is_json:
        raise ApiError(400, "invalid_json", f"the request body is not JSON (Content-Type application/json); "
                       f"{_example()}")
    data = _body()
    try:
        body = json.loads(data, object_pairs_hook=_no_repeated_keys)
    except (ValueError, RecursionError):  # RecursionError: nested too deep for the parser
        raise ApiError(400, "invalid_json", f"the request body is not JSON; {_example()}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", f"the request body must be a JSON object; {_example()}")
    if "customer_ids" not in body:
        raise ApiError(400, "missing_field", f"field 'customer_ids' is required; {_example()}")
    extra = sorted(set(body) - {"customer_ids"})
    if extra:
        raise ApiError(400, "unknown_field", f"unknown field(s) {', '.join(map(_short, extra))}: /predict takes "
                       "only 'customer_ids' (scores are as of the snapshot, over the model's horizon)",
                       {"fields": extra[:20]})
    ids = body["customer_ids"]
    if not isinstance(ids, list):
        raise ApiError(400, "invalid_field", f"'customer_ids' must be a list, got {type(ids).__name__}; {_example()}")
    if not ids:
        raise ApiError(400, "invalid_field", "'customer_ids' is empty: give at least one id")
    limit = current_app.config["MAX_IDS"]
    if len(ids) > limit:
        raise ApiError(
            400, "too_many_ids", f"'customer_ids' has {len(ids)} ids; at most {limit} per request",
            {"count": len(ids), "limit": limit},
        )
    bad = [(i, why) for i, why in enumerate(map(_id_problem, ids)) if why]
    if bad:
        first, why = bad[0]
        raise ApiError(
            400, "invalid_id", f"customer ids must be strings of at most {MAX_ID_CHARS} characters of valid "
            f"Unicode; {len(bad)} are not (first at index {first}: {why}, {_short(ids[first])})",
            {"indexes": [i for i, _ in bad[:20]]},
        )
    # surrounding whitespace is never part of an id (ingestion quarantines such ids as id_with_spaces): a
    # padded id from a CRM export is looked up without it, as the dashboard does
    return [i.strip() for i in ids]


@bp.post("/predict")
def predict():
    _check_query(())
    sent = _customer_ids()
    ids = list(dict.fromkeys(sent))  # each id answered once, in request order
    view = _store().view()
    predictions, unknown = view.lookup(ids)
    return jsonify({**_about(view.snapshot), "requested": len(ids), "duplicates": len(sent) - len(ids),
                    "found": len(predictions), "predictions": predictions, "unknown_ids": unknown})


LIST_PARAMETERS = ("segment", "sort", "limit", "offset", "format")
DEFAULT_PAGE = 100


# Plain ASCII decimals only: no "1_000", no full-width digits, no spaces, no NaN or infinity.
_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")
MAX_OFFSET = 2**53 - 1  # the largest integer every JSON client reads exactly


def _number(name: str, text: str, integer: bool = False, minimum: float | None = None,
            maximum: float | None = None):
    def invalid(why: str):
        return ApiError(400, "invalid_parameter", f"{name}={_short(text)} {why}", {"parameter": name})

    if not (_INTEGER if integer else _NUMBER).fullmatch(text):
        special = text.strip().lstrip("+-").lower() in ("nan", "inf", "infinity")
        raise invalid(f"is not {'an integer' if integer else 'a number'}"
                      + ("; NaN and infinity are not allowed" if special else ""))
    try:
        value = int(text) if integer else float(text)
    except ValueError:  # an integer of thousands of digits
        value = math.inf
    if integer and abs(value) > MAX_OFFSET:  # (a Python int of 309+ digits overflows math.isfinite)
        value = math.inf if value > 0 else -math.inf
    if minimum is not None and value < minimum:
        raise invalid(f"must be a number >= {minimum}")
    if not math.isfinite(value) or (maximum is not None and value > maximum):
        raise invalid(f"is too large (at most {maximum})" if maximum is not None else "is too large")
    return value


@bp.get("/customers")
def customers():
    """Customers matching filters, one page, sorted: who to call, e.g. the valuable ones slipping away:
    /customers?max_p_alive=0.5&min_predicted_clv=100&sort=-predicted_clv. Filters min_<column>/max_<column>
    on any numeric score column, segment=<name> (repeatable); sort=<column> or -<column> (descending;
    default -predicted_clv); limit (default 100, at most MAX_IDS), offset; format=json|csv."""
    _check_query(None, repeatable=("segment",))
    view = _store().view()
    numeric = view.numeric_columns
    args = request.args
    bounds: dict[str, list] = {}
    for name in args:
        prefix, _, column = name.partition("_")
        if prefix in ("min", "max") and column:
            if column not in numeric:
                raise ApiError(400, "unknown_column", f"{name}: {column!r} is not a numeric score column",
                               {"parameter": name, "numeric_columns": numeric})
            bounds.setdefault(column, [None, None])[prefix == "max"] = _number(name, args[name])
        elif name not in LIST_PARAMETERS:
            raise ApiError(400, "unknown_parameter", f"unknown parameter {name!r}; use min_<column>, "
                           f"max_<column>, {', '.join(LIST_PARAMETERS)}", {"parameter": name})
    segments = args.getlist("segment")
    unknown = sorted(set(segments) - set(view.segment_names)) if segments else []
    if unknown:
        raise ApiError(400, "unknown_segment", f"no segment named {', '.join(map(repr, unknown))} in snapshot "
                       f"{view.snapshot.snapshot_id}", {"segments": view.segment_names})
    sort = args.get("sort", "-predicted_clv")
    descending = sort.startswith("-")
    column = sort[1:] if descending else sort
    if column not in view.scores.columns:
        raise ApiError(400, "unknown_column", f"sort: {column!r} is not a column of the scores",
                       {"parameter": "sort", "columns": list(view.scores.columns)})
    limit = int(_number("limit", args.get("limit", str(DEFAULT_PAGE)), integer=True, minimum=1,
                        maximum=current_app.config["MAX_IDS"]))
    offset = int(_number("offset", args.get("offset", "0"), integer=True, minimum=0, maximum=MAX_OFFSET))
    fmt = args.get("format", "json")
    if fmt not in ("json", "csv"):
        raise ApiError(400, "invalid_parameter", f"format={fmt!r}: use json or csv", {"parameter": "format"})
    page, total = view.select({c: tuple(b) for c, b in bounds.items()}, segments, column, descending, offset, limit)
    if fmt == "csv":
        resp = current_app.response_class(export.to_csv(page), mimetype="text/csv")
        resp.headers["Content-Disposition"] = f"attachment; filename=customers_{view.snapshot.as_of_date}.csv"
        resp.headers["X-Total-Count"] = str(total)
        # (pages fetched across a republish would mix snapshots: a client compares this from page to page)
        resp.headers["X-Snapshot-Id"] = view.snapshot.snapshot_id
        for name, value in _about(view.snapshot).items():        # the periods the CLV figures cover
            if name.endswith("horizon_days") and value is not None:
                resp.headers["X-" + name.replace("_", "-").title()] = str(value)
        return resp
    return jsonify({**_about(view.snapshot), "total": total, "offset": offset, "limit": limit,
                    "returned": len(page), "customers": records(page)})


# an id may hold '/' (werkzeug decodes %2F before routing): the app's customer_id converter; surrounding
# whitespace is dropped, as in /predict
@bp.get("/customers/<customer_id:customer_id>")
def customer(customer_id: str):
    _check_query(())
    customer_id = customer_id.strip()
    view = _store().view()
    found, _ = view.lookup([customer_id])
    if not found:
        raise ApiError(404, "unknown_customer", f"customer {_short(customer_id)} is not in snapshot "
                       f"{view.snapshot.snapshot_id} (as of {view.snapshot.as_of_date})")
    return jsonify({**_about(view.snapshot), "customer": found[0]})


@bp.get("/customers/<customer_id:customer_id>/history")
def customer_history(customer_id: str):
    """The customer's month-end segment and scores (serving/segment_history), oldest first."""
    _check_query(())
    customer_id = customer_id.strip()
    view = _store().view()
    rows = view.history(customer_id)
    if rows.empty and customer_id not in view.scores.index:
        if f"{customer_id}/history" in view.scores.index:     # an id that itself ends in "/history"
            return customer(f"{customer_id}/history")
        raise ApiError(404, "unknown_customer", f"customer {_short(customer_id)} is not in snapshot "
                       f"{view.snapshot.snapshot_id} (as of {view.snapshot.as_of_date})")
    return jsonify({**_about(view.snapshot), "customer_id": customer_id,
                    "history": records(rows)})


@bp.get("/segments/migration")
def segment_migration():
    """Customers moving between segments from one month to the next (serving/segment_migration); `to_month`
    (YYYY-MM) picks one pair of months, default: every pair."""
    _check_query(("to_month",))
    snap = _store().snapshot()
    table = snap.table("segment_migration") if "segment_migration" in snap.table_names else None
    if table is None or "to_month" not in table:
        raise ApiError(404, "no_migration", f"snapshot {snap.snapshot_id} has no segment migration "
                       "(backfill serving/segment_history first)")
    month = request.args.get("to_month")
    if month is not None:
        months = sorted(table["to_month"].astype(str).unique())
        if month not in months:
            raise ApiError(400, "unknown_month", f"to_month={month!r} is not in the migration table",
                           {"to_months": months})
        table = table[table["to_month"].astype(str) == month]
    return jsonify({**_about(snap), "migration": records(table)})


@bp.get("/segments")
def segments():
    _check_query(())
    snap = _store().snapshot()
    summary = snap.table("segment_summary")
    return jsonify({
        **_about(snap),
        "customers": jsonable(int(summary["customers"].sum())) if "customers" in summary else None,
        "segments": records(summary),
    })
