"""The worker process (Celery). Its app, tasks and beat schedule come with the job system.

Until then this package holds nothing; the import contract in ``pyproject.toml``
already keeps it independent of ``api``.
"""
