"""What a request needs from the process: settings, database sessions, Redis, the enqueuer.

Built once by the app factory and kept in ``app.extensions["analytics"]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.crypto import SecretBox
from shared.jobs import Enqueuer


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    box: SecretBox
    enqueuer: Enqueuer


def services() -> Services:
    return current_app.extensions["analytics"]
