"""The worker process: Celery app, job tasks and the beat schedule (see ``worker.app``)."""
