"""Entry shim: ``celery --app worker.main worker`` / ``beat`` read the environment here."""

from shared.config import Settings
from worker.app import create_celery

celery = create_celery(Settings.from_env())
