"""Prometheus metrics, collected on scrape from the durable history and the broker queues,
so that every API process reports the same numbers without shared in-process state."""
from __future__ import annotations

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import text

from shared.execution_store import ExecutionStore
from shared.jobs import Queue

_BUCKETS_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000)


class _Collector:
    def __init__(self, svc):
        self.svc = svc

    def collect(self):
        by_state = GaugeMetricFamily(
            "analytics_executions", "Executions in the history, by driver and state", labels=["driver", "state"]
        )
        durations = HistogramMetricFamily(
            "analytics_execution_duration_ms", "Run time of finished executions", labels=["driver"]
        )
        by_label: dict[tuple[str, str], int] = {}
        with self.svc.engine.connect() as conn:
            for driver, state, n in conn.execute(
                text(
                    "SELECT driver, state, count(*) FROM platform.executions "
                    "WHERE state NOT IN ('queued', 'running') GROUP BY driver, state"
                )
            ):
                by_label[(driver, state)] = n
            # The history row is written when an execution ends, so an unfinished one reads
            # `queued` there while it runs; Redis holds its live state.
            pending = conn.execute(
                text("SELECT key, driver, state FROM platform.executions WHERE state IN ('queued', 'running')")
            ).all()
            for (_, driver, state), live in zip(pending, self._live_states([row[0] for row in pending]), strict=True):
                label = (driver, live.value if live else state)
                by_label[label] = by_label.get(label, 0) + 1
            for (driver, state), n in sorted(by_label.items()):
                by_state.add_metric([driver, state], n)
            bucket_sql = ", ".join(
                f"count(*) FILTER (WHERE duration_ms <= {b})" for b in _BUCKETS_MS
            )
            for row in conn.execute(
                text(
                    f"SELECT driver, {bucket_sql}, count(*), coalesce(sum(duration_ms), 0) "
                    "FROM platform.executions WHERE duration_ms IS NOT NULL GROUP BY driver"
                )
            ):
                driver, counts, total, total_sum = row[0], row[1 : 1 + len(_BUCKETS_MS)], row[-2], row[-1]
                buckets = [(str(b), c) for b, c in zip(_BUCKETS_MS, counts, strict=True)] + [("+Inf", total)]
                durations.add_metric([driver], buckets, float(total_sum))
        yield by_state
        yield durations

        depth = GaugeMetricFamily("analytics_queue_depth", "Messages waiting in each queue", labels=["queue"])
        try:
            with self.svc.enqueuer.celery.connection_for_read() as conn:
                channel = conn.default_channel
                for queue in Queue:
                    try:
                        _, count, _ = channel.queue_declare(queue=queue.value, passive=True)
                    except Exception:
                        count = 0
                    depth.add_metric([queue.value], count)
        except Exception:
            pass
        yield depth


    def _live_states(self, keys: list[str]) -> list:
        if not keys:
            return []
        try:
            return ExecutionStore(self.svc.redis, result_ttl=self.svc.settings.result_ttl).states(keys)
        except redis.RedisError:
            return [None] * len(keys)  # Redis down: the history's states are the best there is


def render_metrics(svc) -> bytes:
    registry = CollectorRegistry()
    registry.register(_Collector(svc))
    return generate_latest(registry)
