"""gunicorn settings for the webhook app.

``gunicorn -c deploy/gunicorn.conf.py 'webhooks:create_app()'``

With ``PROMETHEUS_MULTIPROC_DIR`` set, each worker writes its metrics to files there and
``/metrics`` adds them up (bridge/metrics.py); the folder is emptied when gunicorn starts and
a dead worker's live gauges are dropped, as prometheus-client's multiprocess mode requires.

The access log (``BRIDGE_ACCESS_LOG``: a file, ``-`` for stdout, the default, or empty for
none) and the error log go through ``bridge.weblog.RedactingLogger``, which masks hook secrets
(amoCRM's is in the URL), 1C's session ids, phones and e-mail addresses. A reverse proxy in
front keeps its own access log of the same URLs: mask it there too (docs/operations.md).
"""

import os
import shutil
from pathlib import Path

bind = os.environ.get("BRIDGE_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("BRIDGE_WEB_WORKERS", "2"))
accesslog = os.environ.get("BRIDGE_ACCESS_LOG", "-") or None
logger_class = "bridge.weblog.RedactingLogger"


def on_starting(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """Start with an empty metrics folder: files of an earlier run would be counted again."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """Tell prometheus-client that a worker is gone."""
    from bridge.metrics import process_exited

    process_exited(worker.pid)
