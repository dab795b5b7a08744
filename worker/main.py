"""Entry shim: ``celery --app worker.main worker`` / ``beat`` read the environment here."""

import os

# gunicorn's workers add up the metric files in this directory; a Celery process writing
# its own there (from a shared environment) would be counted as web traffic, and never
# marked dead. Set before anything imports prometheus-client, which reads it on import.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from shared.config import Settings
from worker.app import create_celery

celery = create_celery(Settings.from_env())
