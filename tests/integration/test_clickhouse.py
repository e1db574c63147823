"""ClickHouse connector beyond the contract suite: what the server is told (settings), that the
server itself refuses writes and outside reads because of ``readonly=1``, type mapping, error
mapping, and a real-server tier (cancel, timeout) when ANALYTICS_TEST_CLICKHOUSE_URL is set.

The default engine is chdb (the real ClickHouse engine, in-process). Table functions that
reach outside (``file``) are only ever called here *with* the connector's settings, or with
an admin client on a temporary path, so nothing leaves the test's own directory.
"""
from __future__ import annotations

import base64
import threading
import time
from decimal import Decimal

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError, StreamFailureError
from urllib3.exceptions import ReadTimeoutError

from shared import errors
from shared.connectors.base import ColumnType
from shared.connectors.clickhouse import KILL_QUERY, ClickHouseConnector, column_type, map_error, server_message
from shared.results import json_value
from tests.support.targets.clickhouse import SLOW_QUERY, canary_state, closed_port, real_server_config

READONLY = 164


@pytest.fixture()
def ch(clickhouse_target):
    connector = ClickHouseConnector(clickhouse_target.config)
    yield connector
    connector.close()


@pytest.fixture()
def admin(clickhouse_target):
    return clickhouse_target.extra["admin"]


def run(connector, sql, *, max_rows=100, timeout=20, key="exec_ch"):
    return connector.execute(sql, max_rows=max_rows, timeout=timeout, execution_key=key)


# -- settings ----------------------------------------------------------------------------------


def test_query_settings_put_readonly_last():
    settings = ClickHouseConnector.query_settings(max_rows=50, timeout=2.2, execution_key="exec_k")
    assert settings == {
        "query_id": "exec_k", "max_execution_time": 3, "max_result_rows": 51, "result_overflow_mode": "break", "readonly": 1,
    }
    # Once readonly applies nothing else may change, so it must be the last one applied.
    assert list(settings)[-1] == "readonly"


def test_settings_reach_the_engine(ch):
    result = run(
        ch,
        "SELECT getSetting('readonly') AS ro, getSetting('max_execution_time') AS met, "
        "getSetting('max_result_rows') AS mrr, getSetting('result_overflow_mode') AS mode",
        max_rows=7,
        timeout=9,
    )
    row = dict(zip([c.name for c in result.columns], result.rows[0], strict=True))
    assert int(row["ro"]) == 1
    assert float(row["met"]) == 9
    assert int(row["mrr"]) == 8
    assert str(row["mode"]) == "break"


def test_connect_params_from_a_secret():
    params = ClickHouseConnector({"host": "ch.example.com", "password": "pw"}).connect_params()
    assert params["port"] == 8443 and params["secure"] is True and params["verify"] is True
    assert params["username"] == "default" and params["database"] == "default"
    assert params["query_limit"] == 0 and params["autogenerate_session_id"] is False
    assert "dsn" not in params
    plain = ClickHouseConnector({"host": "ch", "secure": False}).connect_params()
    assert plain["port"] == 8123 and plain["secure"] is False
    assert ClickHouseConnector({"host": "x", "dsn": "chdb://memory"}).connect_params() == {"dsn": "chdb://memory", "query_limit": 0}


# -- read-only at the server ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO accept_canary VALUES (9, 'evil')",
        "INSERT INTO accept_canary SELECT number, 'x' FROM numbers(3)",
        "SELECT 1 AS one SETTINGS readonly = 0",
        "SELECT 1 AS one SETTINGS max_execution_time = 100000",
        "SELECT 1 AS one SETTINGS max_result_rows = 0",
    ],
    ids=["insert-values", "insert-select", "loosen-readonly", "loosen-timeout", "loosen-row-limit"],
)
def test_server_refuses_writes_and_setting_changes(ch, admin, sql):
    before = canary_state(admin)
    with pytest.raises(errors.QueryExecutionError) as info:
        run(ch, sql)
    assert info.value.details.get("code") == READONLY, info.value.message
    assert canary_state(admin) == before


def test_server_refuses_file_table_function(ch, tmp_path):
    # Reading a local file is refused by readonly=1 ...
    with pytest.raises(errors.QueryExecutionError) as info:
        run(ch, "SELECT * FROM file('/etc/hostname', 'LineAsString')")
    assert info.value.details.get("code") == READONLY
    # ... and so is writing one.
    target = tmp_path / "out.csv"
    with pytest.raises(errors.QueryExecutionError) as info:
        run(ch, f"INSERT INTO FUNCTION file('{target}', 'CSV', 'x Int32') SELECT 1")
    assert info.value.details.get("code") == READONLY
    assert not target.exists()


def test_the_same_file_write_works_without_readonly(clickhouse_target, tmp_path):
    """The control for the test above: only readonly=1 stands between the query and the file."""
    if not clickhouse_target.extra["on_chdb"]:
        pytest.skip("writes a file on the engine's host: chdb only")
    target = tmp_path / "control.csv"
    client = clickhouse_connect.get_client(dsn="chdb://memory", query_limit=0)
    try:
        client.command(f"INSERT INTO FUNCTION file('{target}', 'CSV', 'x Int32') SELECT 1")
    finally:
        client.close()
    assert target.read_text().strip() == "1"


def test_ddl_is_refused(ch, admin):
    # End to end: DDL never runs through the connector. On chdb the streaming path refuses it
    # before readonly is looked at (the next test proves readonly alone refuses it).
    with pytest.raises(errors.QueryExecutionError):
        run(ch, "CREATE TABLE should_not_exist (x Int8) ENGINE = Memory")
    assert admin.query("EXISTS TABLE should_not_exist").result_rows[0][0] == 0


def test_settings_alone_refuse_ddl_at_the_engine(clickhouse_target):
    """chdb refuses DDL on the streaming path before it looks at readonly, so prove the
    connector's settings refuse it by themselves, through the non-streaming command path."""
    if not clickhouse_target.extra["on_chdb"]:
        pytest.skip("chdb-specific path")
    client = clickhouse_connect.get_client(dsn=clickhouse_target.config["dsn"], query_limit=0)
    settings = ClickHouseConnector.query_settings(max_rows=1, timeout=5, execution_key="exec_ddl")
    try:
        with pytest.raises(DatabaseError) as info:
            client.command("CREATE TABLE should_not_exist_2 (x Int8) ENGINE = Memory", settings=settings)
        assert info.value.code == READONLY
    finally:
        client.close()  # the handle keeps readonly after this: never reuse it


# -- limits ------------------------------------------------------------------------------------


def test_row_limit_stops_the_server_early(ch):
    started = time.monotonic()
    result = run(ch, "SELECT number AS n FROM numbers(1000000000000)", max_rows=10, timeout=30)
    assert [r[0] for r in result.rows] == list(range(10)) and result.truncated
    assert time.monotonic() - started < 10, "the server produced (or the client drained) far more than max_rows + 1"


def test_server_stops_producing_rows_after_the_limit(clickhouse_target):
    """Over HTTP, closing a stream early drains it (clickhouse-connect reads the rest), so the
    server itself must stop: max_result_rows + 'break' ends the query after one block."""
    config = clickhouse_target.config
    client = (
        clickhouse_connect.get_client(dsn=config["dsn"], query_limit=0)
        if config.get("dsn")
        else ClickHouseConnector(config)._connect()
    )
    settings = ClickHouseConnector.query_settings(max_rows=10, timeout=30, execution_key="exec_break")
    settings.pop("query_id")
    started = time.monotonic()
    try:
        rows = client.query("SELECT number FROM numbers(1000000000000)", settings=settings).result_rows
    finally:
        client.close()
    assert 11 <= len(rows) <= 1_000_000, len(rows)  # at most a few blocks, never the whole table
    assert time.monotonic() - started < 10


def test_row_limit_does_not_cut_subqueries(ch):
    result = run(
        ch,
        "SELECT count() AS c FROM numbers(200000) WHERE number IN (SELECT number FROM numbers(200000))",
        max_rows=5,
    )
    assert result.rows == [(200000,)] and not result.truncated


def test_timeout_is_stopped_by_the_server(ch):
    started = time.monotonic()
    with pytest.raises(errors.QueryTimeoutError):
        run(ch, SLOW_QUERY, max_rows=1, timeout=1)
    assert time.monotonic() - started < 10


def test_connector_recovers_after_an_error(ch):
    # chdb keeps a failed query's SETTINGS on its handle: the client must not be reused.
    with pytest.raises(errors.QueryExecutionError):
        run(ch, "INSERT INTO accept_canary VALUES (9, 'x')")
    assert run(ch, "SELECT 40 + 2 AS v").rows == [(42,)]


# -- types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("UInt8", ColumnType.INTEGER), ("Int256", ColumnType.INTEGER), ("UInt64", ColumnType.INTEGER),
        ("Float32", ColumnType.FLOAT), ("BFloat16", ColumnType.FLOAT),
        ("Decimal(38, 10)", ColumnType.DECIMAL), ("Nullable(Decimal64(4))", ColumnType.DECIMAL),
        ("String", ColumnType.STRING), ("FixedString(16)", ColumnType.STRING),
        ("LowCardinality(String)", ColumnType.STRING), ("LowCardinality(Nullable(String))", ColumnType.STRING),
        ("Enum8('a' = 1, 'b' = 2)", ColumnType.STRING), ("IPv6", ColumnType.STRING),
        ("Date", ColumnType.DATE), ("Date32", ColumnType.DATE),
        ("DateTime", ColumnType.DATETIME), ("DateTime('Europe/Paris')", ColumnType.DATETIME),
        ("DateTime64(3, 'UTC')", ColumnType.DATETIME), ("Nullable(DateTime64(6))", ColumnType.DATETIME),
        ("UUID", ColumnType.UUID), ("Bool", ColumnType.BOOLEAN),
        ("Array(Nullable(Int8))", ColumnType.ARRAY), ("Array(Tuple(String, UInt8))", ColumnType.ARRAY),
        ("Map(String, UInt8)", ColumnType.JSON), ("Tuple(a UInt8, b String)", ColumnType.JSON),
        ("JSON", ColumnType.JSON), ("Variant(String, UInt64)", ColumnType.JSON),
        ("IntervalDay", ColumnType.INTEGER), ("Time", ColumnType.INTERVAL),
        ("Nullable(Nothing)", ColumnType.UNKNOWN), ("AggregateFunction(uniq, UInt64)", ColumnType.UNKNOWN),
    ],
)
def test_column_type(name, expected):
    assert column_type(name) == expected


def test_values_from_the_engine_are_json_ready(ch):
    result = run(ch, "SELECT toDecimal64('-0.0001', 4) AS d, toDateTime('2024-05-06 07:08:09', 'UTC') AS t, [[1], [2, 3]] AS nested")
    values = [json_value(v) for v in result.rows[0]]
    assert values == [Decimal("-0.0001"), "2024-05-06T07:08:09", [[1], [2, 3]]]
    assert [c.type for c in result.columns] == [ColumnType.DECIMAL, ColumnType.DATETIME, ColumnType.ARRAY]


# -- errors --------------------------------------------------------------------------------------

STACK = (
    "Received ClickHouse exception, code: 60, server response: Code: 60. DB::Exception: Unknown table expression "
    "identifier 'nope' in scope SELECT * FROM nope. (UNKNOWN_TABLE) (version 24.8.1.1 (official build))\n"
    "Stack trace:\n0. DB::Exception::Exception(...) @ 0x000000000c in /usr/bin/clickhouse\n1. ..."
)


def test_server_message_is_trimmed():
    message = server_message(STACK)
    assert message == "Unknown table expression identifier 'nope' in scope SELECT * FROM nope. (UNKNOWN_TABLE)"
    assert "Stack trace" not in message and "version" not in message and "0x" not in message


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (StreamFailureError("Code: 159. DB::Exception: Timeout exceeded: elapsed 1 s. (TIMEOUT_EXCEEDED)", code=159), errors.QueryTimeoutError),
        (DatabaseError("Code: 160. DB::Exception: Estimated query execution time is too long. (TOO_SLOW)", code=160), errors.QueryTimeoutError),
        (DatabaseError("Code: 394. DB::Exception: Query was cancelled. (QUERY_WAS_CANCELLED)", code=394), errors.QueryCancelledError),
        (DatabaseError("Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)", code=516), errors.ConnectorError),
        (DatabaseError("Code: 192. DB::Exception: Unknown user x. (UNKNOWN_USER)", code=192), errors.ConnectorError),
        (DatabaseError("Code: 193. DB::Exception: Wrong password. (WRONG_PASSWORD)", code=193), errors.ConnectorError),
        (DatabaseError("Code: 194. DB::Exception: Password required. (REQUIRED_PASSWORD)", code=194), errors.ConnectorError),
        (DatabaseError("Code: 164. DB::Exception: Cannot execute query in readonly mode. (READONLY)", code=164), errors.QueryExecutionError),
        (DatabaseError("Code: 62. DB::Exception: Syntax error. (SYNTAX_ERROR)"), errors.QueryExecutionError),
        (OperationalError("Error executing HTTP request"), errors.ConnectorError),
        (ProgrammingError("Setting max_execution_time is readonly"), errors.ConnectorError),
    ],
)
def test_map_error_by_code(exc, expected):
    mapped = map_error(exc)
    assert type(mapped) is expected
    assert "Stack trace" not in mapped.message


def test_client_read_timeout_is_a_timeout():
    try:
        try:
            raise ReadTimeoutError(None, "/", "Read timed out.")
        except ReadTimeoutError as inner:
            raise OperationalError("Error executing HTTP request") from inner
    except OperationalError as exc:
        assert isinstance(map_error(exc), errors.QueryTimeoutError)


def test_wrong_password_over_http(ch_auth_refuser):
    connector = ClickHouseConnector(
        {"host": "127.0.0.1", "port": ch_auth_refuser.port, "secure": False, "username": "reader", "password": "nope-pw"}
    )
    seen = len(ch_auth_refuser.requests)
    with pytest.raises(errors.ConnectorError) as info:
        connector.execute("SELECT 1", max_rows=1, timeout=5, execution_key="exec_auth")
    assert "Authentication failed" in info.value.message and "nope-pw" not in info.value.message
    sent = ch_auth_refuser.requests[seen]
    assert sent["headers"]["Authorization"] == "Basic " + base64.b64encode(b"reader:nope-pw").decode()


def test_unreachable_fails_fast():
    connector = ClickHouseConnector({"host": "127.0.0.1", "port": closed_port(), "secure": False})
    started = time.monotonic()
    with pytest.raises(errors.ConnectorError):
        connector.execute("SELECT 1", max_rows=1, timeout=5, execution_key="exec_unreach")
    with pytest.raises(errors.ConnectorError):
        connector.test()
    assert time.monotonic() - started < 10


def test_cancel_of_nothing_is_false(ch):
    assert ch.cancel("exec_not_running") is False


def test_kill_statement_runs_with_a_bound_id(clickhouse_target):
    """cancel() swallows errors (it must never raise), so check its statement on the engine
    directly: it parses, and a hostile id is a bound value, not SQL."""
    client = ClickHouseConnector(clickhouse_target.config)._connect()
    try:
        for query_id in ("exec_plain", "exec_'); DROP TABLE accept_canary; --"):
            assert client.raw_query(KILL_QUERY, parameters={"query_id": query_id}, fmt="TabSeparated").strip() == b""
    finally:
        client.close()


# -- real server tier ------------------------------------------------------------------------------

real = pytest.mark.skipif(real_server_config() is None, reason="set ANALYTICS_TEST_CLICKHOUSE_URL for a real server")


def _wait(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@real
@pytest.mark.timeout(90)
def test_real_cancel_kills_the_query(clickhouse_target, admin):
    connector = ClickHouseConnector(clickhouse_target.config)
    key = f"exec_real_cancel_{int(time.time())}"
    outcome = {}

    def body():
        try:
            run(connector, SLOW_QUERY, max_rows=1, timeout=60, key=key)
        except errors.AnalyticsError as exc:
            outcome["error"] = exc

    def processes():
        return admin.query(
            "SELECT Settings['readonly'], Settings['max_execution_time'] FROM system.processes WHERE query_id = {id:String}",
            parameters={"id": key},
        ).result_rows

    thread = threading.Thread(target=body)
    thread.start()
    try:
        assert _wait(lambda: bool(processes())), "the query never showed in system.processes"
        readonly, max_time = processes()[0]
        assert readonly == "1" and float(max_time) == 60
        assert connector.cancel(key) is True
        thread.join(20)
        assert not thread.is_alive()
        assert isinstance(outcome.get("error"), errors.QueryCancelledError)
        assert _wait(lambda: not processes()), "the query still runs at the server"
    finally:
        connector.cancel(key)
        thread.join(5)
        connector.close()


@real
@pytest.mark.timeout(60)
def test_real_timeout_stops_the_query(clickhouse_target, admin):
    connector = ClickHouseConnector(clickhouse_target.config)
    key = f"exec_real_timeout_{int(time.time())}"
    try:
        with pytest.raises(errors.QueryTimeoutError):
            run(connector, SLOW_QUERY, max_rows=1, timeout=2, key=key)
        assert _wait(
            lambda: not admin.query(
                "SELECT 1 FROM system.processes WHERE query_id = {id:String}", parameters={"id": key}
            ).result_rows
        )
    finally:
        connector.close()
