"""Saved queries run end to end (real API under gunicorn, real Celery worker, real
PostgreSQL and Redis): sync, async + poll, long-poll, cancel, timeout, truncation, types."""
from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.helpers import body, create_query, create_secret, execute, poll, wait_for_state, wait_until
from tests.support.targets.postgres import EXPECTED, active_queries, activity, SLOW_QUERY, TYPED_QUERY, canary_state, pg_config

pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def pg(http, ext_pg):
    create_secret(http, "pg", "analytics-postgres", pg_config(ext_pg))
    return http


def test_sync_execute_returns_rows_in_the_envelope(pg):
    q = create_query(pg, "Canary", "SELECT id, note FROM accept_canary ORDER BY id", secret_key="pg", tags=["t"])
    r = execute(pg, q["data"]["slug"])
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["status"] == "success" and data["message"] == "Query executed successfully"
    assert data["state"] == "succeeded" and data["execution_key"].startswith("exec_")
    assert len(data["execution_key"]) >= 5 + 22  # >= 128 random bits
    assert data["data"] == [{"id": 1, "note": "alpha"}, {"id": 2, "note": "beta"}, {"id": 3, "note": "gamma"}]
    assert data["columns"] == [{"name": "id", "type": "integer"}, {"name": "note", "type": "string"}]
    assert data["total"] == 3 and data["truncated"] is False and isinstance(data["duration_ms"], int)


def test_every_value_type_round_trips(pg):
    q = create_query(pg, "Types", TYPED_QUERY, secret_key="pg")
    r = execute(pg, q["data"]["slug"])
    assert r.status_code == 200, r.text
    data = body(r)
    row = data["data"][0]
    types = {c["name"]: c["type"] for c in data["columns"]}
    for column, (expected_type, expected_value) in EXPECTED.items():
        assert types[column] == expected_type.value, column
        assert row[column] == expected_value, column
    assert '"n":12345678901234567890.1234567890' in r.text.replace(" ", "")  # exact, as a JSON number
    assert row["tstz"].endswith("+00:00")


def test_async_execute_then_poll_and_long_poll(pg):
    q = create_query(pg, "Slowish", "SELECT count(*) AS n FROM generate_series(1, 3000000)", secret_key="pg")
    r = execute(pg, q["data"]["slug"], wait=0)
    assert r.status_code == 202, r.text
    data = r.json()
    assert data["status"] == "pending" and data["state"] in ("queued", "running")
    assert r.headers["Location"] == data["poll_url"]
    assert data["poll_url"].endswith(f"/executions/{data['execution_key']}/")
    done = poll(pg, data["execution_key"], wait=30)
    assert done.status_code == 200
    assert done.json()["state"] == "succeeded" and done.json()["data"] == [{"n": 3000000}]
    # A finished execution stays readable.
    again = poll(pg, data["execution_key"])
    assert again.json()["data"] == [{"n": 3000000}]


def test_wait_budget_runs_out_with_202(pg):
    q = create_query(pg, "Slow", SLOW_QUERY, secret_key="pg")
    r = execute(pg, q["data"]["slug"], wait=1)
    assert r.status_code == 202
    key = r.json()["execution_key"]
    assert pg.delete(f"analytics/executions/{key}/").status_code == 200


def test_cancel_stops_the_query_at_the_database(pg, ext_pg):
    q = create_query(pg, "Slow", SLOW_QUERY, secret_key="pg")
    key = execute(pg, q["data"]["slug"], wait=0).json()["execution_key"]
    wait_for_state(pg, key, {"running"})
    wait_until(lambda: _active(ext_pg, "slow_marker") > 0, "query never reached the database")

    r = pg.delete(f"analytics/executions/{key}/")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    wait_until(lambda: _active(ext_pg, "slow_marker") == 0, "query still running at the database", timeout=10)

    after = poll(pg, key).json()
    assert after["status"] == "error" and after["state"] == "cancelled" and after["code"] == "QueryCancelled"
    again = pg.delete(f"analytics/executions/{key}/")
    assert again.status_code == 409 and again.json()["code"] == "Conflict"


def test_cancelled_while_queued_never_runs(pg, ext_pg, redis_client):
    q = create_query(pg, "Slow", SLOW_QUERY, secret_key="pg")
    # Occupy both worker processes, then queue a third execution behind them.
    blockers = [execute(pg, q["data"]["slug"], wait=0).json()["execution_key"] for _ in range(2)]
    for key in blockers:
        wait_for_state(pg, key, {"running"})
    marker = create_query(pg, "Marker", "SELECT count(*) AS queued_marker FROM accept_canary", secret_key="pg")
    queued = execute(pg, marker["data"]["slug"], wait=0).json()
    assert queued["state"] == "queued"
    assert pg.delete(f"analytics/executions/{queued['execution_key']}/").status_code == 200
    for key in blockers:
        assert pg.delete(f"analytics/executions/{key}/").status_code == 200
    # Once the workers are free the queued message is delivered and skipped.
    wait_until(lambda: _active(ext_pg, "slow_marker") == 0, "blockers still running", describe=lambda: activity(ext_pg))
    final = wait_for_state(pg, queued["execution_key"], {"cancelled"})
    assert final["code"] == "QueryCancelled"
    wait_until(
        lambda: redis_client.hget(f"analytics:exec:{queued['execution_key']}", "attempts") == b"0"
        and _consumed(redis_client),
        "queued execution was started",
    )


def test_timeout_is_stopped_at_the_database(pg, ext_pg):
    q = create_query(pg, "Too slow", SLOW_QUERY, secret_key="pg", timeout_seconds=1)
    r = execute(pg, q["data"]["slug"], wait=20)
    assert r.status_code == 504, r.text
    data = r.json()
    assert data["code"] == "QueryTimeoutError" and data["state"] == "failed" and data["execution_key"]
    wait_until(lambda: _active(ext_pg, "slow_marker") == 0, "query still running at the database",
               describe=lambda: activity(ext_pg))


def test_truncation_and_max_rows_clamp(pg):
    q = create_query(pg, "Ten", "SELECT g FROM generate_series(1, 10) AS g ORDER BY g", secret_key="pg")
    r = execute(pg, q["data"]["slug"], max_rows=5).json()
    assert [row["g"] for row in r["data"]] == [1, 2, 3, 4, 5]
    assert r["truncated"] is True and r["total"] == 5
    r = execute(pg, q["data"]["slug"], max_rows=10**9).json()  # clamped, not refused
    assert r["total"] == 10 and r["truncated"] is False


def test_duplicate_column_names_become_unique(pg):
    q = create_query(pg, "Dupes", "SELECT 1 AS id, 2 AS id, 3 AS id_2", secret_key="pg")
    data = execute(pg, q["data"]["slug"]).json()
    assert [c["name"] for c in data["columns"]] == ["id", "id_2", "id_2_2"]
    assert data["data"] == [{"id": 1, "id_2": 2, "id_2_2": 3}]


def test_missing_parameter_is_named(pg):
    q = create_query(pg, "Param", "SELECT id FROM accept_canary WHERE note = '{{ note }}'", secret_key="pg")
    r = execute(pg, q["data"]["slug"])
    assert r.status_code == 400
    assert r.json()["code"] == "QueryValidationError" and "note" in r.json()["message"]
    ok = execute(pg, q["data"]["slug"], {"note": "beta"}).json()
    assert ok["data"] == [{"id": 2}]


def test_database_errors_are_query_execution_errors(pg):
    q = create_query(pg, "Missing", "SELECT * FROM no_such_table", secret_key="pg")
    r = execute(pg, q["data"]["slug"])
    assert r.status_code == 400
    assert r.json()["code"] == "QueryExecutionError" and "no_such_table" in r.json()["message"]
    assert r.json()["state"] == "failed"


def test_db_enforced_writes_are_refused_and_nothing_changes(pg, ext_pg):
    before = canary_state(ext_pg)
    q = create_query(pg, "Wipe", "SELECT accept_wipe_canary_fn()", secret_key="pg")
    r = execute(pg, q["data"]["slug"])
    assert r.status_code == 400 and r.json()["code"] == "QueryExecutionError"
    assert "read-only" in r.json()["message"]
    assert canary_state(ext_pg) == before


def test_unreachable_database_is_a_connector_error(http, ext_pg):
    create_secret(http, "down", "analytics-postgres", pg_config(ext_pg, port=1))
    q = create_query(http, "Down", "SELECT 1", secret_key="down")
    r = execute(http, q["data"]["slug"])
    assert r.status_code == 502 and r.json()["code"] == "ConnectorError"


def test_unknown_or_foreign_execution_key_is_404(pg, live, other_account):
    from tests.support.fixtures import HttpCaller

    q = create_query(pg, "One", "SELECT 1 AS one", secret_key="pg")
    key = execute(pg, q["data"]["slug"]).json()["execution_key"]
    assert poll(pg, "exec_doesnotexist").status_code == 404
    other = HttpCaller(live, other_account)
    r = poll(other, key)
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
    assert other.delete(f"analytics/executions/{key}/").status_code == 404


def test_secret_test_endpoint(pg, http, ext_pg):
    r = pg.post("secrets/pg/test/")
    assert r.status_code == 200, r.text
    create_secret(http, "badpw", "analytics-postgres", pg_config(ext_pg, user="nobody_here", password="hunter2-secret"))
    r = http.post("secrets/badpw/test/")
    assert r.status_code == 502 and r.json()["code"] == "ConnectorError"
    assert "hunter2-secret" not in r.text


def _active(db, marker: str) -> int:
    return active_queries(db, marker)


def _consumed(redis_client) -> bool:
    return redis_client.llen("analytics.postgres") == 0


__all__ = ["Decimal"]
