"""Celery tasks. They take an execution key and re-load everything else (idempotent)."""
from __future__ import annotations

from celery import shared_task

from shared.jobs import EXECUTE_TASK
from worker.pipeline import run_execution
from worker.runtime import runtime


@shared_task(name=EXECUTE_TASK)
def execute_query(execution_key: str) -> None:
    run_execution(runtime(), execution_key)
