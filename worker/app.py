"""Celery app factory: Redis broker, one queue per driver, settings for long tasks."""
from __future__ import annotations

from celery import Celery
from kombu import Exchange
from kombu import Queue as KombuQueue

from shared.config import Settings
from shared.jobs import Queue, broker_transport_options, time_limits


def create_celery(settings: Settings) -> Celery:
    app = Celery("analytics-worker", broker=settings.broker_url, include=["worker.tasks"])
    soft, hard = time_limits(settings.query_timeout)
    app.conf.update(
        # Each queue has its own direct exchange, as Celery declares it for a send_task(queue=...)
        # from the API, so both sides agree on the routing.
        task_queues=[KombuQueue(q.value, Exchange(q.value, type="direct"), routing_key=q.value) for q in Queue],
        task_default_queue=Queue.POSTGRES.value,
        # Long tasks: take one message at a time and acknowledge it only when done, so a
        # worker that dies mid-query leaves the message to be redelivered.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=soft,
        task_time_limit=hard,
        broker_transport_options=broker_transport_options(visibility_timeout=max(3600, hard * 2)),
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_serializer="json",
        accept_content=["json"],
    )
    app.conf.analytics_settings = settings
    return app
