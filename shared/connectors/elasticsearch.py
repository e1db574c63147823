"""Elasticsearch (the official ``elasticsearch`` client, 9.x).

One endpoint only: ``POST /{index}/_search`` where ``index`` is the secret's index pattern,
never anything from the query (the validator refuses body keys that could pick an index, and
a point-in-time body fails against an explicit index). The rendered text is the JSON body.

Limits in the driver: ``size`` is lowered to ``min(max_rows, max_result_rows)`` (a smaller
``size`` is kept; an absent one means "as many as allowed"); the body's ``timeout`` and the
client's ``request_timeout`` come from the execution timeout. ES answers a search that ran
out of time with partial hits and ``timed_out: true``: that is a QueryTimeoutError, never a
short result. When the client gives up first, the search task is cancelled at the server.
https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-search

Rows: one per hit, ``_id``, ``_index``, ``_score``, then the ``_source`` fields flattened with
dots (``user.name``); columns are the union of keys in order of first appearance. Aggregations
are returned beside the rows, as Elasticsearch sends them: ``extra = {"aggregations": {...}}``.

Cancel: each search carries ``X-Opaque-Id`` = the execution key; ``cancel`` finds the search
task with that header in the tasks API and cancels it, from a second client.
https://www.elastic.co/docs/api/doc/elasticsearch/group/endpoint-tasks
"""
from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from elasticsearch import (
    ApiError,
    ConnectionTimeout,
    Elasticsearch,
    NotFoundError,
    TransportError,
    UnsupportedProductError,
)
from urllib3.exceptions import ReadTimeoutError

from shared import errors
from shared.connectors.base import Column, ColumnType, Connector, ResultSet
from shared.dialects import Driver

logger = logging.getLogger(__name__)

META_COLUMNS: tuple[tuple[str, ColumnType], ...] = (
    ("_id", ColumnType.STRING),
    ("_index", ColumnType.STRING),
    ("_score", ColumnType.FLOAT),
)
_SEARCH_ACTION = "indices:data/read/search"
_ACCEPT_JSON = {"accept": "application/json"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$")


# -- errors ------------------------------------------------------------------------------------


def map_error(exc: Exception) -> errors.AnalyticsError:
    """A client error as a project error: by HTTP status and Elasticsearch error type."""
    if isinstance(exc, ConnectionTimeout):
        if _read_timeout(exc):
            return errors.QueryTimeoutError()
        return errors.ConnectorError("Could not connect to the data source: connection timed out")
    if isinstance(exc, TransportError):  # refused, reset, TLS, DNS: nothing usable came back
        return errors.ConnectorError("Could not connect to the data source")
    if isinstance(exc, UnsupportedProductError):
        return errors.ConnectorError("The data source is not Elasticsearch")
    if isinstance(exc, ApiError):
        types, reason = _root_cause(exc.body)
        if "task_cancelled_exception" in types:
            return errors.QueryCancelledError()
        status = exc.meta.status if exc.meta is not None else 0
        details = {"status": status, "type": types[0]} if types else {"status": status}
        if status in (401, 403):
            return errors.ConnectorError(f"The data source refused the credentials: {reason}", details=details)
        if status in (502, 503):
            return errors.ConnectorError(f"The data source is unavailable: {reason}", details=details)
        if status == 408 or "search_timeout_exception" in types:
            return errors.QueryTimeoutError()
        return errors.QueryExecutionError(reason, details=details)
    return errors.QueryExecutionError("Elasticsearch returned an unexpected error")


def _read_timeout(exc: ConnectionTimeout) -> bool:
    """Did the server take too long to answer (vs. never accepting the connection)? The
    transport raises its own error ``from`` the urllib3 one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ReadTimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _root_cause(body: Any) -> tuple[list[str], str]:
    """Error types (root causes first, then the top level) and the most specific reason."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return [], (str(error)[:1000] if error else "Elasticsearch returned an error")
    causes = [c for c in error.get("root_cause") or [] if isinstance(c, Mapping)]
    chain, node = [], error.get("caused_by")
    while isinstance(node, Mapping) and len(chain) < 10:
        chain.append(node)
        node = node.get("caused_by")
    ordered = [*causes, *reversed(chain), error]
    types = [str(c["type"]) for c in ordered if c.get("type")]
    reason = next((str(c["reason"]) for c in ordered if c.get("reason")), "Elasticsearch returned an error")
    return types, reason[:1000]


# -- rows ----------------------------------------------------------------------------------------


def flatten(source: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """``{"user": {"name": "a"}}`` -> ``("user.name", "a")``; arrays stay values."""
    for key, value in source.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{name}.")
        else:
            yield name, value


def infer_type(values: Iterable[Any]) -> ColumnType:
    """One type per column from its non-null values; mixed kinds are JSON (values untouched)."""
    kinds: set[ColumnType] = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            kinds.add(ColumnType.BOOLEAN)
        elif isinstance(value, int):
            kinds.add(ColumnType.INTEGER)
        elif isinstance(value, float):
            kinds.add(ColumnType.FLOAT)
        elif isinstance(value, str):
            kinds.add(ColumnType.DATE if _DATE.match(value) else ColumnType.DATETIME if _DATETIME.match(value) else ColumnType.STRING)
        elif isinstance(value, list):
            kinds.add(ColumnType.ARRAY)
        else:
            kinds.add(ColumnType.JSON)
    if not kinds:
        return ColumnType.UNKNOWN
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {ColumnType.INTEGER, ColumnType.FLOAT}:
        return ColumnType.FLOAT
    if kinds == {ColumnType.DATE, ColumnType.DATETIME}:
        return ColumnType.DATETIME
    if kinds <= {ColumnType.STRING, ColumnType.DATE, ColumnType.DATETIME}:
        return ColumnType.STRING
    return ColumnType.JSON


def hits_to_rows(hits: list[Mapping[str, Any]]) -> tuple[list[Column], list[tuple[Any, ...]]]:
    flat: list[dict[str, Any]] = []
    names: dict[str, None] = {}  # insertion-ordered set: first appearance wins the position
    for hit in hits:
        source = hit.get("_source")
        fields = dict(flatten(source)) if isinstance(source, Mapping) else {}
        flat.append(fields)
        for name in fields:
            names.setdefault(name, None)
    meta = [[hit.get(name) for hit in hits] for name, _ in META_COLUMNS]
    source_columns = [[fields.get(name) for fields in flat] for name in names]
    columns = [Column(name, kind) for name, kind in META_COLUMNS]
    columns += [Column(name, infer_type(values)) for name, values in zip(names, source_columns, strict=True)]
    rows = list(zip(*meta, *source_columns, strict=True)) if hits else []
    return columns, rows


# -- the connector ---------------------------------------------------------------------------


class ElasticsearchConnector(Connector):
    driver: ClassVar[Driver] = Driver.ELASTICSEARCH
    CONNECTIONS: ClassVar[int] = 8
    CONTROL_TIMEOUT: ClassVar[float] = 10.0  # test() and the tasks API calls of cancel
    # The body timeout lets ES answer "timed_out" itself; the client waits this much longer
    # before giving up (and cancelling the task).
    REQUEST_TIMEOUT_MARGIN: ClassVar[float] = 1.0

    def __init__(self, config):
        super().__init__(config)
        self._clients: dict[str, Elasticsearch] = {}
        self._clients_lock = threading.Lock()

    # -- clients -------------------------------------------------------------------------------

    def client_params(self) -> dict[str, Any]:
        c = self.config
        params: dict[str, Any] = {
            "hosts": [{"host": c["host"], "port": int(c.get("port") or 9200), "scheme": c.get("scheme") or "https"}],
            "verify_certs": bool(c.get("verify_certs", True)),
            "request_timeout": self.CONTROL_TIMEOUT,
            "connections_per_node": self.CONNECTIONS,
            # One retry, on connection errors only (a stale pooled connection); never on a
            # timeout (the search may still run) and never on a status.
            "max_retries": 1,
            "retry_on_timeout": False,
            "retry_on_status": (),
        }
        if c.get("api_key"):
            params["api_key"] = c["api_key"]
        elif c.get("username"):
            params["basic_auth"] = (c["username"], c.get("password") or "")
        if c.get("headers"):
            params["headers"] = {str(k): str(v) for k, v in dict(c["headers"]).items()}
        return params

    def _client(self, role: str) -> Elasticsearch:
        """``search`` runs the queries; ``control`` is the second client, for the tasks API,
        so a cancel never waits for a connection held by a running search."""
        with self._clients_lock:
            client = self._clients.get(role)
            if client is None:
                try:
                    client = Elasticsearch(**self.client_params())
                except (ValueError, TypeError, KeyError) as exc:
                    raise errors.ConnectorError("The Elasticsearch connection settings are not valid") from exc
                self._clients[role] = client
            return client

    def close(self) -> None:
        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # -- the interface -------------------------------------------------------------------------

    def search_body(self, rendered: str, *, max_rows: int, timeout: float) -> tuple[dict[str, Any], bool]:
        """The body sent, and whether ``size`` was set by the limit (not kept from the query)."""
        try:
            body = json.loads(rendered)
        except ValueError as exc:
            raise errors.QueryValidationError("The query is not a JSON search body") from exc
        if not isinstance(body, dict):
            raise errors.QueryValidationError("The query must be a JSON object")
        cap = max(0, min(max_rows, int(self.config.get("max_result_rows") or 10000)))
        requested = body.get("size")
        if requested is not None and (isinstance(requested, bool) or not isinstance(requested, int) or requested < 0):
            raise errors.QueryValidationError("size must be a non-negative integer")
        limited = requested is None or requested > cap
        body["size"] = cap if limited else requested
        body["timeout"] = f"{max(1, math.ceil(timeout * 1000))}ms"
        return body, limited

    def execute(self, rendered: str, *, max_rows: int, timeout: float, execution_key: str) -> ResultSet:
        started = time.monotonic()
        body, limited = self.search_body(rendered, max_rows=max_rows, timeout=timeout)
        client = self._client("search").options(
            opaque_id=execution_key, request_timeout=timeout + self.REQUEST_TIMEOUT_MARGIN
        )
        try:
            with self.tracking(execution_key, execution_key):
                response = client.search(index=self.config["index"], body=body).body
        except (ApiError, TransportError) as exc:
            error = map_error(exc)
            if isinstance(error, errors.QueryTimeoutError):
                self.cancel(execution_key)  # the client gave up; the search may still run
            logger.info("execution %s: Elasticsearch error %s", execution_key, type(exc).__name__)
            raise error from exc
        return self.result_set(response, body=body, limited=limited, started=started)

    def result_set(self, response: Mapping[str, Any], *, body: Mapping[str, Any], limited: bool, started: float) -> ResultSet:
        if response.get("timed_out"):
            # Partial hits are not a result: the search ran out of time at the shards.
            raise errors.QueryTimeoutError()
        shards = response.get("_shards") or {}
        if shards.get("failed"):
            failures = shards.get("failures") or [{}]
            _, reason = _root_cause({"error": (failures[0] or {}).get("reason") or {}})
            raise errors.QueryExecutionError(f"Some shards failed: {reason}", details={"failed_shards": shards["failed"]})
        hits_block = response.get("hits") or {}
        hits = list(hits_block.get("hits") or [])
        columns, rows = hits_to_rows(hits)
        extra = {"aggregations": response["aggregations"]} if "aggregations" in response else {}
        return ResultSet(
            columns=columns,
            rows=rows,
            truncated=limited and _more_hits(hits_block.get("total"), body.get("from"), len(hits), body["size"]),
            elapsed_ms=(time.monotonic() - started) * 1000,
            extra=extra,
        )

    def cancel(self, execution_key: str) -> bool:
        try:
            control = self._client("control")
            # The low-level call: the typed tasks API warns on every use that it is a "technical
            # preview", though the endpoint has been stable since 5.x.
            listing = control.perform_request(
                "GET", "/_tasks", params={"actions": "*search*", "detailed": "true"}, headers=_ACCEPT_JSON
            ).body
        except (ApiError, TransportError, errors.ConnectorError) as exc:
            logger.warning("execution %s: listing search tasks failed: %s", execution_key, type(exc).__name__)
            return False
        cancelled = False
        for task_id in _search_tasks(listing, execution_key):
            try:
                control.perform_request("POST", f"/_tasks/{quote(task_id, safe='')}/_cancel", headers=_ACCEPT_JSON)
                cancelled = True
            except NotFoundError:
                continue  # finished meanwhile
            except (ApiError, TransportError) as exc:
                logger.warning("execution %s: cancelling task %s failed: %s", execution_key, task_id, type(exc).__name__)
        return cancelled

    def test(self) -> None:
        try:
            self._client("search").search(
                index=self.config["index"], body={"size": 0, "timeout": f"{int(self.CONTROL_TIMEOUT * 1000)}ms"}
            )
        except (ApiError, TransportError) as exc:
            error = map_error(exc)
            if not isinstance(error, errors.ConnectorError):
                error = errors.ConnectorError(f"The data source refused a trivial search: {error.message}")
            raise error from exc


def _more_hits(total: Any, offset: Any, returned: int, size: int) -> bool:
    """Were there more hits than the capped page? From ``hits.total`` when ES reports it
    (``relation: gte`` is a lower bound, still "more"); without it, a full page may have more."""
    skip = offset if isinstance(offset, int) and not isinstance(offset, bool) and offset > 0 else 0
    if isinstance(total, Mapping):
        value = total.get("value")
        if isinstance(value, int):
            return value - skip > returned
    elif isinstance(total, int) and not isinstance(total, bool):
        return total - skip > returned
    return returned >= size > 0


def _search_tasks(listing: Mapping[str, Any], execution_key: str) -> list[str]:
    """Top-level search tasks carrying our X-Opaque-Id (cancelling the parent cancels its
    shard-level children)."""
    tasks: list[tuple[str, Mapping[str, Any]]] = []
    for node in (listing.get("nodes") or {}).values():
        tasks.extend((node.get("tasks") or {}).items())
    if isinstance(listing.get("tasks"), list):  # group_by=none / parents shapes
        tasks.extend((f"{t.get('node')}:{t.get('id')}", t) for t in listing["tasks"])
    found = []
    for task_id, task in tasks:
        headers = {str(k).lower(): v for k, v in (task.get("headers") or {}).items()}
        if headers.get("x-opaque-id") != execution_key or task.get("parent_task_id"):
            continue
        if task.get("action", _SEARCH_ACTION).startswith(_SEARCH_ACTION) and task.get("cancellable", True):
            found.append(task_id)
    return found


__all__ = ["ElasticsearchConnector", "flatten", "hits_to_rows", "infer_type", "map_error"]
