"""Stopping cancelled queries at the database.

One listener thread per worker process subscribes to the cancel channel. A running execution
registers its connector; when its key is published, the listener asks the connector to stop
the query from another connection. One thread and one Redis connection per process, however
many executions it runs.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from shared.connectors.base import Connector
from shared.execution_store import CANCEL_CHANNEL

logger = logging.getLogger(__name__)

# How long to keep trying: a query may still be connecting when the cancel arrives, and a
# cancel request that lands between two statements of an execution (say, after DECLARE and
# before FETCH) stops nothing, so it is sent again until the execution ends.
CANCEL_RETRY_SECONDS = 30.0
RESEND_SECONDS = 1.0


class CancelListener:
    def __init__(self, client: redis.Redis):
        self._client = client
        self._running: dict[str, tuple[Connector, threading.Event]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._subscribed = threading.Event()

    @contextmanager
    def watching(self, key: str, connector: Connector) -> Iterator[None]:
        """While the block runs, a cancel of ``key`` stops ``connector``'s query. The caller
        checks the execution's state inside the block: a cancel that came earlier is seen there,
        a later one reaches the listener."""
        self._ensure_started()
        done = threading.Event()
        with self._lock:
            self._running[key] = (connector, done)
        try:
            yield
        finally:
            done.set()
            with self._lock:
                self._running.pop(key, None)

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._subscribed.clear()
                self._thread = threading.Thread(target=self._listen, name="cancel-listener", daemon=True)
                self._thread.start()
        # Don't run a query before the subscription is live, or its cancel could be missed.
        self._subscribed.wait(5)

    def _listen(self) -> None:
        while True:
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CANCEL_CHANNEL)
                self._subscribed.set()
                while True:
                    # get_message waits with select(), so an idle channel is not a socket timeout.
                    message = pubsub.get_message(timeout=5.0)
                    if message and message.get("type") == "message":
                        self._on_cancel(message["data"].decode())
            except Exception:
                logger.exception("cancel listener lost Redis; reconnecting")
                self._subscribed.clear()
                time.sleep(1)

    def _on_cancel(self, key: str) -> None:
        with self._lock:
            entry = self._running.get(key)
        if entry is None:
            return  # not running in this process
        connector, done = entry
        logger.info("execution %s: cancel requested", key)
        # A thread per cancel, so that a slow cancel never delays the next message.
        threading.Thread(target=_stop, args=(key, connector, done), name=f"cancel-{key[:12]}", daemon=True).start()


def _stop(key: str, connector: Connector, done: threading.Event) -> None:
    deadline = time.monotonic() + CANCEL_RETRY_SECONDS
    sent = False
    while not done.is_set() and time.monotonic() < deadline:
        try:
            if connector.cancel(key):
                if not sent:
                    logger.info("execution %s: cancel sent to the database", key)
                sent = True
        except Exception:
            logger.exception("execution %s: cancel failed", key)
        done.wait(RESEND_SECONDS if sent else 0.1)
