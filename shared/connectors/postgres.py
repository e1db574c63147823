"""PostgreSQL (psycopg2).

Read-only twice over: the session starts with ``default_transaction_read_only=on`` (a startup
option, so ``RESET ALL`` restores it and a pooled connection can never be left read-write)
and every execution runs in a ``READ ONLY`` transaction that is always rolled back. The
statement timeout is ``SET LOCAL`` per execution. Rows stream from a server-side cursor,
``max_rows + 1`` at most. Cancel is libpq's cancel request for the running backend, sent
from the watcher thread (https://www.postgresql.org/docs/current/libpq-cancel.html).
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from shared import errors
from shared.connectors.base import Column, ColumnType, Connector, ResultSet
from shared.dialects import Driver

logger = logging.getLogger(__name__)

# Type OIDs from pg_type.h; arrays of any of them map to ARRAY.
_TYPES: dict[int, ColumnType] = {
    16: ColumnType.BOOLEAN,
    20: ColumnType.INTEGER, 21: ColumnType.INTEGER, 23: ColumnType.INTEGER, 26: ColumnType.INTEGER,
    700: ColumnType.FLOAT, 701: ColumnType.FLOAT,
    1700: ColumnType.DECIMAL,
    18: ColumnType.STRING, 19: ColumnType.STRING, 25: ColumnType.STRING, 1042: ColumnType.STRING,
    1043: ColumnType.STRING, 790: ColumnType.STRING,
    1082: ColumnType.DATE,
    1114: ColumnType.DATETIME, 1184: ColumnType.DATETIME,
    1083: ColumnType.TIME, 1266: ColumnType.TIME,
    1186: ColumnType.INTERVAL,
    17: ColumnType.BINARY,
    114: ColumnType.JSON, 3802: ColumnType.JSON,
    2950: ColumnType.UUID,
}
_ARRAY_TYPES = {
    1000, 1001, 1005, 1007, 1016, 1021, 1022, 1231, 1009, 1014, 1015, 1182, 1115, 1185, 1183, 1270, 199, 3807,
    2951, 1028,
}

# SQLSTATE classes that mean "the data source can't be reached or refuses us".
_CONNECTOR_CLASSES = ("08", "28", "3D", "53", "57P")
QUERY_CANCELED = "57014"

# Only SELECT-like statements can run through a server-side cursor (DECLARE ... CURSOR FOR).
_CURSOR_SAFE = re.compile(r"^\s*(\(\s*)*(select|with|values|table)\b", re.IGNORECASE)
_LEADING_COMMENTS = re.compile(r"^\s*(--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)


def column_type(type_code: Any) -> ColumnType:
    if type_code in _ARRAY_TYPES:
        return ColumnType.ARRAY
    return _TYPES.get(type_code, ColumnType.UNKNOWN)


def map_error(exc: psycopg2.Error) -> errors.AnalyticsError:
    """A psycopg2 error as a project error, by SQLSTATE."""
    code = exc.pgcode or ""
    message = _primary_message(exc)
    if not code and isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        return errors.ConnectorError(f"Could not connect to the data source: {message}")
    return error_for_sqlstate(code, message)


def error_for_sqlstate(code: str, message: str) -> errors.AnalyticsError:
    """A server error of the PostgreSQL protocol as a project error (shared with Redshift)."""
    if code == QUERY_CANCELED:
        return errors.QueryTimeoutError()
    if code.startswith(_CONNECTOR_CLASSES):
        return errors.ConnectorError(f"The data source refused the connection: {message}")
    return errors.QueryExecutionError(message, details={"sqlstate": code} if code else None)


def _primary_message(exc: psycopg2.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag else None
    if not primary:
        lines = str(exc).strip().splitlines()
        primary = lines[0] if lines else type(exc).__name__
    return primary[:1000]


class _Running:
    """The handle ``cancel`` finds: the connection while the execution holds it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conn: psycopg2.extensions.connection | None = None

    @contextmanager
    def on(self, conn: psycopg2.extensions.connection) -> Iterator[None]:
        with self.lock:
            self.conn = conn
        try:
            yield
        finally:
            with self.lock:
                self.conn = None


class PostgresConnector(Connector):
    driver: ClassVar[Driver] = Driver.POSTGRES
    POOL_SIZE: ClassVar[int] = 4
    DEFAULT_PORT: ClassVar[int] = 5432

    def __init__(self, config):
        super().__init__(config)
        self._idle: list[psycopg2.extensions.connection] = []
        self._pool_lock = threading.Lock()

    # -- connections -------------------------------------------------------------------------

    def connect_params(self) -> dict[str, Any]:
        c = self.config
        return {
            "host": c["host"],
            "port": int(c.get("port") or self.DEFAULT_PORT),
            "dbname": c["database"],
            "user": c["user"],
            "password": c.get("password") or "",
            "sslmode": c.get("sslmode") or "prefer",
            "connect_timeout": int(c.get("connect_timeout") or 10),
            "application_name": "analytics-api",
        }

    def _connect(self) -> psycopg2.extensions.connection:
        params = self.connect_params()
        # standard_conforming_strings pinned on: the template layer escapes values for standard
        # strings, and a server or role configured otherwise would read backslashes differently.
        params["options"] = "-c default_transaction_read_only=on -c standard_conforming_strings=on"
        try:
            conn = psycopg2.connect(**params)
        except psycopg2.Error as exc:
            raise map_error(exc) from exc
        conn.set_session(readonly=True, autocommit=False)
        return conn

    @contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        with self._pool_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._connect()
        healthy = False
        try:
            yield conn
            healthy = True
        finally:
            self._release(conn, healthy)

    def _release(self, conn: psycopg2.extensions.connection, healthy: bool) -> None:
        try:
            if not conn.closed:
                conn.rollback()
        except psycopg2.Error:
            healthy = False
        if healthy and not conn.closed and conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            with self._pool_lock:
                if len(self._idle) < self.POOL_SIZE:
                    self._idle.append(conn)
                    return
        try:
            conn.close()
        except psycopg2.Error:
            pass

    def close(self) -> None:
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            try:
                conn.close()
            except psycopg2.Error:
                pass

    # -- the interface -------------------------------------------------------------------------

    def prepare(self, cur, *, timeout: float) -> None:
        """Per-transaction settings; a child adds what differs (the internal connector)."""
        # RESET ALL brings back the startup settings (read-only) whatever a previous use did.
        # One round trip for both.
        cur.execute("RESET ALL; SET LOCAL statement_timeout = %s", (int(timeout * 1000),))

    def execute(self, rendered: str, *, max_rows: int, timeout: float, execution_key: str) -> ResultSet:
        started = time.monotonic()
        try:
            running = _Running()
            with self.connection() as conn, self.tracking(execution_key, running), running.on(conn):
                with conn.cursor() as cur:
                    self.prepare(cur, timeout=timeout)
                if _CURSOR_SAFE.match(_LEADING_COMMENTS.sub("", rendered, count=1)):
                    cur = conn.cursor(name=f"c_{execution_key[-16:].replace('-', '_')}")
                    cur.itersize = min(max_rows + 1, 2000)
                else:
                    cur = conn.cursor()  # EXPLAIN / SHOW: small outputs, not DECLARE-able
                with cur:
                    cur.execute(rendered)
                    rows = cur.fetchmany(max_rows + 1)
                    columns = [Column(d.name, column_type(d.type_code)) for d in cur.description or []]
        except psycopg2.Error as exc:
            raise map_error(exc) from exc
        truncated = len(rows) > max_rows
        return ResultSet(
            columns=columns,
            rows=[tuple(r) for r in rows[:max_rows]],
            truncated=truncated,
            elapsed_ms=(time.monotonic() - started) * 1000,
        )

    def cancel(self, execution_key: str) -> bool:
        running = self.running_handle(execution_key)
        if running is None:
            return False
        # Under the lock: once the execution has let go of its connection, a late cancel must not
        # reach the next query that runs on it from the pool.
        with running.lock:
            if running.conn is None:
                return False
            try:
                running.conn.cancel()
            except psycopg2.Error as exc:
                logger.warning("execution %s: cancel request failed: %s", execution_key, exc)
                return False
        return True

    def test(self) -> None:
        try:
            with self.connection() as conn, conn.cursor() as cur:
                self.prepare(cur, timeout=10)
                cur.execute("SELECT 1")
                cur.fetchone()
        except psycopg2.Error as exc:
            raise map_error(exc) from exc
