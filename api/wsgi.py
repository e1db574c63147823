"""WSGI entry point for gunicorn (``analytics serve``)."""
from api.app import create_app

app = create_app()
