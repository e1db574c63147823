"""What a worker process holds: settings, database sessions, the store, the key box and the
connector cache. Built lazily in each (forked) process, never at import time."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.connectors.registry import ConnectorCache
from shared.crypto import SecretBox
from shared.db import make_engine, make_session_factory
from shared.execution_store import ExecutionStore
from worker.cancellation import CancelListener


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ExecutionStore
    box: SecretBox
    connectors: ConnectorCache
    cancels: CancelListener


_runtime: Runtime | None = None
_lock = threading.Lock()


def runtime(settings: Settings | None = None) -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            settings = settings or Settings.from_env()
            engine = make_engine(settings.database_url, pool_size=2, max_overflow=4)
            client = redis.Redis.from_url(settings.redis_url, socket_timeout=30, health_check_interval=30)
            _runtime = Runtime(
                settings=settings,
                engine=engine,
                sessions=make_session_factory(engine),
                store=ExecutionStore(client, result_ttl=settings.result_ttl),
                box=SecretBox(settings.secret_keys),
                connectors=ConnectorCache(),
                cancels=CancelListener(client),
            )
        return _runtime
