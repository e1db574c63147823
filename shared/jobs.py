"""Task and queue names, and the enqueuer the API uses (by task name: the API never imports
the worker). The message carries the execution key only: no SQL, no secrets."""
from __future__ import annotations

from enum import StrEnum

from celery import Celery

from shared.dialects import Driver

EXECUTE_TASK = "analytics.execute_query"
PING_TASK = "analytics.ping"


class Queue(StrEnum):
    INTERNAL = "analytics.internal"
    POSTGRES = "analytics.postgres"
    MYSQL = "analytics.mysql"
    REDSHIFT = "analytics.redshift"
    ELASTICSEARCH = "analytics.elasticsearch"
    CLICKHOUSE = "analytics.clickhouse"


def queue_for(driver: Driver | str) -> Queue:
    return Queue(f"analytics.{Driver(driver).value}")


def broker_transport_options(*, visibility_timeout: int) -> dict:
    # Redis redelivers an unacknowledged message after visibility_timeout; it must be longer
    # than the hard time limit, or a long query would run twice.
    return {"visibility_timeout": visibility_timeout}


def time_limits(query_timeout: int) -> tuple[int, int]:
    """Celery soft and hard limits nested around the query's own timeout: the database stops
    the query first; the soft limit lets the task cancel and record it; the hard limit kills."""
    return query_timeout + 30, query_timeout + 60


class Enqueuer:
    """Sends tasks by name; the Celery client is built on first use (nothing at import time)."""

    def __init__(self, broker_url: str):
        self.broker_url = broker_url
        self._celery: Celery | None = None

    @property
    def celery(self) -> Celery:
        if self._celery is None:
            self._celery = Celery("analytics-api", broker=self.broker_url)
            self._celery.conf.broker_connection_retry_on_startup = True
        return self._celery

    def execute(self, execution_key: str, driver: Driver | str, *, timeout: int) -> None:
        soft, hard = time_limits(timeout)
        self.celery.send_task(
            EXECUTE_TASK,
            args=[execution_key],
            queue=queue_for(driver).value,
            soft_time_limit=soft,
            time_limit=hard,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        )

    def ping(self, timeout: float = 2.0) -> None:
        with self.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
