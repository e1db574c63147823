"""One typed, frozen Settings object built from the environment (CONTRACT section 3).

This is the only module that reads ``os.environ``. Build it once at start-up with
``Settings.from_env()`` and pass it explicitly.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from shared.errors import AnalyticsError


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigError(AnalyticsError):
    code = "ConfigError"
    default_message = "Invalid configuration"


# A fixed key so that a development checkout starts without ceremony; refused outside development.
_DEVELOPMENT_KEY = "ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZCEhISE="  # 32 bytes: "development-key-not-for-prod!!!!"

KEY_HELP = (
    "ANALYTICS_SECRET_KEY is required outside development. Make one with:\n"
    "  python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


@dataclass(frozen=True)
class Settings:
    database_url: str = "postgresql+psycopg2://analytics@127.0.0.1:5432/analytics"
    redis_url: str = "redis://localhost:6379/0"
    broker_url: str = "redis://localhost:6379/0"
    secret_keys: tuple[str, ...] = field(default=(_DEVELOPMENT_KEY,), repr=False)
    result_ttl: int = 3600
    sync_wait: float = 10.0
    max_wait: float = 60.0
    max_rows: int = 10000
    query_timeout: int = 300
    max_body_bytes: int = 1048576
    tenant_concurrency: int = 20
    environment: Environment = Environment.PRODUCTION
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        environment = _enum(env, "ANALYTICS_ENV", Environment, Environment.PRODUCTION)
        redis_url = env.get("ANALYTICS_REDIS_URL") or cls.redis_url
        raw_keys = env.get("ANALYTICS_SECRET_KEY", "")
        keys = tuple(k.strip() for k in raw_keys.split(",") if k.strip())
        if not keys:
            if environment is not Environment.DEVELOPMENT:
                raise ConfigError(KEY_HELP)
            keys = (_DEVELOPMENT_KEY,)
        settings = cls(
            database_url=_database_url(env.get("ANALYTICS_DATABASE_URL") or cls.database_url),
            redis_url=redis_url,
            broker_url=env.get("ANALYTICS_BROKER_URL") or redis_url,
            secret_keys=keys,
            result_ttl=_int(env, "ANALYTICS_RESULT_TTL", cls.result_ttl, minimum=1),
            sync_wait=_float(env, "ANALYTICS_SYNC_WAIT", cls.sync_wait, minimum=0),
            max_wait=_float(env, "ANALYTICS_MAX_WAIT", cls.max_wait, minimum=0),
            max_rows=_int(env, "ANALYTICS_MAX_ROWS", cls.max_rows, minimum=1),
            query_timeout=_int(env, "ANALYTICS_QUERY_TIMEOUT", cls.query_timeout, minimum=1),
            max_body_bytes=_int(env, "ANALYTICS_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1),
            tenant_concurrency=_int(env, "ANALYTICS_TENANT_CONCURRENCY", cls.tenant_concurrency, minimum=1),
            environment=environment,
            log_level=_log_level(env, "ANALYTICS_LOG_LEVEL", cls.log_level),
        )
        # Validate the keys now, so a bad key stops the process at start, not at first use.
        from shared.crypto import SecretBox

        SecretBox(settings.secret_keys)
        return settings


def _database_url(url: str) -> str:
    # libpq and Heroku-style URLs say postgres://, which SQLAlchemy 2 no longer accepts.
    if url.startswith("postgres://"):
        return "postgresql://" + url.removeprefix("postgres://")
    return url


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    if not value >= minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw}")
    return value


def _log_level(env: Mapping[str, str], name: str, default: str) -> str:
    # logging.basicConfig would otherwise fail with a traceback when the app is built.
    level = (env.get(name) or default).strip().upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigError(f"{name} must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {level!r}")
    return level


def _enum(env: Mapping[str, str], name: str, enum: type[StrEnum], default: StrEnum):
    raw = env.get(name)
    if not raw:
        return default
    try:
        return enum(raw.lower())
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise ConfigError(f"{name} must be one of {allowed}, got {raw!r}") from None
