"""MySQL 8 and MariaDB (mysqlclient, ``MySQLdb``).

Read-only at the database: every connection starts with ``SET SESSION TRANSACTION READ ONLY``
(init command) and every execution sets it again, then runs in ``START TRANSACTION READ ONLY``
that is always rolled back. A write, even one hidden in a stored function, fails with 1792.
The statement timeout is the server's: ``max_statement_time`` (seconds) on MariaDB,
``max_execution_time`` (milliseconds) on MySQL, chosen from ``@@version`` once per connection;
the client's read timeout, a little longer, is only a safety net.

Rows stream through an unbuffered cursor, ``max_rows + 1`` at most. Closing an unbuffered
cursor reads and throws away every remaining row, so a truncated result closes the
connection instead (the server stops at its next write) and that connection is not pooled.
Cancel is ``KILL QUERY <thread id>`` from a second connection; the victim gets 1317.

Multi-statements and ``LOAD DATA LOCAL`` are disabled on the client, so one execution is one
statement and can never read a file of the worker.

Vendor docs: https://dev.mysql.com/doc/refman/8.0/en/set-transaction.html,
https://mariadb.com/kb/en/aborting-statements/, https://dev.mysql.com/doc/refman/8.0/en/kill.html,
https://dev.mysql.com/doc/refman/8.0/en/load-data-local-security.html
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import MySQLdb
import MySQLdb.cursors
from MySQLdb.constants import FIELD_TYPE, FLAG
from MySQLdb.converters import conversions

from shared import errors
from shared.connectors.base import Column, ColumnType, Connector, ResultSet
from shared.dialects import Driver

logger = logging.getLogger(__name__)

# Vendor error codes: https://dev.mysql.com/doc/mysql-errors/8.0/en/ and
# https://mariadb.com/kb/en/mariadb-error-code-reference/
ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION = 1792
ER_QUERY_INTERRUPTED = 1317
ER_NO_SUCH_THREAD = 1094
CR_SERVER_LOST = 2013
# The data source can't be reached or refuses us: access denied (1044, 1045, 1698), unknown
# database (1049), too many connections (1040, 1203), host blocked or not allowed (1129, 1130),
# client-side connect failures (2002, 2003, 2005), server gone (2006), TLS and auth plugin (2026, 2059, 2061).
_CONNECTION_ERRORS = frozenset({1040, 1044, 1045, 1049, 1129, 1130, 1203, 1698, 2002, 2003, 2005, 2006, 2026, 2059, 2061})
# MariaDB max_statement_time (1969), MySQL max_execution_time (3024).
_TIMEOUT_ERRORS = frozenset({1969, 3024})

# Extra seconds of the client read timeout over the server's statement timeout.
READ_TIMEOUT_MARGIN = 5

_NUMERIC_TYPES: dict[int, ColumnType] = {
    FIELD_TYPE.DECIMAL: ColumnType.DECIMAL,
    FIELD_TYPE.NEWDECIMAL: ColumnType.DECIMAL,
    FIELD_TYPE.TINY: ColumnType.INTEGER,  # BOOLEAN is TINYINT(1) and holds -128..127: stays an integer
    FIELD_TYPE.SHORT: ColumnType.INTEGER,
    FIELD_TYPE.LONG: ColumnType.INTEGER,
    FIELD_TYPE.LONGLONG: ColumnType.INTEGER,
    FIELD_TYPE.INT24: ColumnType.INTEGER,
    FIELD_TYPE.YEAR: ColumnType.INTEGER,
    FIELD_TYPE.BIT: ColumnType.INTEGER,
    FIELD_TYPE.FLOAT: ColumnType.FLOAT,
    FIELD_TYPE.DOUBLE: ColumnType.FLOAT,
    FIELD_TYPE.DATE: ColumnType.DATE,
    14: ColumnType.DATE,  # NEWDATE
    FIELD_TYPE.DATETIME: ColumnType.DATETIME,
    FIELD_TYPE.TIMESTAMP: ColumnType.DATETIME,
    FIELD_TYPE.TIME: ColumnType.TIME,
    FIELD_TYPE.JSON: ColumnType.JSON,  # MySQL only: MariaDB's JSON is LONGTEXT on the wire
    FIELD_TYPE.GEOMETRY: ColumnType.BINARY,  # WKB with a SRID prefix
}
# Text or binary depending on the character set (63 = binary).
_STRING_TYPES = frozenset({
    FIELD_TYPE.VARCHAR, FIELD_TYPE.VAR_STRING, FIELD_TYPE.STRING, FIELD_TYPE.ENUM, FIELD_TYPE.SET,
    FIELD_TYPE.TINY_BLOB, FIELD_TYPE.MEDIUM_BLOB, FIELD_TYPE.LONG_BLOB, FIELD_TYPE.BLOB,
})

_TIME_OF_DAY = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")


def _time_value(text: str) -> dt.time | str:
    """TIME is a duration (-838:59:59 .. 838:59:59): a time of day when it is one, else its text."""
    match = _TIME_OF_DAY.match(text)
    if match and int(match[1]) < 24:
        return dt.time(int(match[1]), int(match[2]), int(match[3]), int((match[4] or "0").ljust(6, "0")))
    return text


def _bit_value(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


_CONVERSIONS = {**conversions, FIELD_TYPE.TIME: _time_value, FIELD_TYPE.BIT: _bit_value}


def column_type(type_code: int, flags: int, values: Sequence[Any]) -> ColumnType:
    """A result column's type. mysqlclient hides the character set, but it decodes text and
    keeps binary (charset 63) as bytes, so a string column with the BINARY flag (also set for
    ``*_bin`` collations) is binary when its values are bytes."""
    if type_code in _STRING_TYPES:
        if not flags & FLAG.BINARY:
            return ColumnType.STRING
        sample = next((v for v in values if v is not None), None)
        return ColumnType.STRING if isinstance(sample, str) else ColumnType.BINARY
    return _NUMERIC_TYPES.get(type_code, ColumnType.UNKNOWN)


def _code_and_message(exc: MySQLdb.Error) -> tuple[int, str]:
    args = exc.args
    if len(args) >= 2 and isinstance(args[0], int):
        return args[0], str(args[1])[:1000]
    return 0, (str(args[0]) if args else type(exc).__name__)[:1000]


def map_error(exc: MySQLdb.Error, *, connecting: bool = False) -> errors.AnalyticsError:
    """A MySQLdb error as a project error, by vendor code."""
    code, message = _code_and_message(exc)
    if connecting or code in _CONNECTION_ERRORS:
        return errors.ConnectorError(f"Could not connect to the data source: {message}" if message else None)
    if code == CR_SERVER_LOST:
        return errors.ConnectorError("Lost the connection to the data source during the query")
    if code in _TIMEOUT_ERRORS:
        return errors.QueryTimeoutError()
    if code == ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION:
        return errors.QueryExecutionError(
            "The data source refused a write: the session is read-only", details={"vendor_code": code}
        )
    if code == ER_QUERY_INTERRUPTED:
        return errors.QueryExecutionError("Query execution was interrupted", details={"vendor_code": code})
    return errors.QueryExecutionError(message or None, details={"vendor_code": code} if code else None)


@dataclass
class _Session:
    """One pooled connection and what is known about it."""

    conn: Any
    thread_id: int
    mariadb: bool
    read_timeout: int
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with suppress(MySQLdb.Error):
                self.conn.close()


class _Running:
    """The handle ``cancel`` finds: a thread id, and a lock so that a KILL QUERY can never
    land on the next query of the same (pooled) connection."""

    def __init__(self, thread_id: int):
        self.thread_id = thread_id
        self.lock = threading.Lock()
        self.finished = False

    def finish(self) -> None:
        with self.lock:
            self.finished = True


class MySQLConnector(Connector):
    driver: ClassVar[Driver] = Driver.MYSQL
    POOL_SIZE: ClassVar[int] = 4
    DEFAULT_PORT: ClassVar[int] = 3306

    def __init__(self, config):
        super().__init__(config)
        self._idle: list[_Session] = []
        self._pool_lock = threading.Lock()

    # -- connections -------------------------------------------------------------------------

    def connect_params(self, *, read_timeout: int) -> dict[str, Any]:
        c = self.config
        params: dict[str, Any] = {
            "host": c["host"],
            "port": int(c.get("port") or self.DEFAULT_PORT),
            "database": c["database"],
            "user": c["user"],
            "password": c.get("password") or "",
            "connect_timeout": int(c.get("connect_timeout") or 10),
            "read_timeout": read_timeout,
            "write_timeout": read_timeout,
            "charset": "utf8mb4",
            "conv": _CONVERSIONS,
            # MYSQL_OPT_LOCAL_INFILE=0: the client refuses the server's request to send a local
            # file, whatever the query says (LOAD DATA LOCAL, or a malicious server).
            "local_infile": 0,
            # One statement per execution: "SELECT 1; DELETE ..." is a syntax error.
            "multi_statements": False,
            "autocommit": False,
            "init_command": "SET SESSION TRANSACTION READ ONLY",
        }
        if c.get("ssl"):
            params["ssl_mode"] = "REQUIRED"
        return params

    def _connect(self, *, read_timeout: int) -> _Session:
        try:
            conn = MySQLdb.connect(**self.connect_params(read_timeout=read_timeout))
        except MySQLdb.Error as exc:
            raise map_error(exc, connecting=True) from exc
        cipher = None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@version, CONNECTION_ID()")
                version, thread_id = cur.fetchone()
                if self.config.get("ssl"):
                    cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                    cipher = (cur.fetchone() or (None, None))[1]
        except MySQLdb.Error as exc:
            with suppress(MySQLdb.Error):
                conn.close()
            raise map_error(exc, connecting=True) from exc
        session = _Session(conn, int(thread_id), "mariadb" in str(version).lower(), read_timeout)
        if self.config.get("ssl") and not cipher:
            # Built against libmariadb, mysqlclient's ssl_mode=REQUIRED does not refuse a server
            # without TLS (only VERIFY_CA does, and the secret has no CA), so check before any query.
            session.close()
            raise errors.ConnectorError("Could not connect to the data source: TLS is required but was not negotiated")
        return session

    def _checkout(self, timeout: float) -> _Session:
        """A live connection whose read timeout covers ``timeout``: the smallest such idle one
        (checked with a ping), or a new one."""
        needed = math.ceil(timeout) + READ_TIMEOUT_MARGIN
        while True:
            with self._pool_lock:
                fitting = [s for s in self._idle if s.read_timeout >= needed]
                session = min(fitting, key=lambda s: s.read_timeout) if fitting else None
                if session is not None:
                    self._idle.remove(session)
            if session is None:
                return self._connect(read_timeout=needed)
            try:
                session.conn.ping()
                return session
            except MySQLdb.Error:
                session.close()

    def _checkin(self, session: _Session, *, reusable: bool) -> None:
        if reusable and not session.closed:
            try:
                session.conn.rollback()
            except MySQLdb.Error:
                reusable = False
        if reusable and not session.closed:
            with self._pool_lock:
                if len(self._idle) < self.POOL_SIZE:
                    self._idle.append(session)
                    return
        session.close()

    def close(self) -> None:
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for session in idle:
            session.close()

    # -- the interface -------------------------------------------------------------------------

    def _prepare(self, session: _Session, *, timeout: float) -> None:
        with session.conn.cursor() as cur:
            # Again per execution: whatever a previous use of this connection did to the session.
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            if session.mariadb:
                cur.execute("SET SESSION max_statement_time = %s", (float(timeout),))
            else:
                cur.execute("SET SESSION max_execution_time = %s", (max(1, int(timeout * 1000)),))
            cur.execute("START TRANSACTION READ ONLY")

    def _fetch(self, session: _Session, rendered: str, max_rows: int) -> tuple[list[Column], list[tuple], bool]:
        cur = session.conn.cursor(MySQLdb.cursors.SSCursor)
        drained = False
        try:
            cur.execute(rendered)
            description = cur.description or ()
            flags = cur.description_flags or ()
            rows = list(cur.fetchmany(max_rows + 1)) if description else []
            drained = len(rows) <= max_rows
        finally:
            if drained:
                cur.close()
            else:
                # Truncated or failed: closing the cursor would read every remaining row, so
                # close the connection first (the server aborts the statement on its next write).
                session.close()
                with suppress(MySQLdb.Error):
                    cur.close()
        truncated = len(rows) > max_rows
        rows = rows[:max_rows]
        columns = []
        for index, (desc, flag) in enumerate(zip(description, flags, strict=False)):
            kind = column_type(desc[1], flag, [row[index] for row in rows])
            columns.append(Column(desc[0], kind))
        json_columns = [i for i, c in enumerate(columns) if c.type is ColumnType.JSON]
        if json_columns:
            rows = [_parse_json(row, json_columns) for row in rows]
        return columns, rows, truncated

    def execute(self, rendered: str, *, max_rows: int, timeout: float, execution_key: str) -> ResultSet:
        started = time.monotonic()
        session = self._checkout(timeout)
        reusable = False
        try:
            self._prepare(session, timeout=timeout)
            running = _Running(session.thread_id)
            with self.tracking(execution_key, running):
                try:
                    columns, rows, truncated = self._fetch(session, rendered, max_rows)
                finally:
                    running.finish()
            reusable = not truncated
        except MySQLdb.Error as exc:
            code, _ = _code_and_message(exc)
            if code == CR_SERVER_LOST and time.monotonic() - started >= timeout:
                # The client's read timeout fired before the server stopped the statement.
                logger.warning("execution %s: client read timeout, killing thread %s", execution_key, session.thread_id)
                self._kill_query(session.thread_id, execution_key)
                raise errors.QueryTimeoutError() from exc
            raise map_error(exc) from exc
        finally:
            self._checkin(session, reusable=reusable)
        return ResultSet(
            columns=columns, rows=rows, truncated=truncated, elapsed_ms=(time.monotonic() - started) * 1000
        )

    def cancel(self, execution_key: str) -> bool:
        running = self.running_handle(execution_key)
        if running is None:
            return False
        with running.lock:
            if running.finished:
                return False
            return self._kill_query(running.thread_id, execution_key)

    def _kill_query(self, thread_id: int, execution_key: str) -> bool:
        try:
            session = self._connect(read_timeout=int(self.config.get("connect_timeout") or 10) + READ_TIMEOUT_MARGIN)
        except errors.ConnectorError as exc:
            logger.warning("execution %s: cancel could not connect: %s", execution_key, exc.message)
            return False
        try:
            with session.conn.cursor() as cur:
                cur.execute("KILL QUERY %s", (int(thread_id),))
            return True
        except MySQLdb.Error as exc:
            code, message = _code_and_message(exc)
            if code != ER_NO_SUCH_THREAD:
                logger.warning("execution %s: KILL QUERY failed: %s %s", execution_key, code, message)
            return False
        finally:
            session.close()

    def test(self) -> None:
        session = self._checkout(10)
        reusable = False
        try:
            self._prepare(session, timeout=10)
            with session.conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
            reusable = True
        except MySQLdb.Error as exc:
            raise map_error(exc, connecting=True) from exc
        finally:
            self._checkin(session, reusable=reusable)


def _parse_json(row: tuple, indexes: list[int]) -> tuple:
    """JSON arrives as text; rows carry it as a structure (decimals kept exact)."""
    values = list(row)
    for i in indexes:
        if isinstance(values[i], (str, bytes)):
            with suppress(ValueError):
                values[i] = json.loads(values[i], parse_float=Decimal)
    return tuple(values)
