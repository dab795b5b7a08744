"""Entry shim for gunicorn: ``gunicorn api.wsgi:app``."""

from api import create_app
from shared.config import Settings

app = create_app(Settings.from_env())
