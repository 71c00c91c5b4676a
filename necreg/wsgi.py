"""WSGI entry point for gunicorn: ``gunicorn necreg.wsgi:app``."""

from . import create_app

app = create_app()
