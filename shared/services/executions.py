"""Starting, reading, waiting for and cancelling executions (the API side of CONTRACT 7).

The API writes the durable row and the ``queued`` state, enqueues the key by task name and
waits on the execution's Redis latch; it never runs a query and never decrypts a secret.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.crypto import new_execution_key
from shared.errors import AnalyticsError, ConflictError, NotFoundError, RateLimitedError, ServiceUnavailableError, WorkerLostError
from shared.execution_store import TERMINAL, ExecutionStore, State
from shared.jobs import Enqueuer
from shared.models import AnalyticsQuery, App, Execution, User, utcnow
from shared.results import loads
from shared.validation.params import coerce_params, parse_declarations

logger = logging.getLogger(__name__)

# A running execution whose worker vanished is failed once this long past its time limit.
REAPER_GRACE_SECONDS = 120


@dataclass(frozen=True)
class ExecuteRequest:
    params: dict[str, Any]
    wait: float | None
    max_rows: int | None


def clamp_wait(wait: float | None, settings: Settings) -> float:
    if wait is None:
        wait = settings.sync_wait
    return max(0.0, min(float(wait), settings.max_wait))


def start_execution(
    session: Session,
    store: ExecutionStore,
    enqueuer: Enqueuer,
    settings: Settings,
    *,
    app: App,
    user: User,
    query: AnalyticsQuery,
    request: ExecuteRequest,
) -> str:
    declarations = parse_declarations(query.parameters or [])
    params = coerce_params(request.params or {}, declarations)
    max_rows = settings.max_rows if request.max_rows is None else max(1, min(int(request.max_rows), settings.max_rows))
    timeout = min(query.timeout_seconds or settings.query_timeout, settings.query_timeout)

    key = new_execution_key()
    hold = settings.max_wait + timeout + 600  # the slot frees itself even if no worker ever answers
    if not store.admit(app.tenant_id, key, limit=settings.tenant_concurrency, hold_seconds=hold):
        raise RateLimitedError(
            f"Tenant has {settings.tenant_concurrency} executions in progress; retry when one finishes",
            retry_after=2,
        )
    try:
        execution = Execution(
            key=key,
            tenant_id=app.tenant_id,
            app_id=app.id,
            query_id=query.id,
            user_id=user.id,
            driver=query.driver,
            parameters=params,
            max_rows=max_rows,
            timeout_seconds=timeout,
            state=State.QUEUED.value,
        )
        session.add(execution)
        session.commit()
        store.create(
            key,
            {
                "kind": "query",
                "tenant_id": app.tenant_id,
                "app_id": app.id,
                "query_id": query.id,
                "user_id": user.id,
                "execution_id": execution.id,
                "driver": query.driver,
                "params": params,
                "max_rows": max_rows,
                "timeout": timeout,
            },
            pending_ttl=int(hold + settings.result_ttl),
        )
    except Exception:
        store.release(app.tenant_id, key)
        raise
    try:
        enqueue(store, enqueuer, key, query.driver, app.tenant_id, timeout)
    except ServiceUnavailableError as exc:
        _record_failure(session, key, exc.code)  # else the history (and /metrics) says queued forever
        raise
    return key


def _record_failure(session: Session, key: str, code: str) -> None:
    session.execute(
        update(Execution)
        .where(Execution.key == key, Execution.state.in_([State.QUEUED.value, State.RUNNING.value]))
        .values(state=State.FAILED.value, error_code=code, finished_at=utcnow())
    )
    session.commit()


def enqueue(store: ExecutionStore, enqueuer: Enqueuer, key: str, driver: str, tenant_id: int, timeout: int) -> None:
    try:
        enqueuer.execute(key, driver, timeout=timeout)
    except Exception as exc:  # the broker is down: fail the execution, don't leave it queued
        logger.error("execution %s: could not enqueue: %s", key, exc)
        error = ServiceUnavailableError()
        store.finish(key, tenant_id, State.FAILED, error={"code": error.code, "message": error.message})
        raise error from None


def load(store: ExecutionStore, key: str, app: App) -> dict[str, Any]:
    record = store.get(key) if key.startswith("exec_") and len(key) < 80 else None
    if record is None or record.get("app_id") != app.id or record.get("kind") != "query":
        raise NotFoundError("Execution not found")
    return record


def reap_if_lost(
    store: ExecutionStore, key: str, record: dict[str, Any], session: Session | None = None
) -> dict[str, Any]:
    """A ``running`` execution far past its deadline lost its worker: fail it, so nothing stays
    ``running`` forever even if the broker never redelivers it."""
    started = record.get("started_at")
    if record.get("state") == State.RUNNING and started:
        if time.time() > started + (record.get("timeout") or 0) + REAPER_GRACE_SECONDS:
            outcome = store.finish(
                key,
                record["tenant_id"],
                State.FAILED,
                error={"code": WorkerLostError.code, "message": WorkerLostError.default_message},
            )
            if outcome.applied and session is not None:
                _record_failure(session, key, WorkerLostError.code)
            return store.get(key) or record
    return record


def cancel(session: Session, store: ExecutionStore, key: str, app: App) -> dict[str, Any]:
    record = load(store, key, app)
    outcome = store.finish(
        key, record["tenant_id"], State.CANCELLED, error={"code": "QueryCancelled", "message": "Query was cancelled"}
    )
    if not outcome.applied:
        raise ConflictError(f"Execution already finished ({outcome.state.value if outcome.state else 'expired'})")
    # The worker's watcher stops the query at the database.
    store.request_cancel(key)
    session.execute(
        update(Execution)
        .where(Execution.key == key, Execution.state.in_([State.QUEUED.value, State.RUNNING.value]))
        .values(state=State.CANCELLED.value, error_code="QueryCancelled", finished_at=utcnow())
    )
    session.commit()
    return store.get(key) or record


def body_of(key: str, record: dict[str, Any], store: ExecutionStore, *, poll_url: str) -> tuple[int, dict[str, Any]]:
    """The response body of an execution and the status an execute call answers with."""
    state = State(record["state"])
    if state not in TERMINAL:
        return 202, {
            "status": "pending",
            "message": "Query is still running; poll the execution" if state == State.RUNNING else "Query is queued",
            "execution_key": key,
            "state": state.value,
            "poll_url": poll_url,
        }
    if state == State.SUCCEEDED:
        payload = loads(store.result_json(key) or "{}")
        body = {"status": "success", "message": "Query executed successfully"}
        body.update(payload)
        body.update(execution_key=key, state=state.value)
        return 200, body
    error = record.get("error") or {"code": "InternalError", "message": "An internal error occurred"}
    body = {
        "status": "error",
        "code": error.get("code", "InternalError"),
        "message": error.get("message", ""),
        "execution_key": key,
        "state": state.value,
    }
    if error.get("details"):
        body["details"] = error["details"]
    return 0, body  # the caller maps the code to its HTTP status


# How long the API waits for a worker to test a connection before it gives up.
TEST_WAIT_SECONDS = 30.0


def test_secret(session: Session, store: ExecutionStore, enqueuer: Enqueuer, *, app: App, secret_key: str) -> dict[str, Any]:
    """Have a worker of the secret's driver open a connection and run a trivial read.

    The API cannot do it itself: it never decrypts a secret for a connection.
    """
    from shared.services.queries import resolve_driver
    from shared.services.secrets import get_secret

    get_secret(session, app, secret_key)  # 404 for an unknown key
    driver = resolve_driver(session, app, "external", secret_key)
    key = new_execution_key()
    store.create(
        key,
        {"kind": "test", "tenant_id": app.tenant_id, "app_id": app.id, "secret_key": secret_key, "driver": driver.value,
         "timeout": 20},
        pending_ttl=int(TEST_WAIT_SECONDS * 4),
    )
    enqueue(store, enqueuer, key, driver.value, app.tenant_id, 20)
    store.wait(key, TEST_WAIT_SECONDS)
    record = store.get(key) or {}
    if record.get("state") == State.SUCCEEDED:
        return {"status": "success", "message": "Connection succeeded", "data": {"key": secret_key, "driver": driver.value}}
    if record.get("state") in (State.QUEUED, State.RUNNING, None):
        store.finish(key, app.tenant_id, State.CANCELLED)
        store.request_cancel(key)
        from shared.errors import ConnectorError

        raise ConnectorError("No worker answered the connection test in time")
    error = record.get("error") or {}
    raise _error_from(error)


def _error_from(error: dict[str, Any]) -> AnalyticsError:
    from shared import errors as errs

    for cls in (errs.ConnectorError, errs.QueryExecutionError, errs.QueryTimeoutError, errs.SecretResolutionError,
                errs.ValidationError):
        if cls.code == error.get("code"):
            return cls(error.get("message"))
    return errs.InternalError()
