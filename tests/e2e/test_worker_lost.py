"""A worker process killed mid-query never leaves an execution `running` forever: the message
is delivered again (acks_late + reject_on_worker_lost) and, past the attempt cap, failed."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.e2e.helpers import create_query, create_secret, execute, poll, wait_for_state, wait_until
from tests.support.targets.postgres import pg_config

pytestmark = pytest.mark.timeout(180)


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(p) for p in text]
    return out


def _kill_pool_children(worker_process) -> None:
    for child in _children(worker_process.proc.pid):
        os.kill(child, signal.SIGKILL)


def _attempts(redis_client, key: str) -> int:
    raw = redis_client.hget(f"analytics:exec:{key}", "attempts")
    return int(raw or 0)


@pytest.fixture()
def pg(http, ext_pg):
    create_secret(http, "pg", "analytics-postgres", pg_config(ext_pg))
    return http


def test_killed_worker_is_retried_then_succeeds(pg, worker_process, redis_client):
    q = create_query(pg, "Few seconds", "SELECT count(*) AS n FROM generate_series(1, 20000000)", secret_key="pg")
    key = execute(pg, q["data"]["slug"], wait=0).json()["execution_key"]
    wait_for_state(pg, key, {"running"})
    _kill_pool_children(worker_process)
    wait_until(lambda: _attempts(redis_client, key) >= 2, "execution was not delivered again", timeout=60)
    final = poll(pg, key, wait=60).json()
    assert final["state"] == "succeeded", final
    assert final["data"] == [{"n": 20000000}]


def test_worker_lost_too_often_is_failed(pg, worker_process, redis_client):
    q = create_query(pg, "Long", "SELECT count(*) AS n FROM generate_series(1, 100000000000)", secret_key="pg",
                     timeout_seconds=25)
    key = execute(pg, q["data"]["slug"], wait=0).json()["execution_key"]
    for attempt in (1, 2):
        wait_until(lambda a=attempt: _attempts(redis_client, key) >= a, f"attempt {attempt} never started", timeout=60)
        wait_for_state(pg, key, {"running"})
        _kill_pool_children(worker_process)
    final = wait_for_state(pg, key, {"failed", "succeeded", "cancelled"}, timeout=90)
    assert final["state"] == "failed" and final["code"] == "InternalError", final
    assert "stopped unexpectedly" in final["message"]
