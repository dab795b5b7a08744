"""gunicorn settings, from the environment (README, Configuration)."""

import logging
import os
from typing import Any

from shared import metrics_dir
from shared.config import Settings
from shared.logs import logging_config

# Metrics of every worker process, added up by GET /metrics (shared/metrics_dir.py):
# set before gunicorn loads the app, which imports prometheus-client.
METRICS_DIR = metrics_dir.prepare(os.environ)

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads, not one request per process: a `GET /api/jobs/{id}?wait=30` holds its thread
# while it waits, and a sync worker would serve nothing else meanwhile.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or ("gthread" if threads > 1 else "sync")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# A second gunicorn of the same user would delete this one's control socket.
control_socket_disable = True
# gunicorn answers oversized request lines and headers itself, in HTML, before Folio sees
# them: allow the longest that Folio's own links and tokens can make.
limit_request_line = 8190
limit_request_field_size = 16380
accesslog = "-"
errorlog = "-"
# gunicorn's lines, its access lines and the app's: one JSON object per line on stdout
# (shared/logs.py). The access fields come from gunicorn's atoms; this is the message.
logconfig_dict = logging_config(Settings.from_env().log_level, process="web")
access_log_format = "%(m)s %(U)s %(s)s"
logging.captureWarnings(True)  # a warning is one record, not lines of plain text


def on_starting(_server: object) -> None:
    metrics_dir.empty(METRICS_DIR)


def child_exit(_server: object, worker: Any) -> None:
    metrics_dir.worker_exited(METRICS_DIR, worker.pid)


def on_exit(_server: object) -> None:
    metrics_dir.remove_owned(os.environ)
