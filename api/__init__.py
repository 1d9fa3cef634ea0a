"""Flask scoring API over the serving snapshot (never the warehouse).

    gunicorn --workers 2 --bind 127.0.0.1:8000 'api:create_app()'

``create_app()`` opens nothing: each worker builds its own SnapshotReader on its first request (after
gunicorn's fork), and every request resolves the ``current`` pointer once, so a newly published snapshot is
served from the next request on, with no restart.
"""

import os
from pathlib import Path

from flask import Flask
from werkzeug.routing import PathConverter

from api.encoding import OrjsonProvider
from api.errors import register_error_handlers, require_token
from api.routes import bp
from api.store import SnapshotStore

DEFAULT_MAX_IDS = 10_000


class CustomerIdConverter(PathConverter):
    """Any characters, '/' included, a leading one too (werkzeug's `path` takes no leading '/')."""

    regex = ".+?"
    part_isolating = False      # (matches across '/': werkzeug would infer True from a regex without '/')


# Largest request body (413 above it): 10,000 ids of 200 ASCII characters and their JSON punctuation fit twice
# over; ids of non-ASCII characters take 2-4 bytes each (6-12 as \u escapes), so fewer of them fit.
MAX_BODY_BYTES = 4 * 1024 * 1024


def create_app(
    snapshot_root: str | Path | None = None, max_ids: int = DEFAULT_MAX_IDS, token: str | None = None
) -> Flask:
    """The API app. ``snapshot_root`` defaults to ``get_settings().snapshot_root`` ($CLV_SNAPSHOT_ROOT, else
    $CLV_DATA_DIR/serving); ``max_ids`` caps the ids of one /predict request. ``token`` (default
    $CLV_API_TOKEN): when set, every endpoint but /health wants ``Authorization: Bearer <token>``."""
    if token is None:
        token = os.environ.get("CLV_API_TOKEN") or None
    if snapshot_root is None:
        from clv_platform.lib.settings import get_settings

        snapshot_root = get_settings().snapshot_root
    app = Flask(__name__)
    # a customer id in a path may hold '/' anywhere, first character included (/customers/%2FZ is customer "/Z",
    # not a redirect to /customers/Z)
    app.url_map.merge_slashes = False
    app.url_map.converters["customer_id"] = CustomerIdConverter
    app.json = OrjsonProvider(app)
    app.json.sort_keys = False
    app.config["MAX_IDS"] = int(max_ids)
    app.config["BODY_LIMIT"] = MAX_BODY_BYTES
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES + 1     # one more: a chunked body of exactly the limit passes
    app.config["SNAPSHOT_ROOT"] = str(snapshot_root)
    app.extensions["clv_snapshot"] = SnapshotStore(snapshot_root)
    if token:
        require_token(app, token)
    app.register_blueprint(bp)
    register_error_handlers(app)
    return app


__all__ = ["create_app", "DEFAULT_MAX_IDS", "MAX_BODY_BYTES"]
