"""gunicorn settings, read from the repo root (`make serve-api` and any `gunicorn 'api:create_app()'` started
there): each worker reads the current snapshot in the background as soon as it has started (after the fork, as
it must), so its first request does not wait for it (about 2 s at a million customers)."""

import threading

# gunicorn's largest request line (its default is 4,094 bytes): a /customers query with many filters, or a long
# id in /customers/<id>, fits. Over it, or over the 8,190-byte header limit, gunicorn answers with its own
# HTML 400/431 before the app sees the request (README, "Scoring API").
limit_request_line = 8190


def post_worker_init(worker):
    store = worker.wsgi.extensions.get("clv_snapshot")
    if store is not None:
        threading.Thread(target=store.warm, name="clv-snapshot-warm", daemon=True).start()
