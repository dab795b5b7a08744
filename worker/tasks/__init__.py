"""Celery tasks, registered on the app by ``worker.app.create_celery``."""
