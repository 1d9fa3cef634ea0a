"""JSON errors: {"error": code, "message": text[, "details": {...}]} with the right HTTP status, and the
optional bearer token in front of every endpoint but /health."""

import hmac

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from clv_platform.lib.snapshot import SnapshotNotFoundError, SnapshotUnreadableError


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(status: int, code: str, message: str, details: dict | None = None):
    body = {"error": code, "message": message}
    if details:
        body["details"] = details
    return jsonify(body), status


OPEN_ENDPOINTS = {"clv.health"}  # a load balancer's probe needs no token


def require_token(app: Flask, token: str) -> None:
    """401 unless the request carries ``Authorization: Bearer <token>`` (the scheme in any case, as HTTP has it;
    the token compared in constant time). The server's token is taken without surrounding whitespace (a trailing
    newline from a secrets file could never match), and a header is compared as the bytes the client sent
    (werkzeug decodes headers as latin-1, so a UTF-8 client's non-ASCII token matches)."""
    expected = token.strip().encode()

    @app.before_request
    def _check_token():
        # /health needs none; a path or method no endpoint takes gets its 404/405 (nothing to protect there)
        if request.endpoint in OPEN_ENDPOINTS or request.routing_exception is not None:
            return None
        given = request.headers.get("Authorization", "")
        scheme, _, credentials = given.strip().partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode("latin-1", "replace"),
                                                                expected)
        if not ok:
            why = "missing" if not given else "wrong"
            body, status = error_response(401, "unauthorized", f"{why} token: send the header "
                                          "'Authorization: Bearer <token>' (the server's CLV_API_TOKEN)")
            body.headers["WWW-Authenticate"] = 'Bearer realm="clv"'
            return body, status
        return None


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(SnapshotNotFoundError)
    def _no_snapshot(exc: SnapshotNotFoundError):
        return error_response(503, "no_snapshot", str(exc))

    @app.errorhandler(SnapshotUnreadableError)
    def _unreadable_snapshot(exc: SnapshotUnreadableError):
        return error_response(503, "snapshot_unreadable", f"{exc}: {exc.REMEDY}")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        limit = app.config["BODY_LIMIT"]
        return error_response(413, "body_too_large", f"the request body is over {limit:,} bytes; send fewer ids "
                              f"per request (at most {app.config['MAX_IDS']:,}, and at most {limit:,} bytes of JSON)",
                              {"limit_bytes": limit})

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        body, status = error_response(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"),
                                      exc.description)
        for name, value in exc.get_headers():  # e.g. a 405's Allow
            if name.lower() != "content-type":
                body.headers[name] = value
        return body, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return error_response(500, "internal_error", "unexpected server error (see the server log)")
