"""Redshift beyond the connector contract, on PostgreSQL through the handshake proxy: the proxy
itself, read-only from the very first query of a fresh connection, cancel with
pg_cancel_backend, streaming through a cursor, error mapping, and (on a private throw-away
cluster) password authentication through the proxy."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg2
import pytest
import redshift_connector

from shared import errors
from shared.connectors.redshift import FETCH_BATCH, RedshiftConnector
from shared.results import json_value
from tests.support.databases import PG_HOST, PG_PORT
from tests.support.redshift_proxy import RedshiftProxy, rewrite_backend_message, rewrite_startup
from tests.support.targets.postgres import canary_state
from tests.support.targets.redshift import SLOW_QUERY, backend_running, redshift_config, rows_query


@pytest.fixture()
def connector(redshift_proxy_config):
    conn = RedshiftConnector(redshift_proxy_config)
    yield conn
    conn.close()


def _run(connector, sql, *, max_rows=100, timeout=20, key="exec_rs"):
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


# -- the proxy ---------------------------------------------------------------------------------


def test_startup_packet_loses_the_keys_postgres_rejects():
    pairs = [b"user", b"u", b"database", b"d", b"client_protocol_version", b"2", b"driver_version", b"x",
             b"os_version", b"linux", b"driver_discovery_version", b"1", b"application_name", b""]
    body = struct.pack("!I", 196608) + b"".join(p + b"\0" for p in pairs) + b"\0"
    packet = rewrite_startup(body)
    assert struct.unpack("!I", packet[:4])[0] == len(packet)
    assert packet[8:] == b"user\0u\0database\0d\0application_name\0\0\0"


def test_sasl_list_and_server_version_are_rewritten():
    sasl = rewrite_backend_message(b"R", struct.pack("!I", 10) + b"SCRAM-SHA-256\0\0")
    assert sasl == b"R" + struct.pack("!I", 4 + 4 + 14) + struct.pack("!I", 10) + b"SCRAM-SHA-256\0"
    version = rewrite_backend_message(b"S", b"server_version\x0015.20 (Debian 15.20-0+deb12u1)\0")
    assert version == b"S" + struct.pack("!I", 4 + 21) + b"server_version\x0015.20\0"
    other = rewrite_backend_message(b"S", b"TimeZone\0UTC\0")
    assert other == b"S" + struct.pack("!I", 4 + 13) + b"TimeZone\0UTC\0"


def test_the_driver_needs_the_proxy_and_works_through_it(ext_redshift_db, redshift_proxy):
    params = {"host": "127.0.0.1", "database": ext_redshift_db.name, "user": ext_redshift_db.role,
              "password": ext_redshift_db.password, "ssl": False, "timeout": 5}
    with pytest.raises(redshift_connector.Error) as direct:
        redshift_connector.connect(port=PG_PORT, **params)
    assert direct.value.args[0]["C"] == "42704"  # unrecognized configuration parameter
    conn = redshift_connector.connect(port=redshift_proxy.port, **params)
    try:
        cur = conn.cursor()
        cur.execute("SELECT current_user, version()")
        user, version = cur.fetchone()
        assert user == ext_redshift_db.role and version.startswith("PostgreSQL")
    finally:
        conn.close()


# -- read-only ---------------------------------------------------------------------------------


def test_a_write_fails_on_the_very_first_query_of_a_fresh_connection(redshift_proxy_config, ext_redshift_db):
    before = canary_state(ext_redshift_db)
    fresh = RedshiftConnector(redshift_proxy_config)
    try:
        with pytest.raises(errors.QueryExecutionError) as caught:
            _run(fresh, "SELECT accept_wipe_canary_fn()")
    finally:
        fresh.close()
    assert caught.value.details == {"sqlstate": "25006"}  # read_only_sql_transaction
    assert canary_state(ext_redshift_db) == before


def test_the_pitfall_a_session_setting_misses_the_first_transaction(redshift_proxy_config, ext_redshift_db):
    """Why the connector opens its own READ ONLY transaction: with the driver's default
    (autocommit off) it has already begun a read-write transaction when a session-level
    read-only setting is sent, so the first write goes through (rolled back here)."""
    c = redshift_proxy_config
    conn = redshift_connector.connect(host=c["host"], port=c["port"], database=c["database"], user=c["user"],
                                      password=c["password"], ssl=False, timeout=5)
    try:
        cur = conn.cursor()
        cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cur.execute("SELECT accept_wipe_canary_fn()")
        cur.execute("SELECT count(*) FROM accept_canary")
        assert cur.fetchone()[0] == 0
        conn.rollback()
    finally:
        conn.close()
    assert canary_state(ext_redshift_db)[0] == [(1, "alpha"), (2, "beta"), (3, "gamma")]


def test_each_execution_is_read_only_with_its_statement_timeout(connector):
    rows = _rows(_run(connector, "SELECT current_setting('transaction_read_only') AS ro, "
                                 "current_setting('statement_timeout') AS st", timeout=7))
    assert rows == [{"ro": "on", "st": "7s"}]
    assert _rows(_run(connector, "SHOW statement_timeout", timeout=3)) == [{"statement_timeout": "3s"}]


def test_pooled_connection_stays_read_only_after_escapes(connector, ext_redshift_db):
    before = canary_state(ext_redshift_db)
    pid = _rows(_run(connector, "SELECT pg_backend_pid() AS pid"))[0]["pid"]
    # Validation would refuse these; the connector alone must not be left read-write.
    for escape in ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "COMMIT", "SET statement_timeout TO 0"):
        _run(connector, escape)
    rows = _rows(_run(connector, "SELECT pg_backend_pid() AS pid, current_setting('transaction_read_only') AS ro"))
    assert rows == [{"pid": pid, "ro": "on"}], "not the same pooled connection, or not read-only"
    with pytest.raises(errors.QueryExecutionError):
        _run(connector, "SELECT accept_wipe_canary_fn()")
    assert canary_state(ext_redshift_db) == before


def test_one_statement_per_execution(connector, ext_redshift_db):
    before = canary_state(ext_redshift_db)
    with pytest.raises(errors.QueryExecutionError) as caught:
        _run(connector, "SELECT 1; SELECT accept_wipe_canary_fn()")
    assert caught.value.details == {"sqlstate": "42601"}  # cannot insert multiple commands
    assert canary_state(ext_redshift_db) == before


# -- cancel and streaming ----------------------------------------------------------------------


def _backend_state(db, pid: int) -> tuple | None:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s", (pid,))
        return cur.fetchone()


@pytest.mark.timeout(60)
def test_cancel_with_pg_cancel_backend(connector, ext_redshift_db):
    outcome: dict = {}

    def run():
        try:
            _run(connector, SLOW_QUERY, timeout=60, key="exec_rs_cancel")
        except errors.AnalyticsError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    _eventually(lambda: connector.running_handle("exec_rs_cancel") is not None, "query never started")
    pid = connector.running_handle("exec_rs_cancel").pid
    _eventually(lambda: (_backend_state(ext_redshift_db, pid) or ("",))[0] == "active", "backend not active")
    assert connector.cancel("exec_rs_cancel") is True
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), errors.QueryTimeoutError)  # 57014, like a statement timeout
    _eventually(lambda: (_backend_state(ext_redshift_db, pid) or ("gone",))[0] != "active", "backend still active")
    assert not backend_running(ext_redshift_db)


@pytest.fixture()
def counting_proxy(ext_redshift_db):
    with RedshiftProxy((PG_HOST, PG_PORT)) as proxy:
        yield proxy, redshift_config(ext_redshift_db, proxy)


def test_only_max_rows_plus_one_cross_the_wire(counting_proxy):
    proxy, config = counting_proxy
    connector = RedshiftConnector(config)
    try:
        _run(connector, "SELECT 1 AS warm")  # connect and warm up outside the measurement
        before = proxy.bytes_from_server
        result = _run(connector, rows_query(200_000), max_rows=100)
        streamed = proxy.bytes_from_server - before
    finally:
        connector.close()
    assert len(result.rows) == 100 and result.truncated
    # Each row is ~20 bytes on the wire: all 200k would be ~4 MB.
    assert streamed < 20_000, f"{streamed} bytes came from the server"


def test_fetches_in_batches_past_the_single_node_limit(connector):
    result = _run(connector, rows_query(FETCH_BATCH * 2 + 10), max_rows=FETCH_BATCH * 2 + 5)
    assert len(result.rows) == FETCH_BATCH * 2 + 5 and result.truncated
    assert result.rows[-1] == (FETCH_BATCH * 2 + 5,)
    exact = _run(connector, rows_query(FETCH_BATCH), max_rows=FETCH_BATCH)
    assert len(exact.rows) == FETCH_BATCH and not exact.truncated


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [("SELECT 1/0", "22012"), ("SELEC 1", "42601"), ("SELECT * FROM no_such_table_x", "42P01")],
)
def test_server_errors_by_sqlstate(connector, sql, sqlstate):
    with pytest.raises(errors.QueryExecutionError) as caught:
        _run(connector, sql)
    assert caught.value.details == {"sqlstate": sqlstate}
    assert len(_run(connector, "SELECT 1 AS x").rows) == 1  # the connection is usable after it


@pytest.mark.parametrize(
    "overrides",
    [{"database": "no_such_database_x"}, {"user": "no_such_role_x"}, {"port": 1}, {"host": "no-such-host.invalid"}],
)
def test_connection_errors(ext_redshift_db, redshift_proxy, overrides):
    config = redshift_config(ext_redshift_db, redshift_proxy, **overrides)
    with pytest.raises(errors.ConnectorError) as caught:
        RedshiftConnector(config).execute("SELECT 1", max_rows=1, timeout=5, execution_key="exec_rs_err")
    assert ext_redshift_db.password not in caught.value.message


# -- password authentication through the proxy (private cluster) -----------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def password_cluster():
    """A throw-away PostgreSQL cluster whose pg_hba asks for SCRAM (and md5 for one role): the
    shared server trusts 127.0.0.1 and its configuration is not ours to change."""
    bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    initdb = shutil.which("initdb") or next((str(d / "initdb") for d in reversed(bindirs) if (d / "initdb").exists()), None)
    if initdb is None:
        pytest.skip("no initdb to make a private cluster with password authentication")
    bindir = Path(initdb).parent
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user")
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="analytics-rs-pg-"))
    data, pwfile, port = base / "data", base / "pw", _free_port()
    pwfile.write_text("superpw\n")
    if owner:
        for path in (base, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    started = False
    try:
        subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "scram-sha-256",
                                  "--no-sync", f"--pwfile={pwfile}"], check=True, capture_output=True, timeout=60)
        (data / "pg_hba.conf").write_text(
            "host all md5_user 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "30", "-l", str(base / "log"),
                                  "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True, timeout=60)
        started = True
        admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password="superpw", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE ROLE scram_user LOGIN PASSWORD 'scram-pw'")
            cur.execute("SET password_encryption = 'md5'")
            cur.execute("CREATE ROLE md5_user LOGIN PASSWORD 'md5-pw'")
        admin.close()
        yield port
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"could not start a private cluster: {exc.stderr.decode(errors='replace')[-300:]}")
    finally:
        if started:
            subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(("user", "password"), [("scram_user", "scram-pw"), ("md5_user", "md5-pw")])
def test_password_authentication_through_the_proxy(password_cluster, user, password):
    with RedshiftProxy(("127.0.0.1", password_cluster)) as proxy:
        config = {"host": "127.0.0.1", "port": proxy.port, "database": "postgres", "user": user,
                  "password": password, "ssl": False, "connect_timeout": 5}
        connector = RedshiftConnector(config)
        try:
            assert _rows(_run(connector, "SELECT current_user AS u")) == [{"u": user}]
        finally:
            connector.close()
        with pytest.raises(errors.ConnectorError):
            RedshiftConnector(dict(config, password="wrong")).test()
