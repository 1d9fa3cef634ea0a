"""gunicorn settings, read from the repo root (`make serve-api` and any `gunicorn 'api:create_app()'` started
there): each worker reads the current snapshot in the background as soon as it has started (after the fork, as
it must), and each newly published one as it appears (`snapshot.follow`, every 5 s), so no request waits for a
snapshot to be read (about 2 s at a million customers). The workers log each such read to the error log."""

import logging
import threading

# gunicorn's largest request line (its default is 4,094 bytes): a /customers query with many filters, or a long
# id in /customers/<id>, fits. Over it, or over the 8,190-byte header limit, gunicorn answers with its own
# HTML 400/431 before the app sees the request (README, "Scoring API").
limit_request_line = 8190


def post_worker_init(worker):
    store = worker.wsgi.extensions.get("clv_snapshot")
    if store is not None:
        ours = logging.getLogger("clv_platform")
        if not ours.handlers and hasattr(worker, "log"):   # our INFO lines go where gunicorn's own go
            ours.handlers = list(worker.log.error_log.handlers)
            ours.setLevel(logging.INFO)
            ours.propagate = False
        threading.Thread(target=store.follow, name="clv-snapshot-follow", daemon=True).start()
