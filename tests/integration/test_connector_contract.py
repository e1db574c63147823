"""The contract every connector passes, on a real engine: rows and types, truncation,
timeout, cancel at the server, bad credentials, unreachable host, read-only at the database."""
from __future__ import annotations

import threading
import time

import pytest

from shared import errors
from shared.results import json_value

DRIVERS = ["postgres", "internal", "mysql", "redshift", "clickhouse", "elasticsearch"]


@pytest.fixture(params=DRIVERS)
def target(request):
    return request.getfixturevalue(f"{request.param}_target")


@pytest.fixture()
def connector(target):
    conn = target.make(target.config)
    yield conn
    conn.close()


def test_rows_and_types(target, connector):
    result = connector.execute(target.typed_query, max_rows=10, timeout=20, execution_key="exec_types")
    assert len(result.rows) == 1 and not result.truncated
    names = [c.name for c in result.columns]
    row = dict(zip(names, result.rows[0], strict=True))
    types = {c.name: c.type for c in result.columns}
    for column, (expected_type, expected_value) in target.expected.items():
        assert column in row, f"missing column {column}"
        assert types[column] == expected_type, column
        assert json_value(row[column]) == expected_value, column


@pytest.mark.parametrize(("n", "max_rows", "kept", "truncated"), [(10, 5, 5, True), (10, 10, 10, False), (3, 10, 3, False)])
def test_truncation(target, connector, n, max_rows, kept, truncated):
    result = connector.execute(target.rows_query(n), max_rows=max_rows, timeout=20, execution_key="exec_rows")
    assert len(result.rows) == kept
    assert result.truncated is truncated


def test_streams_large_results_without_fetching_everything(target, connector):
    # 200k rows exist; only max_rows + 1 may be fetched, so this returns quickly and small.
    result = connector.execute(target.rows_query(200_000), max_rows=100, timeout=60, execution_key="exec_big")
    assert len(result.rows) == 100 and result.truncated


@pytest.mark.timeout(60)
def test_timeout_is_enforced_by_the_server(target, connector):
    with pytest.raises(errors.QueryTimeoutError):
        connector.execute(target.slow_query, max_rows=10, timeout=1, execution_key="exec_timeout")
    if target.is_running:
        _eventually(lambda: not target.is_running("slow_marker"), "the query still runs at the server")


@pytest.mark.timeout(90)
def test_cancel_stops_the_query_at_the_server(target, connector):
    if not target.supports_cancel:
        pytest.skip(f"{target.driver} test engine cannot cancel (see its target module)")
    outcome: dict = {}

    def run():
        try:
            connector.execute(target.slow_query, max_rows=10, timeout=60, execution_key="exec_cancel")
        except errors.AnalyticsError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    _eventually(lambda: connector.running_handle("exec_cancel") is not None, "query never started")
    if target.is_running:
        _eventually(lambda: target.is_running("slow_marker"), "query not visible at the server")
    assert connector.cancel("exec_cancel") is True
    thread.join(15)
    assert not thread.is_alive(), "execute() did not return after cancel"
    assert isinstance(outcome.get("error"), errors.AnalyticsError)
    if target.is_running:
        _eventually(lambda: not target.is_running("slow_marker"), "the query still runs at the server")
    assert connector.cancel("exec_cancel") is False  # nothing left to cancel


def test_cancel_of_unknown_key_is_false(connector):
    assert connector.cancel("exec_nothing_runs") is False


@pytest.mark.timeout(60)
def test_bad_credentials(target):
    conn = target.make(target.bad_credentials)
    with pytest.raises(errors.ConnectorError):
        conn.execute(target.rows_query(1), max_rows=1, timeout=10, execution_key="exec_badcreds")
    with pytest.raises(errors.ConnectorError):
        conn.test()


@pytest.mark.timeout(30)
def test_unreachable_host(target):
    conn = target.make(target.unreachable)
    with pytest.raises(errors.ConnectorError):
        conn.execute(target.rows_query(1), max_rows=1, timeout=10, execution_key="exec_unreachable")


def test_test_runs_a_trivial_read(connector):
    connector.test()


def test_database_refuses_writes(target, connector):
    if target.write_query is None:
        pytest.skip(f"{target.driver} has no write path to test (search API only)")
    before = target.write_check()
    with pytest.raises((errors.QueryExecutionError, errors.QueryValidationError)):
        connector.execute(target.write_query, max_rows=10, timeout=20, execution_key="exec_write")
    assert target.write_check() == before


def test_connection_is_reusable_after_errors(target, connector):
    with pytest.raises(errors.AnalyticsError):
        connector.execute(target.slow_query, max_rows=10, timeout=1, execution_key="exec_t1")
    result = connector.execute(target.rows_query(2), max_rows=10, timeout=20, execution_key="exec_t2")
    assert len(result.rows) == 2


def _eventually(predicate, message: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(message)
