"""Live execution state and results in Redis, shared by the API and the worker.

Keys (all expire): ``<prefix>:<key>`` a hash with the state and metadata,
``<prefix>:<key>:result`` the finished result (JSON text), ``<prefix>:<key>:done`` a latch list
that waiters BLPOP (and push back, so every waiter wakes). Cancel requests are published on
one channel that each worker process listens to (``worker/cancellation.py``). Every state change is one Lua script, so a late
result can never overwrite ``cancelled`` and a cancel can never overwrite a result.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

PREFIX = "analytics:exec"
TENANT_PREFIX = "analytics:tenant"
CANCEL_CHANNEL = "analytics:cancel"


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})

# KEYS: hash, result, done, active-set; ARGV: state, finished_at, error, result, ttl, member
_FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
if state == 'succeeded' or state == 'failed' or state == 'cancelled' then return state end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finished_at', ARGV[2], 'error', ARGV[3])
if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4], 'EX', tonumber(ARGV[5])) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('DEL', KEYS[3])
redis.call('RPUSH', KEYS[3], '1')
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[5]))
redis.call('ZREM', KEYS[4], ARGV[6])
return 'ok'
"""

# KEYS: hash; ARGV: started_at. Returns {state, attempts}.
_START = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
if state ~= 'queued' and state ~= 'running' then return {state, 0} end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'state', 'running', 'started_at', ARGV[1])
return {'running', attempts}
"""

# KEYS: active-set; ARGV: now, limit, member, deadline. Returns 1 when admitted.
_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4]) - tonumber(ARGV[1])) + 60)
return 1
"""


@dataclass(frozen=True)
class FinishOutcome:
    applied: bool
    state: State | None  # the state the execution is in afterwards (None: unknown key)


class ExecutionStore:
    def __init__(self, client: redis.Redis, *, result_ttl: int):
        self.redis = client
        self.result_ttl = result_ttl
        self._finish = client.register_script(_FINISH)
        self._start = client.register_script(_START)
        self._admit = client.register_script(_ADMIT)

    # -- keys ------------------------------------------------------------------------------

    @staticmethod
    def _key(key: str, suffix: str = "") -> str:
        return f"{PREFIX}:{key}{':' + suffix if suffix else ''}"

    @staticmethod
    def _active(tenant_id: int | str) -> str:
        return f"{TENANT_PREFIX}:{tenant_id}:active"

    # -- tenant concurrency ------------------------------------------------------------------

    def admit(self, tenant_id: int, key: str, *, limit: int, hold_seconds: float) -> bool:
        now = time.time()
        return bool(self._admit(keys=[self._active(tenant_id)], args=[now, limit, key, now + hold_seconds]))

    def release(self, tenant_id: int, key: str) -> None:
        self.redis.zrem(self._active(tenant_id), key)

    # -- lifecycle -----------------------------------------------------------------------------

    def create(self, key: str, fields: dict[str, Any], *, pending_ttl: int) -> None:
        mapping = {k: _encode(v) for k, v in fields.items()}
        mapping.update(state=State.QUEUED.value, attempts=0, created_at=time.time())
        pipe = self.redis.pipeline()
        pipe.hset(self._key(key), mapping=mapping)
        pipe.expire(self._key(key), pending_ttl)
        pipe.execute()

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self.redis.hgetall(self._key(key))
        if not raw:
            return None
        return {k.decode(): _decode(k.decode(), v.decode()) for k, v in raw.items()}

    def start(self, key: str) -> tuple[State | None, int]:
        result = self._start(keys=[self._key(key)], args=[time.time()])
        if not result:
            return None, 0
        return State(result[0].decode()), int(result[1])

    def finish(
        self,
        key: str,
        tenant_id: int | str,
        state: State,
        *,
        error: dict[str, Any] | None = None,
        result_json: str = "",
    ) -> FinishOutcome:
        outcome = self._finish(
            keys=[self._key(key), self._key(key, "result"), self._key(key, "done"), self._active(tenant_id)],
            args=[state.value, time.time(), json.dumps(error) if error else "", result_json, self.result_ttl, key],
        )
        if outcome is None:
            return FinishOutcome(False, None)
        outcome = outcome.decode()
        if outcome == "ok":
            return FinishOutcome(True, state)
        return FinishOutcome(False, State(outcome))

    def result_json(self, key: str) -> str | None:
        raw = self.redis.get(self._key(key, "result"))
        return raw.decode() if raw is not None else None

    # -- waiting and cancelling ----------------------------------------------------------------

    def wait(self, key: str, timeout: float) -> bool:
        """Block until the execution finishes or ``timeout`` runs out (no polling loop)."""
        if timeout <= 0:
            return False
        done = self._key(key, "done")
        got = self.redis.blpop([done], timeout=timeout)
        if got is None:
            return False
        # Put the token back so that every other waiter on this key wakes too.
        pipe = self.redis.pipeline()
        pipe.rpush(done, "1")
        pipe.expire(done, self.result_ttl)
        pipe.execute()
        return True

    def request_cancel(self, key: str) -> None:
        """Tell the workers; the one running ``key`` stops it at the database. (An execution
        that has not started yet needs no message: its state is already ``cancelled``.)"""
        self.redis.publish(CANCEL_CHANNEL, key)

    def state(self, key: str) -> State | None:
        raw = self.redis.hget(self._key(key), "state")
        return State(raw.decode()) if raw else None

    def states(self, keys: list[str]) -> list[State | None]:
        """The live state of each key (None: unknown or expired), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hget(self._key(key), "state")
        return [State(raw.decode()) if raw else None for raw in pipe.execute()]


_JSON_FIELDS = {"params", "error", "meta"}
_FLOAT_FIELDS = {"created_at", "started_at", "finished_at"}
_INT_FIELDS = {"attempts", "max_rows", "timeout", "tenant_id", "app_id", "query_id", "user_id", "execution_id"}


def _encode(value: Any) -> str | int | float:
    if isinstance(value, (dict, list)) or value is None:
        import simplejson

        return simplejson.dumps(value, use_decimal=True)
    if isinstance(value, bool):
        return int(value)
    return value


def _decode(name: str, value: str) -> Any:
    if name in _JSON_FIELDS:
        if value == "":
            return None
        import simplejson

        return simplejson.loads(value, use_decimal=True)
    if name in _FLOAT_FIELDS:
        return float(value) if value else None
    if name in _INT_FIELDS:
        return int(value) if value not in ("", "null") else None
    return value
