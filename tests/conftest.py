"""Shared fixtures: a platform database and Redis database per test run, the Flask app,
tenants/apps/users, and (in tests/e2e) real API and worker processes."""
from __future__ import annotations

import os

import pytest
import redis as redis_lib
from cryptography.fernet import Fernet

from shared.config import Settings
from tests.support.databases import create_database, drop_database

pytest_plugins = [
    "tests.support.fixtures",
    "tests.support.targets.postgres",
    "tests.support.targets.mysql",
    "tests.support.targets.redshift",
    "tests.support.targets.clickhouse",
    "tests.support.targets.elasticsearch",
]

REDIS_BASE = "redis://127.0.0.1:6379"
LOCK_KEY = "analytics-test-run"


@pytest.fixture(scope="session")
def redis_url():
    """A Redis database of its own for this test run (Celery queues and execution keys have
    fixed names, so two runs sharing a database would consume each other's tasks)."""
    if os.environ.get("ANALYTICS_TEST_REDIS_URL"):
        yield os.environ["ANALYTICS_TEST_REDIS_URL"]
        return
    for db in range(1, 16):
        client = redis_lib.Redis.from_url(f"{REDIS_BASE}/{db}")
        if client.set(LOCK_KEY, os.getpid(), nx=True, ex=3 * 3600):
            for key in client.scan_iter(count=1000):
                if key != LOCK_KEY.encode():
                    client.delete(key)
            yield f"{REDIS_BASE}/{db}"
            client.flushdb()
            client.close()
            return
        client.close()
    pytest.fail("no free Redis database (1-15) for this test run")


@pytest.fixture(scope="session")
def platform_db():
    db = create_database("analytics_t", createrole=True)
    from shared.migrate import upgrade

    upgrade(db.sqlalchemy_url)
    yield db
    from shared.services.tenants import reader_role_name

    suffix = reader_role_name(db.name, "x").rsplit("_", 1)[1]
    drop_database(db, extra_roles_like=f"%\\_{suffix}")


@pytest.fixture(scope="session")
def secret_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def env(platform_db, secret_key, redis_url) -> dict[str, str]:
    """The environment of the service under test (also given to API and worker processes)."""
    return {
        "ANALYTICS_ENV": "test",
        "ANALYTICS_DATABASE_URL": platform_db.sqlalchemy_url,
        "ANALYTICS_REDIS_URL": redis_url,
        "ANALYTICS_SECRET_KEY": secret_key,
        "ANALYTICS_QUERY_TIMEOUT": "30",
        "ANALYTICS_SYNC_WAIT": "10",
        "ANALYTICS_MAX_WAIT": "20",
        "ANALYTICS_LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def settings(env) -> Settings:
    return Settings.from_env(env)


@pytest.fixture(scope="session")
def redis_client(settings):
    client = redis_lib.Redis.from_url(settings.redis_url)
    yield client
    client.close()
