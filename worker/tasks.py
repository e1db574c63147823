"""Celery tasks. They take an execution key and re-load everything else (idempotent)."""
from __future__ import annotations

from celery import shared_task

from shared.jobs import EXECUTE_TASK, PING_TASK
from worker.pipeline import run_execution
from worker.runtime import runtime


@shared_task(name=EXECUTE_TASK)
def execute_query(execution_key: str) -> None:
    run_execution(runtime(), execution_key)


@shared_task(name=PING_TASK)
def ping(reply_key: str) -> None:
    """A no-op round trip for benchmarks and health checks: answer on a Redis list."""
    client = runtime().store.redis
    client.rpush(reply_key, "pong")
    client.expire(reply_key, 60)
