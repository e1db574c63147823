"""One execution in the worker: load, resolve secrets (decrypted only here), render, validate,
run with a cancel watcher, redact, store, signal."""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select, update

from shared import errors
from shared.connectors.base import Connector
from shared.dialects import DIALECT_OF_DRIVER, Driver
from shared.execution_store import State
from shared.models import AnalyticsQuery, Execution, Secret, Tenant, User, utcnow
from shared.results import Redactor, dumps, result_payload
from shared.templating import SecretNamespace, render
from shared.validation import validate_query
from shared.validation.params import parse_declarations
from worker.runtime import Runtime

logger = logging.getLogger(__name__)

# A message is delivered again when its worker dies; after this many starts it is failed.
MAX_ATTEMPTS = 2


def run_execution(rt: Runtime, key: str) -> None:
    record = rt.store.get(key)
    if record is None:
        logger.warning("execution %s: unknown or expired, skipped", key)
        return
    state, attempts = rt.store.start(key)
    if state is not State.RUNNING:
        logger.info("execution %s: not started, state is %s", key, state)
        return
    tenant_id = record["tenant_id"]
    if attempts > MAX_ATTEMPTS:
        logger.error("execution %s: worker lost %d times, giving up", key, attempts - 1)
        _finish_failed(rt, key, record, errors.WorkerLostError())
        return
    # The history row is written once, when the execution ends (Redis holds the live state).
    history = {"attempts": attempts, "started_at": utcnow()}
    started = time.monotonic()
    try:
        if record.get("kind") == "test":
            _run_test(rt, record)
            rt.store.finish(key, tenant_id, State.SUCCEEDED, result_json=dumps({"ok": True}))
            return
        payload = _run_query(rt, key, record)
        payload["duration_ms"] = int((time.monotonic() - started) * 1000)
        outcome = rt.store.finish(key, tenant_id, State.SUCCEEDED, result_json=dumps(payload))
        if outcome.applied:
            _update_row(
                rt,
                key,
                **history,
                state=State.SUCCEEDED.value,
                row_count=payload["total"],
                truncated=payload["truncated"],
                finished_at=utcnow(),
                duration_ms=payload["duration_ms"],
            )
        logger.info("execution %s: %s, %d rows", key, outcome.state, payload["total"])
    except errors.AnalyticsError as exc:
        _finish_failed(rt, key, record, exc, started, history)
    except SoftTimeLimitExceeded:
        _finish_failed(rt, key, record, errors.QueryTimeoutError(), started, history)
    except Exception:
        logger.exception("execution %s: unexpected error", key)
        _finish_failed(rt, key, record, errors.InternalError(), started, history)


def _finish_failed(
    rt: Runtime, key: str, record: dict, exc: errors.AnalyticsError, started: float | None = None,
    history: dict[str, Any] | None = None,
) -> None:
    """Record a failure; ``exc`` is already redacted where it could hold a secret."""
    message = exc.message
    error: dict[str, Any] = {"code": exc.code, "message": message}
    if exc.details:
        error["details"] = exc.details
    outcome = rt.store.finish(key, record["tenant_id"], State.FAILED, error=error)
    logger.info("execution %s: failed with %s (%s)", key, exc.code, "recorded" if outcome.applied else outcome.state)
    if outcome.applied and record.get("kind") != "test":
        duration = int((time.monotonic() - started) * 1000) if started else None
        _update_row(
            rt, key, **(history or {}), state=State.FAILED.value, error_code=exc.code,
            error_message=message[:2000], finished_at=utcnow(), duration_ms=duration,
        )


def _update_row(rt: Runtime, key: str, **values: Any) -> None:
    try:
        with rt.sessions() as session:
            # Never overwrite a cancel the API recorded.
            stmt = update(Execution).where(Execution.key == key, Execution.state != State.CANCELLED.value)
            session.execute(stmt.values(**values))
            session.commit()
    except Exception:
        # The history is secondary to the live state in Redis; never fail an execution over it.
        logger.exception("execution %s: could not update the history row", key)


class LazySecrets(Mapping[str, Any]):
    """An app's secrets, decrypted only when a template reads one."""

    def __init__(self, rt: Runtime, rows: dict[str, str]):
        self._rt = rt
        self._rows = rows
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._cache:
            self._cache[key] = self._rt.box.decrypt_json(self._rows[key])
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def decrypted_strings(self) -> list[str]:
        return [s for value in self._cache.values() for s in _strings(value)]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _connector_for(rt: Runtime, driver: Driver, tenant: Tenant, secret: Secret | None) -> tuple[Connector, list[str]]:
    """The (cached) connector, and the secret strings of its configuration for redaction."""
    if driver is Driver.INTERNAL:
        from shared.connectors.internal import internal_config

        config = internal_config(rt.settings.database_url, tenant, rt.box)
        return rt.connectors.get(driver, f"tenant:{tenant.id}", config), [config["dsn"]["password"]]
    assert secret is not None
    config = rt.box.decrypt_json(secret.value_encrypted)
    fingerprint = hashlib.sha256(secret.value_encrypted.encode()).hexdigest()
    return rt.connectors.get(driver, fingerprint, config), list(_strings(config))


def _load_secret(session, app_id: int, secret_key: str | None, driver: Driver) -> Secret:
    secret = session.scalar(select(Secret).where(Secret.app_id == app_id, Secret.key == secret_key))
    if secret is None:
        raise errors.SecretResolutionError("Secret not found")
    if not secret.type.driver:
        raise errors.SecretResolutionError("Unsupported analytics datasource")
    if secret.type.driver != driver.value:
        raise errors.SecretResolutionError("Driver not supported")
    return secret


def _run_test(rt: Runtime, record: dict) -> None:
    driver = Driver(record["driver"])
    with rt.sessions() as session:
        secret = _load_secret(session, record["app_id"], record["secret_key"], driver)
        config = rt.box.decrypt_json(secret.value_encrypted)
    connector = rt.connectors.get(driver, "test:" + hashlib.sha256(secret.value_encrypted.encode()).hexdigest(), config)
    redactor = Redactor(list(_strings(config)))
    try:
        connector.test()
    except errors.AnalyticsError as exc:
        exc.message = redactor.message(exc.message)
        exc.details = redactor.messages(exc.details)
        raise


def _run_query(rt: Runtime, key: str, record: dict) -> dict[str, Any]:
    driver = Driver(record["driver"])
    with rt.sessions() as session:
        query = session.get(AnalyticsQuery, record["query_id"])
        if query is None:
            raise errors.NotFoundError("Query not found")
        tenant = session.get(Tenant, record["tenant_id"])
        secret = None
        namespace = None
        secrets_map = None
        if driver is not Driver.INTERNAL:
            secret = _load_secret(session, record["app_id"], query.secret_key, driver)
            found = session.execute(select(Secret.key, Secret.value_encrypted).where(Secret.app_id == record["app_id"]))
            rows = {key: token for key, token in found}
            secrets_map = LazySecrets(rt, rows)
            user = session.get(User, record["user_id"]) if record.get("user_id") else None
            namespace = SecretNamespace(secrets_map, user.profile() if user else None)
        session.expunge_all()

    dialect = DIALECT_OF_DRIVER[driver]
    connector, config_strings = _connector_for(rt, driver, tenant, secret)
    # render() refuses templates that misuse secrets: transformed in the template, or placed
    # where the database could transform, probe or re-read them (see shared.templating).
    rendered = render(
        query.query_text,
        dialect=dialect,
        params=record.get("params") or {},
        declarations=parse_declarations(query.parameters or []),
        secrets=namespace,
        cache_key=(query.id, query.updated_at),
    )
    secret_strings = list(rendered.secret_values) + config_strings
    if secrets_map is not None:
        secret_strings += secrets_map.decrypted_strings()
    redactor = Redactor(secret_strings)
    try:
        validate_query(rendered.text, dialect, tenant_schema=tenant.schema_name)
        with rt.cancels.watching(key, connector):
            if rt.store.state(key) is not State.RUNNING:
                raise errors.QueryCancelledError()  # cancelled while we prepared: don't start
            result = connector.execute(
                rendered.text, max_rows=record["max_rows"], timeout=record["timeout"], execution_key=key
            )
    except errors.AnalyticsError as exc:
        # Database messages can quote the query, and the query can hold secrets -- escaped as
        # literals, or cut short: ``message`` also removes escaped forms and fragments.
        exc.message = redactor.message(exc.message)
        exc.details = redactor.messages(exc.details)
        raise
    return result_payload(result, redactor, duration_ms=0)
