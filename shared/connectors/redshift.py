"""Amazon Redshift (redshift_connector).

Redshift speaks the PostgreSQL protocol, so the type OIDs and the SQLSTATE mapping are the
PostgreSQL connector's; the driver is different, and so is how read-only is enforced:

- The driver runs in autocommit mode and every execution opens its own ``BEGIN READ ONLY``
  transaction, which is always rolled back. With the driver's default (autocommit off) it
  sends ``begin transaction`` by itself before the first statement, so a session-level
  ``SET ... READ ONLY`` issued then would only apply to the *next* transaction (and a rollback
  would undo it): the first query on a fresh connection would be read-write. Redshift has no
  startup option for it either (``SET SESSION CHARACTERISTICS`` is deprecated there).
- ``SET LOCAL statement_timeout`` per execution (milliseconds).
- The driver reads a whole result into memory (its Execute message asks for every row), so a
  SELECT runs as ``DECLARE ... CURSOR FOR`` and ``FETCH FORWARD n`` (at most 1000 per fetch,
  the limit on single-node clusters) until ``max_rows + 1`` rows have crossed the wire.
  Other statements (SHOW, EXPLAIN) have small outputs and run directly.
- Cancel is ``pg_cancel_backend(<pid>)`` from a second connection, the pid captured when the
  connection was opened and bound as a parameter.

Vendor docs: https://docs.aws.amazon.com/redshift/latest/dg/r_BEGIN.html,
https://docs.aws.amazon.com/redshift/latest/dg/r_statement_timeout.html,
https://docs.aws.amazon.com/redshift/latest/dg/declare.html,
https://docs.aws.amazon.com/redshift/latest/dg/fetch.html,
https://docs.aws.amazon.com/redshift/latest/dg/PG_CANCEL_BACKEND.html
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import redshift_connector

from shared import errors
from shared.connectors.base import Column, ColumnType, Connector, ResultSet
from shared.connectors.postgres import column_type as postgres_column_type
from shared.connectors.postgres import error_for_sqlstate
from shared.dialects import Driver

logger = logging.getLogger(__name__)

# Redshift's own type OIDs; everything else is PostgreSQL's.
_REDSHIFT_TYPES: dict[int, ColumnType] = {
    4000: ColumnType.JSON,  # SUPER, serialized as JSON text
    6551: ColumnType.STRING,  # VARBYTE: the driver returns it as text
    3000: ColumnType.STRING,  # GEOMETRY (hex EWKB)
    3001: ColumnType.STRING,  # GEOGRAPHY
    1188: ColumnType.INTERVAL,  # INTERVAL YEAR TO MONTH
    1190: ColumnType.INTERVAL,  # INTERVAL DAY TO SECOND
}

# Only a query can be declared as a cursor.
_CURSOR_SAFE = re.compile(r"^\s*(\(\s*)*(select|with)\b", re.IGNORECASE)
_LEADING_COMMENTS = re.compile(r"^\s*(--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)
CURSOR_NAME = "analytics_rows"
# FETCH FORWARD's largest count on single-node clusters.
FETCH_BATCH = 1000
# Extra seconds of the socket timeout over the server's statement timeout.
READ_TIMEOUT_MARGIN = 5

_DRIVER_ERRORS = (redshift_connector.Error, OSError)


def column_type(type_oid: Any) -> ColumnType:
    return _REDSHIFT_TYPES.get(type_oid) or postgres_column_type(type_oid)


def map_error(exc: BaseException, *, connecting: bool = False) -> errors.AnalyticsError:
    """A driver error as a project error: by SQLSTATE when the server sent one (the driver puts
    the ErrorResponse fields in a dict: ``C`` code, ``M`` message), else a connection failure."""
    fields = exc.args[0] if _is_server_error(exc) else None
    if fields is not None:
        code, message = str(fields.get("C", "")), str(fields.get("M", ""))[:1000]
        error = error_for_sqlstate(code, message)
        if connecting and not isinstance(error, errors.ConnectorError):
            return errors.ConnectorError(f"The data source refused the connection: {message}")
        return error
    reason = str(exc.args[0]) if exc.args else type(exc).__name__
    if len(exc.args) > 1 and isinstance(exc.args[1], OSError):
        reason = f"{reason} ({exc.args[1].strerror or exc.args[1]})"
    return errors.ConnectorError(f"Could not connect to the data source: {reason[:300]}")


@dataclass
class _Session:
    conn: Any
    pid: int
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with suppress(*_DRIVER_ERRORS):
                self.conn.close()

    def set_read_timeout(self, seconds: float | None) -> None:
        # The driver's ``timeout`` is a socket timeout for the connection's whole life, not only
        # for connecting; it has no public setter, so it is adjusted on its socket per execution.
        sock = getattr(self.conn, "_usock", None)
        if sock is not None:
            sock.settimeout(seconds)


class _Running:
    """The handle ``cancel`` finds; its lock keeps a late cancel off the connection's next query."""

    def __init__(self, pid: int):
        self.pid = pid
        self.lock = threading.Lock()
        self.finished = False

    def finish(self) -> None:
        with self.lock:
            self.finished = True


class RedshiftConnector(Connector):
    driver: ClassVar[Driver] = Driver.REDSHIFT
    POOL_SIZE: ClassVar[int] = 4
    DEFAULT_PORT: ClassVar[int] = 5439

    def __init__(self, config):
        super().__init__(config)
        self._idle: list[_Session] = []
        self._pool_lock = threading.Lock()

    # -- connections -------------------------------------------------------------------------

    def connect_params(self) -> dict[str, Any]:
        c = self.config
        params: dict[str, Any] = {
            "host": c["host"],
            "port": int(c.get("port") or self.DEFAULT_PORT),
            "database": c["database"],
            "user": c["user"],
            "password": c.get("password") or "",
            "ssl": bool(c.get("ssl", True)),
            "timeout": int(c.get("connect_timeout") or 10),
            "application_name": "analytics-api",
        }
        if c.get("sslmode"):
            params["sslmode"] = c["sslmode"]
        return params

    def _connect(self) -> _Session:
        try:
            conn = redshift_connector.connect(**self.connect_params())
        except _DRIVER_ERRORS as exc:
            raise map_error(exc, connecting=True) from exc
        try:
            conn.autocommit = True  # transactions are opened explicitly, READ ONLY (module docstring)
            cur = conn.cursor()
            cur.execute("SELECT pg_backend_pid()")
            pid = int(cur.fetchone()[0])
        except _DRIVER_ERRORS as exc:
            with suppress(*_DRIVER_ERRORS):
                conn.close()
            raise map_error(exc, connecting=True) from exc
        return _Session(conn, pid)

    def _checkout(self) -> _Session:
        with self._pool_lock:
            session = self._idle.pop() if self._idle else None
        return session or self._connect()

    def _checkin(self, session: _Session, *, reusable: bool) -> None:
        if reusable and not session.closed:
            try:
                session.conn.rollback()
                reusable = not session.conn.in_transaction
            except _DRIVER_ERRORS:
                reusable = False
        if reusable:
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

    def _begin(self, session: _Session, *, timeout: float):
        """A cursor inside a fresh READ ONLY transaction with the statement timeout set."""
        session.set_read_timeout(timeout + READ_TIMEOUT_MARGIN)
        cur = session.conn.cursor()
        cur.execute("BEGIN READ ONLY")
        # SET takes no bind parameters; the value is an int computed here.
        cur.execute(f"SET LOCAL statement_timeout TO {max(1, int(timeout * 1000))}")
        return cur

    def _fetch(self, cur, rendered: str, *, max_rows: int, started: float, timeout: float):
        if _CURSOR_SAFE.match(_LEADING_COMMENTS.sub("", rendered, count=1)):
            cur.execute(f"DECLARE {CURSOR_NAME} CURSOR FOR {rendered}")
            rows: list = []
            description = None
            while len(rows) <= max_rows:
                if rows and time.monotonic() - started >= timeout:
                    # Each FETCH has the statement timeout; the execution as a whole has it too.
                    raise errors.QueryTimeoutError()
                wanted = min(FETCH_BATCH, max_rows + 1 - len(rows))
                cur.execute(f"FETCH FORWARD {wanted} FROM {CURSOR_NAME}")
                description = cur.description
                batch = cur.fetchall()
                rows.extend(batch)
                if len(batch) < wanted:
                    break
        else:
            cur.execute(rendered)
            description = cur.description
            rows = list(cur.fetchmany(max_rows + 1)) if description else []
        columns = [Column(str(d[0]), column_type(d[1])) for d in description or []]
        rows = [tuple(r) for r in rows]
        json_columns = [i for i, c in enumerate(columns) if c.type is ColumnType.JSON]
        if json_columns:
            rows = [_parse_json(row, json_columns) for row in rows]
        return columns, rows[:max_rows], len(rows) > max_rows

    def execute(self, rendered: str, *, max_rows: int, timeout: float, execution_key: str) -> ResultSet:
        started = time.monotonic()
        session = self._checkout()
        reusable = False
        try:
            try:
                cur = self._begin(session, timeout=timeout)
            except _DRIVER_ERRORS as exc:
                # A pooled connection may have died while idle: replace it once.
                if map_error(exc).code != errors.ConnectorError.code:
                    raise
                logger.info("execution %s: pooled connection unusable, reconnecting", execution_key)
                session.close()
                session = self._connect()
                cur = self._begin(session, timeout=timeout)
            running = _Running(session.pid)
            with self.tracking(execution_key, running):
                try:
                    columns, rows, truncated = self._fetch(
                        cur, rendered, max_rows=max_rows, started=started, timeout=timeout
                    )
                finally:
                    running.finish()
            reusable = True
        except _DRIVER_ERRORS as exc:
            # A server error arrives after the driver has read up to ReadyForQuery: the
            # connection is in step and can be rolled back and reused.
            reusable = _is_server_error(exc)
            if isinstance(exc, OSError) and time.monotonic() - started >= timeout:
                # The socket timeout (the safety net) fired before the server's statement timeout.
                self._cancel_backend(session.pid, execution_key)
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
            return self._cancel_backend(running.pid, execution_key)

    def _cancel_backend(self, pid: int, execution_key: str) -> bool:
        try:
            session = self._connect()
        except errors.ConnectorError as exc:
            logger.warning("execution %s: cancel could not connect: %s", execution_key, exc.message)
            return False
        try:
            cur = session.conn.cursor()
            cur.execute("SELECT pg_cancel_backend(%s)", (int(pid),))
            return bool(cur.fetchone()[0])
        except _DRIVER_ERRORS as exc:
            logger.warning("execution %s: pg_cancel_backend failed: %s", execution_key, map_error(exc).message)
            return False
        finally:
            session.close()

    def test(self) -> None:
        session = self._checkout()
        reusable = False
        try:
            cur = self._begin(session, timeout=10)
            cur.execute("SELECT 1")
            cur.fetchone()
            reusable = True
        except _DRIVER_ERRORS as exc:
            raise map_error(exc, connecting=True) from exc
        finally:
            self._checkin(session, reusable=reusable)


def _is_server_error(exc: BaseException) -> bool:
    return bool(exc.args) and isinstance(exc.args[0], dict)


def _parse_json(row: tuple, indexes: list[int]) -> tuple:
    values = list(row)
    for i in indexes:
        if isinstance(values[i], str):
            with suppress(ValueError):
                values[i] = json.loads(values[i], parse_float=Decimal)
    return tuple(values)
