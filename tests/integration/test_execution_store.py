"""The Redis execution store on a real Redis: transitions are atomic and final, waiters wake
without polling, a lost worker's execution is reaped, tenant slots are counted."""
from __future__ import annotations

import threading
import time

import pytest

from shared.execution_store import ExecutionStore, State
from shared.services.executions import REAPER_GRACE_SECONDS, reap_if_lost


@pytest.fixture()
def store(redis_client):
    return ExecutionStore(redis_client, result_ttl=60)


def _new(store, key, **fields):
    store.create(key, {"kind": "query", "tenant_id": 1, "app_id": 1, "timeout": 5, **fields}, pending_ttl=120)


def test_lifecycle_and_final_states(store):
    _new(store, "exec_a")
    assert store.get("exec_a")["state"] == "queued"
    assert store.start("exec_a") == (State.RUNNING, 1)
    assert store.finish("exec_a", 1, State.SUCCEEDED, result_json='{"data": []}').applied
    # A late cancel or a second result can't change a finished execution.
    late = store.finish("exec_a", 1, State.CANCELLED)
    assert not late.applied and late.state == State.SUCCEEDED
    assert store.result_json("exec_a") == '{"data": []}'
    assert store.start("exec_a") == (State.SUCCEEDED, 0)


def test_cancel_wins_over_a_late_result(store):
    _new(store, "exec_b")
    store.start("exec_b")
    assert store.finish("exec_b", 1, State.CANCELLED, error={"code": "QueryCancelled"}).applied
    late = store.finish("exec_b", 1, State.SUCCEEDED, result_json='{"data": [1]}')
    assert not late.applied and late.state == State.CANCELLED
    assert store.result_json("exec_b") is None


def test_unknown_key(store):
    assert store.get("exec_missing") is None
    assert store.start("exec_missing") == (None, 0)
    assert store.finish("exec_missing", 1, State.FAILED).state is None


def test_every_waiter_wakes(store):
    _new(store, "exec_c")
    woke = []

    def waiter():
        woke.append(store.wait("exec_c", 10))

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # let the waiters block first
    store.finish("exec_c", 1, State.FAILED, error={"code": "X"})
    for t in threads:
        t.join(10)
    assert woke == [True, True, True]
    assert store.wait("exec_c", 1) is True  # a finished execution answers at once


def test_wait_times_out(store):
    _new(store, "exec_d")
    assert store.wait("exec_d", 0.2) is False
    assert store.wait("exec_d", 0) is False


def test_running_past_its_deadline_is_reaped(store):
    _new(store, "exec_e")
    store.start("exec_e")
    record = store.get("exec_e")
    assert reap_if_lost(store, "exec_e", record)["state"] == "running"  # still within its time
    store.redis.hset("analytics:exec:exec_e", "started_at", time.time() - 5 - REAPER_GRACE_SECONDS - 1)
    reaped = reap_if_lost(store, "exec_e", store.get("exec_e"))
    assert reaped["state"] == "failed" and reaped["error"]["code"] == "InternalError"
    assert "stopped unexpectedly" in reaped["error"]["message"]


def test_tenant_slots(store):
    store.redis.delete("analytics:tenant:77:active")
    assert store.admit(77, "k1", limit=2, hold_seconds=60)
    assert store.admit(77, "k2", limit=2, hold_seconds=60)
    assert not store.admit(77, "k3", limit=2, hold_seconds=60)
    store.release(77, "k1")
    assert store.admit(77, "k3", limit=2, hold_seconds=60)
    # Slots expire on their own even if nothing releases them (a hold of 0 s is already past
    # by the next call).
    assert store.admit(78, "old", limit=1, hold_seconds=0)
    assert store.admit(78, "new", limit=1, hold_seconds=60)
    assert not store.admit(78, "newer", limit=1, hold_seconds=60)
