"""ClickHouse (clickhouse-connect, HTTP interface).

Read-only at the server: every query carries ``readonly=1``, which refuses writes, DDL, table
functions that reach outside (``file``, ``url``, ``s3``, ...) and any ``SETTINGS`` clause that
would loosen the limits sent beside it
(https://clickhouse.com/docs/operations/settings/permissions-for-queries). The same request
sets ``max_execution_time`` (the server stops the query), ``max_result_rows = max_rows + 1``
with ``result_overflow_mode = 'break'`` (the server stops producing rows after the block that
crosses the limit), and ``query_id`` = the execution key, so ``cancel`` can ``KILL QUERY`` it
from a second client. Rows are streamed and at most ``max_rows + 1`` are kept.

Clients are pooled per connector; a client that saw an error is closed, never reused.

Testing hook: a config holding ``dsn`` (e.g. ``chdb://memory``) connects with
``clickhouse_connect.get_client(dsn=...)`` instead of host/port, which runs the real
ClickHouse engine in-process with chdb. Secrets never carry it (the secret type has no such
field); tests build connectors with it directly.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError, ProgrammingError
from urllib3 import Timeout
from urllib3.exceptions import ReadTimeoutError

from shared import errors
from shared.connectors.base import Column, ColumnType, Connector, ResultSet
from shared.dialects import Driver

logger = logging.getLogger(__name__)

# ClickHouse exception codes (src/Common/ErrorCodes.cpp).
TIMEOUT_EXCEEDED = 159
TOO_SLOW = 160  # the server's estimate says the query cannot finish within max_execution_time
QUERY_WAS_CANCELLED = 394
READONLY = 164
_TIMEOUT_CODES = frozenset({TIMEOUT_EXCEEDED, TOO_SLOW})
# UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, IP_ADDRESS_NOT_ALLOWED, AUTHENTICATION_FAILED
_AUTH_CODES = frozenset({192, 193, 194, 195, 516})

# Type names by their head (the part before any parenthesis), once Nullable(...) and
# LowCardinality(...) are unwrapped. https://clickhouse.com/docs/sql-reference/data-types
_TYPES: dict[str, ColumnType] = {
    **{f"{p}Int{n}": ColumnType.INTEGER for p in ("", "U") for n in (8, 16, 32, 64, 128, 256)},
    "Float32": ColumnType.FLOAT, "Float64": ColumnType.FLOAT, "BFloat16": ColumnType.FLOAT,
    "Decimal": ColumnType.DECIMAL, "Decimal32": ColumnType.DECIMAL, "Decimal64": ColumnType.DECIMAL,
    "Decimal128": ColumnType.DECIMAL, "Decimal256": ColumnType.DECIMAL,
    "Bool": ColumnType.BOOLEAN,
    "String": ColumnType.STRING, "FixedString": ColumnType.STRING, "Enum": ColumnType.STRING,
    "Enum8": ColumnType.STRING, "Enum16": ColumnType.STRING, "IPv4": ColumnType.STRING, "IPv6": ColumnType.STRING,
    "UUID": ColumnType.UUID,
    "Date": ColumnType.DATE, "Date32": ColumnType.DATE,
    "DateTime": ColumnType.DATETIME, "DateTime32": ColumnType.DATETIME, "DateTime64": ColumnType.DATETIME,
    # Time/Time64 can be negative or past 24h and come back as timedelta: a duration.
    "Time": ColumnType.INTERVAL, "Time64": ColumnType.INTERVAL,
    "Array": ColumnType.ARRAY, "Nested": ColumnType.ARRAY,
    "Map": ColumnType.JSON, "Tuple": ColumnType.JSON, "JSON": ColumnType.JSON, "Object": ColumnType.JSON,
    "Dynamic": ColumnType.JSON, "Variant": ColumnType.JSON, "Point": ColumnType.JSON, "Ring": ColumnType.JSON,
    "LineString": ColumnType.JSON, "MultiLineString": ColumnType.JSON, "Polygon": ColumnType.JSON,
    "MultiPolygon": ColumnType.JSON,
}
_WRAPPERS = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$", re.DOTALL)

# FixedString comes back as bytes by default; it is text in practice (codes, hashes as hex).
_QUERY_FORMATS = {"FixedString": "string"}

KILL_QUERY = "KILL QUERY WHERE query_id = {query_id:String} ASYNC"


def column_type(type_name: str) -> ColumnType:
    name = type_name.strip()
    while match := _WRAPPERS.match(name):
        name = match.group(1).strip()
    head = name.split("(", 1)[0].strip()
    if head.startswith("Interval"):  # IntervalDay etc. decode to a plain count of units
        return ColumnType.INTEGER
    return _TYPES.get(head, ColumnType.UNKNOWN)


def map_error(exc: ClickHouseError) -> errors.AnalyticsError:
    """A clickhouse-connect error as a project error, by ClickHouse exception code."""
    code = getattr(exc, "code", None) or _code_from_text(str(exc))
    if code in _TIMEOUT_CODES or (code is None and _caused_by_read_timeout(exc)):
        return errors.QueryTimeoutError()
    if code == QUERY_WAS_CANCELLED:
        return errors.QueryCancelledError()
    message = server_message(str(exc))
    if code in _AUTH_CODES:
        return errors.ConnectorError(f"The data source refused the credentials: {message}")
    if code is None and isinstance(exc, OperationalError):
        return errors.ConnectorError("Could not connect to the data source")
    if code is None and isinstance(exc, ProgrammingError) and "is readonly" in message:
        # The user's profile is readonly=1, so the per-query limits cannot be set; see the driver doc.
        return errors.ConnectorError(f"The ClickHouse user cannot change query settings: {message}")
    details: dict[str, Any] = {}
    if code is not None:
        details["code"] = code
    if name := _error_name(str(exc)):
        details["name"] = name
    return errors.QueryExecutionError(message, details=details or None)


_CODE = re.compile(r"\bCode:\s*(\d+)")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)")
_EXCEPTION_TEXT = re.compile(r"DB::Exception:\s*(.*)", re.DOTALL)
_CUTS = (re.compile(r"Stack trace.*", re.DOTALL), re.compile(r":?\s*\(in query:.*", re.DOTALL),
         re.compile(r"\s*\(version [^\n]*", re.DOTALL), re.compile(r"\s*\(for url [^\n]*", re.DOTALL))


def _code_from_text(text: str) -> int | None:
    match = _CODE.search(text)
    return int(match.group(1)) if match else None


def _error_name(text: str) -> str | None:
    names = _NAME.findall(text.split("Stack trace", 1)[0])
    return names[-1] if names else None


def server_message(text: str) -> str:
    """The server's own words: no client prefix, no echo of the query, no version or stack trace."""
    match = _EXCEPTION_TEXT.search(text)
    message = match.group(1) if match else text.strip().splitlines()[0] if text.strip() else ""
    for cut in _CUTS:
        message = cut.sub("", message)
    message = " ".join(message.split())
    name = _error_name(text)
    if name and f"({name})" not in message:
        message = f"{message} ({name})"
    return message[:1000] or "ClickHouse returned an error"


def _caused_by_read_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ReadTimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class ClickHouseConnector(Connector):
    driver: ClassVar[Driver] = Driver.CLICKHOUSE
    POOL_SIZE: ClassVar[int] = 4
    CONNECT_TIMEOUT: ClassVar[int] = 10
    # The server stops a query at max_execution_time; the client gives up this much later,
    # only to survive a server that stopped answering (then the query is killed by id).
    READ_TIMEOUT_MARGIN: ClassVar[int] = 30

    def __init__(self, config):
        super().__init__(config)
        self._idle: list[Client] = []
        self._pool_lock = threading.Lock()
        self._control: Client | None = None
        self._control_lock = threading.Lock()

    # -- connections -------------------------------------------------------------------------

    def connect_params(self) -> dict[str, Any]:
        c = self.config
        if c.get("dsn"):
            return {"dsn": c["dsn"], "query_limit": 0}
        secure = bool(c.get("secure", True))
        return {
            "host": c["host"],
            "port": int(c.get("port") or (8443 if secure else 8123)),
            "username": c.get("username") or "default",
            "password": c.get("password") or "",
            "database": c.get("database") or "default",
            "secure": secure,
            "verify": bool(c.get("verify", True)),
            "connect_timeout": int(c.get("connect_timeout") or self.CONNECT_TIMEOUT),
            "send_receive_timeout": 300,
            "query_limit": 0,  # never append LIMIT to the user's SQL
            "query_retries": 0,  # a read is not replayed behind our back with the same query_id
            # No session: session state cannot leak between executions, and a pooled client
            # is never "locked" by a previous query that is still ending at the server.
            "autogenerate_session_id": False,
            "show_clickhouse_errors": "scrub",  # no URL, no server version in messages
            "client_name": "analytics-api",
        }

    def _connect(self) -> Client:
        # get_client talks to the server (version, settings): failing here means the source
        # cannot be reached or refuses us, whatever the code.
        try:
            return clickhouse_connect.get_client(**self.connect_params())
        except ClickHouseError as exc:
            error = map_error(exc)
            if not isinstance(error, errors.ConnectorError):
                error = errors.ConnectorError(f"Could not connect to the data source: {error.message}")
            raise error from exc
        except (ImportError, OSError, ValueError) as exc:
            raise errors.ConnectorError("Could not connect to the data source") from exc

    @contextmanager
    def client(self) -> Iterator[Client]:
        with self._pool_lock:
            client = self._idle.pop() if self._idle else None
        if client is None:
            client = self._connect()
        healthy = False
        try:
            yield client
            healthy = True
        finally:
            self._release(client, healthy)

    def _release(self, client: Client, healthy: bool) -> None:
        # A failed query can leave state behind (chdb keeps a failed query's SETTINGS on the
        # handle; an HTTP response may be half read): such a client is closed, never pooled.
        if healthy:
            with self._pool_lock:
                if len(self._idle) < self.POOL_SIZE:
                    self._idle.append(client)
                    return
        _close_quietly(client)

    def _control_client(self) -> Client:
        """A second client, for KILL QUERY while the execution's client is busy streaming."""
        with self._control_lock:
            if self._control is None:
                self._control = self._connect()
            return self._control

    def close(self) -> None:
        with self._pool_lock:
            idle, self._idle = self._idle, []
        with self._control_lock:
            control, self._control = self._control, None
        for client in [*idle, *([control] if control else [])]:
            _close_quietly(client)

    # -- the interface -------------------------------------------------------------------------

    @staticmethod
    def query_settings(*, max_rows: int, timeout: float, execution_key: str) -> dict[str, Any]:
        """Per-query settings. ``readonly`` comes last: once it applies, no later setting (and
        no SETTINGS clause in the query) may change anything."""
        return {
            "query_id": execution_key,
            "max_execution_time": max(1, math.ceil(timeout)),
            "max_result_rows": max_rows + 1,
            "result_overflow_mode": "break",
            "readonly": 1,
        }

    def execute(self, rendered: str, *, max_rows: int, timeout: float, execution_key: str) -> ResultSet:
        started = time.monotonic()
        settings = self.query_settings(max_rows=max_rows, timeout=timeout, execution_key=execution_key)
        rows: list[tuple[Any, ...]] = []
        try:
            with self.client() as client, self.tracking(execution_key, client):
                _arm_read_timeout(client, timeout + self.READ_TIMEOUT_MARGIN)
                with client.query_row_block_stream(rendered, settings=settings, query_formats=_QUERY_FORMATS) as stream:
                    source = stream.source
                    columns = [
                        Column(name, column_type(ch_type.name))
                        for name, ch_type in zip(source.column_names, source.column_types, strict=True)
                    ]
                    for block in stream:
                        rows.extend(tuple(r) for r in block[: max_rows + 1 - len(rows)])
                        if len(rows) > max_rows:
                            break
        except ClickHouseError as exc:
            error = map_error(exc)
            if isinstance(error, errors.QueryTimeoutError) and _caused_by_read_timeout(exc):
                self._kill(execution_key)  # the server did not stop it in time: make it stop
            logger.info("execution %s: ClickHouse error %s", execution_key, getattr(exc, "code", None))
            raise error from exc
        return ResultSet(
            columns=columns,
            rows=rows[:max_rows],
            truncated=len(rows) > max_rows,
            elapsed_ms=(time.monotonic() - started) * 1000,
        )

    def cancel(self, execution_key: str) -> bool:
        # The query id is the execution key, so this works from any process holding the secret,
        # not only from the one streaming the result.
        return self._kill(execution_key)

    def _kill(self, execution_key: str) -> bool:
        try:
            control = self._control_client()
        except errors.AnalyticsError as exc:
            logger.warning("execution %s: no connection for KILL QUERY: %s", execution_key, exc.message)
            return False
        try:
            output = control.raw_query(KILL_QUERY, parameters={"query_id": execution_key}, fmt="TabSeparated")
        except ClickHouseError as exc:
            logger.warning("execution %s: KILL QUERY failed: %s", execution_key, map_error(exc).message)
            with self._control_lock:  # reconnect next time rather than reuse a broken client
                if self._control is control:
                    self._control = None
            _close_quietly(control)
            return False
        # One line per query found ("waiting" / "finished" ...); nothing when none runs.
        return bool(output.strip())

    def test(self) -> None:
        try:
            with self.client() as client:
                client.query("SELECT 1", settings=self.query_settings(max_rows=1, timeout=10, execution_key=_test_id()))
        except ClickHouseError as exc:
            error = map_error(exc)
            if not isinstance(error, errors.ConnectorError):
                error = errors.ConnectorError(f"The data source refused a trivial read: {error.message}")
            raise error from exc


def _arm_read_timeout(client: Client, seconds: float) -> None:
    # HttpClient exposes its urllib3 timeout as a property; the in-process chdb client has none.
    current = getattr(client, "timeout", None)
    if isinstance(current, Timeout):
        client.timeout = Timeout(connect=current.connect_timeout, read=seconds)


def _close_quietly(client: Client) -> None:
    try:
        client.close()
    except Exception as exc:  # closing must never mask the error that got us here
        logger.debug("closing a ClickHouse client failed: %s", exc)


def _test_id() -> str:
    return f"test_{uuid.uuid4().hex}"
