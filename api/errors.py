"""JSON errors: {"error": code, "message": text[, "details": {...}]} with the right HTTP status."""

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from clv_platform.lib.snapshot import SnapshotNotFoundError


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(status: int, code: str, message: str, details: dict | None = None):
    body = {"error": code, "message": message}
    if details:
        body["details"] = details
    return jsonify(body), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(SnapshotNotFoundError)
    def _no_snapshot(exc: SnapshotNotFoundError):
        return error_response(503, "no_snapshot", str(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return error_response(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), exc.description)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return error_response(500, "internal_error", "unexpected server error (see the server log)")
