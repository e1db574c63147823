"""MySQL/MariaDB beyond the connector contract: the corpora on a real server, read-only kept
across pooled uses, server detection, KILL QUERY, truncation without draining, client flags."""
from __future__ import annotations

import threading
import time
from decimal import Decimal

import MySQLdb
import pytest
from MySQLdb.constants import CLIENT, FIELD_TYPE, FLAG

from shared import errors
from shared.connectors.base import ColumnType
from shared.connectors.mysql import MySQLConnector, _parse_json, _Session, column_type
from shared.results import json_value
from tests.support.corpus import corpus_params
from tests.support.targets.mysql import database_state, is_running, mysql_config


@pytest.fixture()
def connector(ext_mysql):
    conn = MySQLConnector(mysql_config(ext_mysql))
    yield conn
    conn.close()


def _run(connector, sql, *, max_rows=100, timeout=20, key="exec_mysql"):
    return connector.execute(sql, max_rows=max_rows, timeout=timeout, execution_key=key)


def _rows(result) -> list[dict]:
    names = [c.name for c in result.columns]
    return [dict(zip(names, (json_value(v) for v in row), strict=True)) for row in result.rows]


def _eventually(predicate, message: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(message)


# -- read-only at the database -----------------------------------------------------------------


@pytest.mark.parametrize("sql, entry", corpus_params("public_db_enforced_mysql"))
def test_db_enforced_corpus_is_refused_by_the_database(connector, ext_mysql, sql, entry):
    before = database_state(ext_mysql["database"])
    with pytest.raises(errors.QueryExecutionError) as caught:
        _run(connector, sql)  # validation bypassed: only the read-only session stands in the way
    assert caught.value.details.get("vendor_code") == 1792, caught.value.message
    assert database_state(ext_mysql["database"]) == before


def test_the_fixture_function_does_write_outside_a_read_only_transaction(ext_mysql):
    """The control for the test above: the same user, in an ordinary transaction, wipes the
    canary (rolled back here), so the 1792 comes from the read-only session, not from grants."""
    conn = MySQLdb.connect(**{k: ext_mysql[k] for k in ("host", "port", "database", "user", "password")})
    try:
        cur = conn.cursor()
        cur.execute("SELECT accept_wipe_canary_fn()")
        cur.execute("SELECT COUNT(*) FROM accept_canary")
        assert cur.fetchone()[0] == 0
        conn.rollback()
        cur.execute("SELECT COUNT(*) FROM accept_canary")
        assert cur.fetchone()[0] == 3
    finally:
        conn.close()


def test_pooled_connection_stays_read_only_after_set_read_write(connector, ext_mysql):
    before = database_state(ext_mysql["database"])
    first = _rows(_run(connector, "SELECT CONNECTION_ID() AS id"))[0]["id"]
    # Validation would refuse SET; the connector alone must still not be turned read-write.
    _run(connector, "SET SESSION TRANSACTION READ WRITE")
    after = _rows(_run(connector, "SELECT CONNECTION_ID() AS id, @@session.tx_read_only AS ro"))[0]
    assert after == {"id": first, "ro": 1}, "not the same pooled connection, or not read-only again"
    with pytest.raises(errors.QueryExecutionError) as caught:
        _run(connector, "SELECT accept_wipe_canary_fn()")
    assert caught.value.details.get("vendor_code") == 1792
    assert database_state(ext_mysql["database"]) == before


def test_one_statement_per_execution(connector, ext_mysql):
    before = database_state(ext_mysql["database"])
    with pytest.raises(errors.QueryExecutionError) as caught:
        _run(connector, "SELECT 1; SELECT accept_wipe_canary_fn()")
    assert caught.value.details.get("vendor_code") == 1064  # a syntax error: multi-statements are off
    assert database_state(ext_mysql["database"]) == before


def test_local_infile_and_multi_statements_are_off_in_the_client(connector):
    params = connector.connect_params(read_timeout=10)
    conn = MySQLdb.connect(**params)
    try:
        assert not conn.client_flag & CLIENT.LOCAL_FILES
        assert not conn.client_flag & CLIENT.MULTI_STATEMENTS
    finally:
        conn.close()


# -- the allowed corpus --------------------------------------------------------------------------


@pytest.mark.parametrize("sql, entry", corpus_params("public_allowed_mysql"))
def test_allowed_corpus_runs(connector, sql, entry):
    rows = _rows(_run(connector, sql))
    if "rows" in entry.data:
        assert len(rows) == entry["rows"]
    if "first" in entry.data:
        assert {k: rows[0].get(k) for k in entry["first"]} == entry["first"]


def test_orders_fixture_values(connector):
    rows = _rows(_run(connector, "SELECT status FROM orders WHERE id IN (2, 4) ORDER BY id"))
    assert [r["status"] for r in rows] == ["it's complicated", "back\\slash"]


# -- server detection and timeout ----------------------------------------------------------------


def test_server_detection_sets_the_mariadb_timeout(connector):
    rows = _rows(_run(connector, "SELECT VERSION() AS v, @@session.max_statement_time AS t", timeout=7))
    assert "mariadb" in rows[0]["v"].lower()
    assert float(rows[0]["t"]) == 7.0


def test_mysql_servers_get_max_execution_time_in_milliseconds():
    """No MySQL 8 here: the statements sent for one, on a recording cursor."""
    sent = []

    class Cursor:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def execute(self, sql, args=None):
            sent.append((sql, args))

    class Conn:
        def cursor(self):
            return Cursor()

    MySQLConnector({})._prepare(_Session(Conn(), 1, mariadb=False, read_timeout=10), timeout=2.5)
    assert sent == [
        ("SET SESSION TRANSACTION READ ONLY", None),
        ("SET SESSION max_execution_time = %s", (2500,)),
        ("START TRANSACTION READ ONLY", None),
    ]


# -- cancel and truncation -------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_kill_query_stops_the_statement(connector):
    marker = "kill_marker_mysql"
    sql = f"SELECT COUNT(*) AS {marker} FROM seq_1_to_1000000 a JOIN seq_1_to_100000 b"
    outcome: dict = {}

    def run():
        try:
            _run(connector, sql, timeout=60, key="exec_kill")
        except errors.AnalyticsError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    _eventually(lambda: is_running(marker), "the query never showed in PROCESSLIST")
    assert connector.cancel("exec_kill") is True
    thread.join(10)
    assert not thread.is_alive()
    error = outcome.get("error")
    assert isinstance(error, errors.QueryExecutionError) and error.details.get("vendor_code") == 1317
    _eventually(lambda: not is_running(marker), "the query still runs after KILL QUERY")


@pytest.mark.timeout(60)
def test_truncated_result_is_not_drained(connector):
    # 10^8 rows: reading them all to close the cursor would take far longer than the bound below.
    sql = "SELECT seq AS n, 'trunc_marker_mysql' AS m FROM seq_1_to_100000000"
    started = time.monotonic()
    result = _run(connector, sql, max_rows=10, timeout=60)
    assert len(result.rows) == 10 and result.truncated
    assert time.monotonic() - started < 5
    _eventually(lambda: not is_running("trunc_marker_mysql"), "the truncated statement still runs")
    assert len(_run(connector, "SELECT 1 AS x").rows) == 1  # the connector goes on with a fresh connection


# -- types and errors ------------------------------------------------------------------------------


def test_time_outside_a_day_stays_text(connector):
    rows = _rows(_run(connector, "SELECT TIME '25:00:00' AS long_t, TIME '-01:30:00' AS neg_t, TIME '00:00:01.5' AS frac"))
    assert rows == [{"long_t": "25:00:00", "neg_t": "-01:30:00", "frac": "00:00:01.500000"}]


def test_mysql_json_columns_are_structured():
    # MariaDB sends JSON as LONGTEXT; MySQL 8 has its own type code, mapped to JSON and parsed.
    assert column_type(FIELD_TYPE.JSON, 0, ['{"a": 1}']) is ColumnType.JSON
    assert _parse_json(('{"a": [1, 2.50]}',), [0]) == ({"a": [1, Decimal("2.50")]},)


def test_binary_flag_is_decided_by_the_values():
    assert column_type(FIELD_TYPE.VAR_STRING, FLAG.BINARY, [None, b"\x00"]) is ColumnType.BINARY
    assert column_type(FIELD_TYPE.VAR_STRING, FLAG.BINARY, ["text"]) is ColumnType.STRING
    assert column_type(FIELD_TYPE.BLOB, 0, ["text"]) is ColumnType.STRING


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"database": "no_such_database_x"}, "no_such_database_x"),
        ({"password": "wrong-password"}, "Access denied"),
        ({"host": "no-such-host.invalid"}, "no-such-host.invalid"),
        ({"ssl": True}, "TLS is required"),  # the local server offers no TLS: fail closed
    ],
)
def test_connection_errors_are_connector_errors_without_secrets(ext_mysql, overrides, fragment):
    config = mysql_config(ext_mysql, **overrides)
    with pytest.raises(errors.ConnectorError) as caught:
        MySQLConnector(config).execute("SELECT 1", max_rows=1, timeout=5, execution_key="exec_err")
    assert fragment in caught.value.message
    assert ext_mysql["password"] not in caught.value.message and "wrong-password" not in caught.value.message


def test_server_errors_keep_the_server_message(connector):
    with pytest.raises(errors.QueryExecutionError) as caught:
        _run(connector, "SELECT no_such_column FROM accept_canary")
    assert caught.value.details == {"vendor_code": 1054}
    assert "no_such_column" in caught.value.message
