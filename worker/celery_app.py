"""The Celery application the ``analytics worker`` command runs (``celery -A worker.celery_app``)."""
from __future__ import annotations

from shared.config import Settings
from worker.app import create_celery

app = create_celery(Settings.from_env())
