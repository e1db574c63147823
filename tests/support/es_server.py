"""A small Elasticsearch stand-in for connector tests (no Elasticsearch can run here).

A threading HTTP/1.1 server on 127.0.0.1, so the real ``elasticsearch`` client talks to it
over real sockets. It speaks the part of the REST API the connector uses, in the shapes
Elasticsearch 8/9 uses:

- ``GET /``: cluster info. ``POST|GET /<index pattern>/_search``: hits from in-memory documents
  (``match_all``, ``term``, ``terms``, ``range``, ``exists``, ``ids``, ``match``, ``bool``), ``from``/``size``,
  ``sort`` on one field, ``track_total_hits`` (default: counted up to 10,000 then ``gte``), and
  ``terms``/``avg``/``sum``/``min``/``max``/``value_count`` aggregations (sub-aggregations too).
- ``GET /_tasks`` and ``POST /_tasks/<id>/_cancel``: the registry of running searches, each with
  its ``X-Opaque-Id`` header and a child shard task, as the tasks API lists them.
- Every 2xx answer carries ``X-Elastic-Product: Elasticsearch`` (the client refuses a server
  without it), a JSON content type and ``Content-Length``.

Errors, as Elasticsearch sends them: 401 ``security_exception`` when the configured basic,
API-key or header credentials are missing or wrong; 400 ``parsing_exception`` for an unknown
query or aggregation; 404 ``index_not_found_exception`` for a concrete index that does not exist.

Markers in the query (a ``match``/``term`` on these fields), for behaviour a test needs:
``slow_marker``: the search runs until it is cancelled through the tasks API (answers 400
``task_cancelled_exception``), until its body ``timeout`` (answers ``timed_out: true`` with no
hits, as ES does), or until a long deadline; with the value ``"uninterruptible"`` it ignores the
body timeout, like a query ES cannot interrupt. ``shard_failure_marker``: 400
``search_phase_execution_exception`` whose root cause names the real reason.

Every request is recorded (method, path, params, headers, body) in ``server.requests``.
"""
from __future__ import annotations

import base64
import fnmatch
import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

NODE = "tEsTnOdE0000000000000A"
SEARCH_ACTION = "indices:data/read/search"
SLOW_DEADLINE = 120.0  # seconds: a slow search never outlives a test run for long
DEFAULT_TRACK_TOTAL = 10_000


@dataclass
class RecordedRequest:
    method: str
    path: str  # percent-decoded, without the query string
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class RunningSearch:
    number: int
    opaque_id: str | None
    index: str
    body: dict[str, Any]
    started: float = field(default_factory=time.time)
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def task_id(self) -> str:
        return f"{NODE}:{self.number}"

    @property
    def child_id(self) -> str:
        return f"{NODE}:{self.number + 1}"


class EsError(Exception):
    """An error answer, shaped like Elasticsearch's."""

    def __init__(self, status: int, type_: str, reason: str, *, root: dict[str, Any] | None = None, **extra: Any):
        super().__init__(reason)
        root_cause = root or {"type": type_, "reason": reason}
        self.status = status
        self.body = {"error": {"root_cause": [root_cause], "type": type_, "reason": reason, **extra}, "status": status}


class ESServer:
    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        api_keys: set[str] | None = None,
        header_tokens: dict[str, str] | None = None,
    ):
        self.users = dict(users or {})
        self.api_keys = set(api_keys or ())
        self.header_tokens = {k.lower(): v for k, v in (header_tokens or {}).items()}
        self.indices: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[RecordedRequest] = []
        self._running: dict[str, RunningSearch] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count(1000, 2)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ESServer:
        handler = type("Handler", (_Handler,), {"es": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="es-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            for search in self._running.values():
                search.cancelled.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- data and inspection -------------------------------------------------------------------

    def add_documents(self, index: str, docs: list[dict[str, Any]]) -> None:
        """Documents as ``_source`` dicts; an ``_id`` key (removed from the source) sets the id."""
        with self._lock:
            stored = self.indices.setdefault(index, [])
            for doc in docs:
                source = dict(doc)
                doc_id = str(source.pop("_id", len(stored) + 1))
                stored.append({"_index": index, "_id": doc_id, "_source": source})

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_to(self, suffix: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(suffix)]

    def running(self, marker: str | None = None) -> list[RunningSearch]:
        with self._lock:
            searches = list(self._running.values())
        return [s for s in searches if marker is None or marker in json.dumps(s.body)]

    def is_running(self, marker: str = "slow_marker") -> bool:
        return bool(self.running(marker))

    # -- request handling (called from handler threads) ----------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def authorized(self, headers: dict[str, str]) -> bool:
        if not (self.users or self.api_keys or self.header_tokens):
            return True
        auth = headers.get("authorization", "")
        scheme, _, credentials = auth.partition(" ")
        if scheme.lower() == "basic" and credentials:
            try:
                user, _, password = base64.b64decode(credentials).decode().partition(":")
            except ValueError:
                return False
            if user in self.users and self.users[user] == password:
                return True
        if scheme.lower() == "apikey" and credentials in self.api_keys:
            return True
        return any(headers.get(name) == value for name, value in self.header_tokens.items())

    def handle(self, method: str, path: str, params: dict[str, str], headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if path == "/" and method in ("GET", "HEAD"):
            return 200, {
                "name": "test-node",
                "cluster_name": "analytics-test",
                "cluster_uuid": "test-cluster-uuid",
                "version": {"number": "9.1.0", "build_flavor": "default", "lucene_version": "10.2.2"},
                "tagline": "You Know, for Search",
            }
        if path == "/_tasks" and method == "GET":
            return 200, self._list_tasks(params)
        if path.startswith("/_tasks/") and path.endswith("/_cancel") and method == "POST":
            return 200, self._cancel_task(path[len("/_tasks/") : -len("/_cancel")])
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[1] == "_search" and method in ("GET", "POST"):
            return 200, self._search(parts[0], body if isinstance(body, dict) else {}, headers.get("x-opaque-id"))
        raise EsError(400, "illegal_argument_exception", f"no handler found for uri [{path}] and method [{method}]")

    def _list_tasks(self, params: dict[str, str]) -> dict[str, Any]:
        patterns = [p for p in params.get("actions", "*").split(",") if p]
        detailed = params.get("detailed") in ("true", "1", "")
        tasks: dict[str, Any] = {}
        for search in self.running():
            headers = {"X-Opaque-Id": search.opaque_id} if search.opaque_id else {}
            common = {"node": NODE, "type": "transport", "start_time_in_millis": int(search.started * 1000),
                      "running_time_in_nanos": int((time.time() - search.started) * 1e9), "cancellable": True,
                      "cancelled": search.cancelled.is_set(), "headers": headers}
            parent = {"id": search.number, "action": SEARCH_ACTION, **common}
            child = {"id": search.number + 1, "action": f"{SEARCH_ACTION}[phase/query]", "parent_task_id": search.task_id, **common}
            if detailed:
                parent["description"] = f"indices[{search.index}], search_type[QUERY_THEN_FETCH], source[{json.dumps(search.body)}]"
            for task_id, task in ((search.task_id, parent), (search.child_id, child)):
                if any(fnmatch.fnmatchcase(task["action"], p) for p in patterns):
                    tasks[task_id] = task
        return {"nodes": {NODE: {"name": "test-node", "roles": ["data", "master"], "tasks": tasks}}} if tasks else {"nodes": {}}

    def _cancel_task(self, task_id: str) -> dict[str, Any]:
        with self._lock:
            search = self._running.get(task_id)
            if search is not None:
                del self._running[task_id]  # gone from the listing at once, as a cancelled task is soon
        if search is None:
            # A child (shard) task cannot be cancelled on its own here; an unknown id is a 404.
            raise EsError(404, "resource_not_found_exception", f"task [{task_id}] is not found")
        search.cancelled.set()
        return {"nodes": {NODE: {"tasks": {task_id: {"node": NODE, "id": search.number, "action": SEARCH_ACTION, "cancelled": True}}}}}

    # -- search ---------------------------------------------------------------------------------

    def _resolve(self, expression: str) -> list[str]:
        names: list[str] = []
        for part in expression.split(","):
            if any(c in part for c in "*?"):
                names.extend(sorted(n for n in self.indices if fnmatch.fnmatchcase(n, part)))
            elif part in self.indices:
                names.append(part)
            else:
                raise EsError(404, "index_not_found_exception", f"no such index [{part}]",
                              **{"resource.type": "index_or_alias", "resource.id": part, "index": part})
        return list(dict.fromkeys(names))

    def _search(self, expression: str, body: dict[str, Any], opaque_id: str | None) -> dict[str, Any]:
        indices = self._resolve(expression)
        query = body.get("query") or {"match_all": {}}
        _check_query(query)
        if _marker(query, "shard_failure_marker") is not None:
            root = {"type": "query_shard_exception", "reason": "failed to create query: For input string: \"abc\"",
                    "index": indices[0] if indices else expression}
            raise EsError(400, "search_phase_execution_exception", "all shards failed", root=root, phase="query",
                          grouped=True, failed_shards=[{"shard": 0, "index": root["index"], "node": NODE, "reason": root}])
        slow = _marker(query, "slow_marker")
        if slow is not None:
            return self._slow_search(expression, body, opaque_id, ignore_timeout=slow == "uninterruptible")
        with self._lock:
            docs = [doc for name in indices for doc in list(self.indices.get(name, []))]
        predicate = _compile(query)
        matched = _sorted([doc for doc in docs if predicate(doc["_source"])], body.get("sort"))
        start, size = int(body.get("from") or 0), int(body.get("size", 10))
        page = matched[start : start + size]
        response: dict[str, Any] = {
            "took": 1,
            "timed_out": False,
            "_shards": {"total": max(1, len(indices)), "successful": max(1, len(indices)), "skipped": 0, "failed": 0},
            "hits": {
                "max_score": 1.0 if page else None,
                "hits": [{"_index": d["_index"], "_id": d["_id"], "_score": 1.0, "_source": d["_source"]} for d in page],
            },
        }
        total = _total(len(matched), body.get("track_total_hits", DEFAULT_TRACK_TOTAL))
        if total is not None:
            response["hits"]["total"] = total
        aggs = body.get("aggs") or body.get("aggregations")
        if aggs:
            response["aggregations"] = _aggregate(aggs, [doc["_source"] for doc in matched])
        return response

    def _slow_search(self, index: str, body: dict[str, Any], opaque_id: str | None, *, ignore_timeout: bool) -> dict[str, Any]:
        search = RunningSearch(next(self._numbers), opaque_id, index, body)
        with self._lock:
            self._running[search.task_id] = search
        timeout = None if ignore_timeout else _seconds(body.get("timeout"))
        try:
            cancelled = search.cancelled.wait(min(timeout, SLOW_DEADLINE) if timeout else SLOW_DEADLINE)
        finally:
            with self._lock:
                self._running.pop(search.task_id, None)
        if cancelled:
            # TaskCancelledException answers 400 since Elasticsearch 7.14 (elastic/elasticsearch#73524).
            raise EsError(400, "task_cancelled_exception", "by user request")
        return {"took": int((time.time() - search.started) * 1000), "timed_out": timeout is not None,
                "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "hits": {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}}


# -- query evaluation ---------------------------------------------------------------------------

_LEAF_QUERIES = {"match_all", "match_none", "term", "terms", "range", "exists", "ids", "match", "match_phrase"}


def _check_query(query: Any) -> None:
    if not isinstance(query, dict) or len(query) != 1:
        raise EsError(400, "parsing_exception", "[query] malformed query, expected a single query clause", line=1, col=1)
    (kind, spec), = query.items()
    if kind == "bool":
        for clause in ("must", "filter", "should", "must_not"):
            for sub in _as_list(spec.get(clause)):
                _check_query(sub)
    elif kind not in _LEAF_QUERIES:
        raise EsError(400, "parsing_exception", f"unknown query [{kind}]", line=1, col=12)


def _marker(query: dict[str, Any], name: str) -> Any:
    (kind, spec), = query.items()
    if kind in ("match", "term", "match_phrase") and name in spec:
        value = spec[name]
        return value.get("query", value.get("value")) if isinstance(value, dict) else value
    if kind == "bool":
        for clause in ("must", "filter", "should"):
            for sub in _as_list(spec.get(clause)):
                found = _marker(sub, name)
                if found is not None:
                    return found
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _field(source: dict[str, Any], path: str) -> Any:
    if path in source:
        return source[path]
    node: Any = source
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _values(source: dict[str, Any], path: str) -> list[Any]:
    value = source[path] if path in source else _field(source, path)
    if value is None:
        return []
    return [v for v in value if v is not None] if isinstance(value, list) else [value]


_RANGE_OPS = {
    "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
}


def _compile(query: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """The query as a predicate on a document's source (compiled once per search: 200k documents)."""
    (kind, spec), = query.items()
    if kind == "match_all":
        return lambda source: True
    if kind in ("match_none", "ids"):  # ids live beside the source; no test needs them
        return lambda source: False
    if kind == "bool":
        must = [_compile(q) for c in ("must", "filter") for q in _as_list(spec.get(c))]
        must_not = [_compile(q) for q in _as_list(spec.get("must_not"))]
        should = [_compile(q) for q in _as_list(spec.get("should"))]
        required = int(spec.get("minimum_should_match", 0 if must else 1)) if should else 0
        return lambda source: (
            all(p(source) for p in must)
            and not any(p(source) for p in must_not)
            and sum(p(source) for p in should) >= required
        )
    if kind == "exists":
        name = spec["field"]
        return lambda source: bool(_values(source, name))
    (name, target), = spec.items()
    if kind == "term":
        value = target.get("value") if isinstance(target, dict) else target
        return lambda source: value in _values(source, name)
    if kind == "terms":
        return lambda source: any(v in _values(source, name) for v in target)
    if kind == "range":
        bounds = [(_RANGE_OPS[op], bound) for op, bound in target.items() if op in _RANGE_OPS]

        def in_bounds(value: Any) -> bool:
            try:
                for op, bound in bounds:
                    if not op(value, bound):
                        return False
            except TypeError:
                return False
            return True

        def in_range(source: dict[str, Any]) -> bool:
            value = source[name] if name in source else _field(source, name)
            if isinstance(value, list):
                return any(in_bounds(v) for v in value if v is not None)
            return value is not None and in_bounds(value)

        return in_range
    text = target.get("query") if isinstance(target, dict) else target  # match, match_phrase
    if isinstance(text, str):
        needle = text.lower()
        return lambda source: any(isinstance(v, str) and needle in v.lower() for v in _values(source, name))
    return lambda source: text in _values(source, name)


def _sorted(matched: list[dict[str, Any]], sort: Any) -> list[dict[str, Any]]:
    specs = _as_list(sort)
    if not specs:
        return matched
    spec = specs[0]
    name, order = (spec, "asc") if isinstance(spec, str) else next(iter(spec.items()))
    order = order.get("order", "asc") if isinstance(order, dict) else order
    present = [d for d in matched if _field(d["_source"], name) is not None]
    missing = [d for d in matched if _field(d["_source"], name) is None]
    present.sort(key=lambda d: _field(d["_source"], name), reverse=order == "desc")
    return present + missing


def _total(count: int, track: Any) -> dict[str, Any] | None:
    if track is False:
        return None
    limit = count if track is True else int(track)
    return {"value": count, "relation": "eq"} if count <= limit else {"value": limit, "relation": "gte"}


def _aggregate(aggs: dict[str, Any], sources: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in aggs.items():
        subs = spec.get("aggs") or spec.get("aggregations")
        kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
        if len(kinds) != 1:
            raise EsError(400, "parsing_exception", f"Expected one aggregation type under [{name}]", line=1, col=1)
        kind = kinds[0]
        params = spec[kind]
        field_name = params.get("field", "")
        if kind == "terms":
            counts: dict[Any, list[dict[str, Any]]] = {}
            for source in sources:
                for value in _values(source, field_name):
                    counts.setdefault(value, []).append(source)
            ordered = sorted(counts.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))
            size = int(params.get("size", 10))
            buckets = []
            for key, members in ordered[:size]:
                bucket = {"key": key, "doc_count": len(members)}
                if subs:
                    bucket.update(_aggregate(subs, members))
                buckets.append(bucket)
            out[name] = {"doc_count_error_upper_bound": 0,
                         "sum_other_doc_count": sum(len(m) for _, m in ordered[size:]), "buckets": buckets}
            continue
        numbers = [v for s in sources for v in _values(s, field_name) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if kind == "avg":
            out[name] = {"value": sum(numbers) / len(numbers) if numbers else None}
        elif kind == "sum":
            out[name] = {"value": float(sum(numbers))}
        elif kind == "min":
            out[name] = {"value": float(min(numbers)) if numbers else None}
        elif kind == "max":
            out[name] = {"value": float(max(numbers)) if numbers else None}
        elif kind == "value_count":
            out[name] = {"value": sum(len(_values(s, field_name)) for s in sources)}
        else:
            raise EsError(400, "parsing_exception", f"Unknown aggregation type [{kind}] did you mean [terms]?", line=1, col=1)
    return out


def _seconds(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    for unit, factor in (("ms", 0.001), ("micros", 1e-6), ("nanos", 1e-9), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0)):
        if value.endswith(unit) and value[: -len(unit)].replace(".", "", 1).isdigit():
            return float(value[: -len(unit)]) * factor
    return None


# -- HTTP -------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    es: ESServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.es.record(RecordedRequest(method, path, params, headers, body))
        if not self.es.authorized(headers):
            reason = f"unable to authenticate user for REST request [{path}]"
            error = EsError(401, "security_exception", reason)
            self._send(401, error.body, extra={"WWW-Authenticate": 'Basic realm="security", ApiKey'}, product=False)
            return
        if body is not None and not isinstance(body, dict):
            self._send(400, EsError(400, "parsing_exception", "request body is not valid JSON").body)
            return
        try:
            status, payload = self.es.handle(method, path, params, headers, body)
        except EsError as exc:
            status, payload = exc.status, exc.body
        self._send(status, payload, head=method == "HEAD")

    def _send(self, status: int, payload: Any, *, extra: dict[str, str] | None = None, product: bool = True, head: bool = False) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            if product:
                self.send_header("X-Elastic-Product", "Elasticsearch")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True  # the client gave up (request timeout): nothing to answer
