"""Test target for ClickHouse.

No ClickHouse server runs here, so by default the connector runs on the real ClickHouse engine
in-process (chdb, through clickhouse-connect's ``dsn="chdb://memory"`` hook). chdb ignores
``query_id``, so KILL QUERY cannot reach a query there: the contract's cancel test is skipped
on chdb and runs when ``ANALYTICS_TEST_CLICKHOUSE_URL`` (``http://user:password@host:8123``,
an account that may create a database) points at a real server, which then backs this target.

chdb has no credentials, so "bad credentials" is a real HTTP exchange with a tiny local server
that answers every request the way ClickHouse answers a wrong password (403, exception code
516 in ``X-ClickHouse-Exception-Code``, the ``Code: 516. DB::Exception`` body), and
"unreachable" is 127.0.0.1 on a port nothing listens on.
"""
from __future__ import annotations

import base64
import os
import secrets
import socket
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import clickhouse_connect
import pytest

from shared.connectors.base import ColumnType
from shared.connectors.clickhouse import ClickHouseConnector
from shared.dialects import Driver
from tests.support.targets.base import ConnectorTarget

CHDB_DSN = "chdb://memory"
AUTH_FAILED_BODY = (
    "Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, or there is no user with "
    "such name. (AUTHENTICATION_FAILED) (version 25.8.1.1 (official build))\n"
)

TYPED_QUERY = """
SELECT toInt32(42) AS i, toUInt64(18446744073709551615) AS big, toInt128('-170141183460469231731687303715884105728') AS huge,
       toFloat64(1.5) AS f, toDecimal128('12345678901234567890.1234567890', 10) AS n, true AS b,
       'héllo' AS s, toFixedString('ab', 2) AS fs, toLowCardinality('lc') AS lc,
       CAST('on' AS Enum8('on' = 1, 'off' = 2)) AS e, toDate('2024-02-29') AS d, toDate32('1900-01-01') AS d32,
       toDateTime64('2024-01-02 03:04:05.123456', 6, 'UTC') AS ts, toUUID('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11') AS u,
       [1, 2, 3] AS arr, map('a', 1, 'b', 2) AS m, tuple(1, 'x') AS tup, CAST(NULL AS Nullable(String)) AS nothing,
       toNullable(toInt64(7)) AS ni, toIPv4('10.0.0.1') AS ip
"""

EXPECTED = {
    "i": (ColumnType.INTEGER, 42),
    "big": (ColumnType.INTEGER, 18446744073709551615),
    "huge": (ColumnType.INTEGER, -170141183460469231731687303715884105728),
    "f": (ColumnType.FLOAT, 1.5),
    "n": (ColumnType.DECIMAL, Decimal("12345678901234567890.1234567890")),
    "b": (ColumnType.BOOLEAN, True),
    "s": (ColumnType.STRING, "héllo"),
    "fs": (ColumnType.STRING, "ab"),
    "lc": (ColumnType.STRING, "lc"),
    "e": (ColumnType.STRING, "on"),
    "d": (ColumnType.DATE, "2024-02-29"),
    "d32": (ColumnType.DATE, "1900-01-01"),
    "ts": (ColumnType.DATETIME, "2024-01-02T03:04:05.123456"),
    "u": (ColumnType.UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    "arr": (ColumnType.ARRAY, [1, 2, 3]),
    "m": (ColumnType.JSON, {"a": 1, "b": 2}),
    "tup": (ColumnType.JSON, [1, "x"]),
    "nothing": (ColumnType.STRING, None),
    "ni": (ColumnType.INTEGER, 7),
    "ip": (ColumnType.STRING, "10.0.0.1"),
}

# The filter keeps ClickHouse from answering count() from metadata; readonly allows numbers().
SLOW_QUERY = "SELECT count() AS slow_marker FROM numbers(10000000000000) WHERE number % 7 = 3"


def rows_query(n: int) -> str:
    return f"SELECT number AS n FROM numbers({n})"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AuthRefusingServer:
    """Answers every request like ClickHouse answers a wrong password, and records what came."""

    def __init__(self):
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - quiet test output
                return

            def do_POST(self):  # noqa: N802 - http.server's naming
                self._refuse()

            def do_GET(self):  # noqa: N802
                self._refuse()

            def _refuse(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                auth = self.headers.get("Authorization", "")
                user = base64.b64decode(auth[6:]).decode().partition(":")[0] if auth.startswith("Basic ") else "default"
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                data = AUTH_FAILED_BODY.format(user=user).encode()
                self.send_response(403)  # exceptionCodeToHTTPStatus: AUTHENTICATION_FAILED -> 403
                self.send_header("Content-Type", "text/plain; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-ClickHouse-Exception-Code", "516")
                self.send_header("X-ClickHouse-Server-Display-Name", "test")
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="ch-auth-refuser", daemon=True).start()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def real_server_config() -> dict | None:
    """Config for the server at ANALYTICS_TEST_CLICKHOUSE_URL, or None."""
    url = os.environ.get("ANALYTICS_TEST_CLICKHOUSE_URL")
    if not url:
        return None
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    return {
        "host": parts.hostname, "port": parts.port or (8443 if secure else 8123),
        "username": parts.username or "default", "password": parts.password or "",
        "database": (parts.path or "/").strip("/") or "default", "secure": secure,
        "verify": os.environ.get("ANALYTICS_TEST_CLICKHOUSE_VERIFY", "1") == "1",
    }


def admin_client(config: dict):
    """A client without the connector's settings: for fixtures and for looking at the server."""
    if config.get("dsn"):
        return clickhouse_connect.get_client(dsn=config["dsn"], query_limit=0)
    return clickhouse_connect.get_client(
        host=config["host"], port=config["port"], username=config["username"], password=config["password"],
        database=config["database"], secure=config["secure"], verify=config["verify"], autogenerate_session_id=False,
    )


@pytest.fixture(scope="session")
def ch_auth_refuser():
    server = AuthRefusingServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clickhouse_db():
    """Where the fixture objects live: chdb, or a throw-away database on the real server.
    Yields (connector config, admin client)."""
    real = real_server_config()
    base = {"dsn": CHDB_DSN, "host": "chdb", "secure": False} if real is None else real
    # Kept open to the end: chdb drops its in-memory engine when its last client closes.
    bootstrap = admin_client(base)
    database = f"analytics_{secrets.token_hex(4)}"
    bootstrap.command(f"CREATE DATABASE {database}")
    config = dict(base, dsn=f"{CHDB_DSN}/{database}") if real is None else dict(real, database=database)
    admin = admin_client(config)
    admin.command("CREATE TABLE accept_canary (id Int32, note String) ENGINE = MergeTree ORDER BY id")
    admin.command("INSERT INTO accept_canary VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma')")
    yield config, admin
    admin.close()
    bootstrap.command(f"DROP DATABASE IF EXISTS {database}")
    bootstrap.close()


def canary_state(admin) -> list:
    return admin.query("SELECT id, note FROM accept_canary ORDER BY id").result_rows


def is_running(admin):
    def check(marker: str = "slow_marker") -> bool:
        result = admin.query(
            "SELECT count() FROM system.processes WHERE position(query, {marker:String}) > 0 "
            "AND query_id != queryID() AND query NOT LIKE '%system.processes%'",
            parameters={"marker": marker},
        )
        return result.result_rows[0][0] > 0

    return check


@pytest.fixture(scope="session")
def clickhouse_target(clickhouse_db, ch_auth_refuser):
    config, admin = clickhouse_db
    on_chdb = "dsn" in config
    return ConnectorTarget(
        driver=Driver.CLICKHOUSE,
        make=ClickHouseConnector,
        config=config,
        bad_credentials={"host": "127.0.0.1", "port": ch_auth_refuser.port, "secure": False,
                         "username": "default", "password": "wrong-password"},
        unreachable={"host": "127.0.0.1", "port": closed_port(), "secure": False, "connect_timeout": 3},
        typed_query=TYPED_QUERY,
        expected=EXPECTED,
        rows_query=rows_query,
        slow_query=SLOW_QUERY,
        write_query="INSERT INTO accept_canary VALUES (4, 'delta')",
        write_check=lambda: canary_state(admin),
        is_running=is_running(admin),
        supports_cancel=not on_chdb,  # chdb ignores query_id: KILL QUERY cannot find the query
        extra={"admin": admin, "on_chdb": on_chdb},
    )


__all__ = ["ch_auth_refuser", "clickhouse_db", "clickhouse_target"]
