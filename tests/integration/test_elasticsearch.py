"""Elasticsearch connector beyond the contract suite, against tests/support/es_server.py over
real HTTP: the exact request sent (one endpoint, the secret's index, size cap, timeout,
X-Opaque-Id), truncation from hits.total, flattened rows and inferred types, aggregations
beside the rows, each auth mode, error mapping, cancel through the tasks API. A real-cluster
tier runs when ANALYTICS_TEST_ELASTICSEARCH_URL is set.
"""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid

import pytest

from shared import errors
from shared.connectors.base import ColumnType, ResultSet
from shared.connectors.elasticsearch import ElasticsearchConnector, infer_type
from shared.results import Redactor, result_payload
from tests.support.targets.elasticsearch import (
    API_KEY,
    PASSWORD,
    TOKEN,
    TOKEN_HEADER,
    USER,
    closed_port,
    es_config,
    real_server_config,
)

ORDERS = [
    {"_id": "o1", "status": "paid", "total": 10.5, "customer": {"name": "ada", "tier": "gold"}, "items": 2},
    {"_id": "o2", "status": "paid", "total": 20, "customer": {"name": "bob"}, "items": 1, "note": "gift"},
    {"_id": "o3", "status": "pending", "total": 30.25, "customer": {"name": "cy", "tier": "silver"}, "items": 3},
]
MORE_ORDERS = [{"_id": f"p{i}", "status": "paid" if i % 3 else "refunded", "total": i, "items": 1} for i in range(27)]


@pytest.fixture(scope="module")
def orders(es_server):
    es_server.add_documents("orders-2024", ORDERS)
    es_server.add_documents("orders-2025", MORE_ORDERS)
    return es_server


@pytest.fixture()
def connector_for(orders):
    made = []

    def make(**overrides):
        connector = ElasticsearchConnector(es_config(orders, **{"index": "orders-*", **overrides}))
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def key() -> str:
    return f"exec_{uuid.uuid4().hex[:12]}"


def sent(server, execution_key):
    return [r for r in server.requests if r.header("x-opaque-id") == execution_key]


def run(connector, body, *, max_rows=100, timeout=10, execution_key=None):
    return connector.execute(json.dumps(body), max_rows=max_rows, timeout=timeout, execution_key=execution_key or key())


# -- the request --------------------------------------------------------------------------------


def test_exact_request_shape(orders, connector_for):
    k = key()
    body = {"query": {"term": {"status": "paid"}}, "size": 500, "sort": [{"total": "asc"}]}
    run(connector_for(), body, max_rows=20, timeout=7, execution_key=k)
    requests = sent(orders, k)
    assert len(requests) == 1, [r.path for r in requests]
    request = requests[0]
    assert request.method == "POST"
    assert request.path == "/orders-*/_search"
    assert request.body == {**body, "size": 20, "timeout": "7000ms"}
    assert request.header("x-opaque-id") == k
    assert request.header("content-type").startswith("application/vnd.elasticsearch+json")


@pytest.mark.parametrize(
    ("size", "max_rows", "max_result_rows", "sent_size"),
    [(None, 50, 10000, 50), (500, 50, 10000, 50), (5, 50, 10000, 5), (500, 50, 30, 30), (None, 50, 30, 30), (0, 50, 10000, 0)],
)
def test_size_is_capped_by_both_limits(orders, connector_for, size, max_rows, max_result_rows, sent_size):
    k = key()
    body = {"query": {"match_all": {}}} | ({} if size is None else {"size": size})
    result = run(connector_for(max_result_rows=max_result_rows), body, max_rows=max_rows, execution_key=k)
    assert sent(orders, k)[0].body["size"] == sent_size
    assert len(result.rows) == min(sent_size, len(ORDERS) + len(MORE_ORDERS))


def test_index_comes_only_from_the_secret(orders, connector_for):
    k = key()
    # Whatever the body says, the path is the secret's index (the validator refuses such keys first).
    result = run(connector_for(index="orders-2024"), {"index": "orders-2025", "query": {"match_all": {}}}, execution_key=k)
    assert [r.path for r in sent(orders, k)] == ["/orders-2024/_search"]
    assert {row[1] for row in result.rows} == {"orders-2024"}


def test_a_body_that_is_not_a_json_object_is_refused_before_sending(orders, connector_for):
    before = len(orders.requests)
    for text in ("not json", "[1, 2]", '{"size": -1}', '{"size": "10"}'):
        with pytest.raises(errors.QueryValidationError):
            connector_for().execute(text, max_rows=10, timeout=5, execution_key=key())
    assert len(orders.requests) == before


# -- truncation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "max_rows", "kept", "truncated"),
    [
        ({"query": {"match_all": {}}}, 10, 10, True),  # 30 hits, capped at 10
        ({"query": {"match_all": {}}}, 30, 30, False),
        ({"query": {"match_all": {}}}, 100, 30, False),
        ({"query": {"match_all": {}}, "size": 5}, 10, 5, False),  # the query asked for 5: nothing cut
        ({"query": {"match_all": {}}, "size": 50}, 10, 10, True),
        ({"query": {"match_all": {}}, "from": 25}, 10, 5, False),  # the last 5 of 30
        ({"query": {"match_all": {}}, "from": 15}, 10, 10, True),
        ({"query": {"match_all": {}}, "track_total_hits": False}, 10, 10, True),  # no total: a full capped page
        ({"query": {"match_all": {}}, "track_total_hits": False}, 100, 30, False),
        ({"query": {"match_all": {}}, "track_total_hits": 12}, 10, 10, True),  # total 12, relation gte
    ],
)
def test_truncated_from_hits_total(connector_for, body, max_rows, kept, truncated):
    result = run(connector_for(), body, max_rows=max_rows)
    assert len(result.rows) == kept
    assert result.truncated is truncated


# -- rows and aggregations ---------------------------------------------------------------------------


def test_rows_are_flattened_hits(connector_for):
    result = run(connector_for(index="orders-2024"), {"query": {"match_all": {}}})
    names = [c.name for c in result.columns]
    assert names == ["_id", "_index", "_score", "status", "total", "customer.name", "customer.tier", "items", "note"]
    types = {c.name: c.type for c in result.columns}
    assert types == {
        "_id": ColumnType.STRING, "_index": ColumnType.STRING, "_score": ColumnType.FLOAT, "status": ColumnType.STRING,
        "total": ColumnType.FLOAT,  # 10.5, 20, 30.25: ints and floats together are floats
        "customer.name": ColumnType.STRING, "customer.tier": ColumnType.STRING, "items": ColumnType.INTEGER,
        "note": ColumnType.STRING,
    }
    rows = [dict(zip(names, row, strict=True)) for row in result.rows]
    assert rows[1] == {
        "_id": "o2", "_index": "orders-2024", "_score": 1.0, "status": "paid", "total": 20, "customer.name": "bob",
        "customer.tier": None, "items": 1, "note": "gift",
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, None], ColumnType.INTEGER), ([1, 2.5], ColumnType.FLOAT), ([True, False], ColumnType.BOOLEAN),
        (["2024-01-01", "2024-12-31"], ColumnType.DATE), (["2024-01-01T00:00:00Z", "2024-01-01"], ColumnType.DATETIME),
        (["2024-01-01", "soon"], ColumnType.STRING), ([[1], [2, 3]], ColumnType.ARRAY), ([{}], ColumnType.JSON),
        ([1, "one"], ColumnType.JSON), ([True, 1], ColumnType.JSON), ([None, None], ColumnType.UNKNOWN),
    ],
)
def test_column_type_inference(values, expected):
    assert infer_type(values) == expected


def test_aggregations_beside_rows(connector_for):
    body = {
        "size": 0,
        "query": {"match_all": {}},
        "aggs": {
            "by_status": {"terms": {"field": "status"}, "aggs": {"avg_total": {"avg": {"field": "total"}}}},
            "avg_items": {"avg": {"field": "items"}},
        },
    }
    result = run(connector_for(index="orders-2024"), body)
    assert result.rows == [] and not result.truncated
    aggregations = result.extra["aggregations"]
    assert aggregations["avg_items"] == {"value": 2.0}
    buckets = aggregations["by_status"]["buckets"]
    assert buckets == [
        {"key": "paid", "doc_count": 2, "avg_total": {"value": 15.25}},
        {"key": "pending", "doc_count": 1, "avg_total": {"value": 30.25}},
    ]
    payload = result_payload(result, Redactor([]), duration_ms=1)
    assert payload["aggregations"] == aggregations and payload["data"] == []


def test_no_aggregations_no_extra(connector_for):
    result = run(connector_for(), {"query": {"term": {"status": "pending"}}})
    assert result.extra == {}
    assert "aggregations" not in result_payload(result, Redactor([]), duration_ms=1)


# -- auth ------------------------------------------------------------------------------------------------

AUTH_MODES = {
    "basic": ({"username": USER, "password": PASSWORD}, "authorization",
              "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()),
    "api_key": ({"username": None, "password": None, "api_key": API_KEY}, "authorization", f"ApiKey {API_KEY}"),
    "headers": ({"username": None, "password": None, "headers": {TOKEN_HEADER: TOKEN}}, TOKEN_HEADER, TOKEN),
}
WRONG = {
    "basic": {"password": "not-the-password"},
    "api_key": {"api_key": "bm90LWEta2V5"},
    "headers": {"headers": {TOKEN_HEADER: "wrong-token"}},
}


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_auth_mode_is_sent(orders, connector_for, mode):
    overrides, header, value = AUTH_MODES[mode]
    k = key()
    result = run(connector_for(**overrides), {"query": {"match_all": {}}}, max_rows=1, execution_key=k)
    assert len(result.rows) == 1
    assert sent(orders, k)[0].header(header) == value


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_wrong_credentials_are_a_connector_error(connector_for, mode):
    overrides = {**AUTH_MODES[mode][0], **WRONG[mode]}
    connector = connector_for(**overrides)
    with pytest.raises(errors.ConnectorError) as info:
        run(connector, {"query": {"match_all": {}}})
    assert info.value.details["status"] == 401
    assert "not-the-password" not in info.value.message and "wrong-token" not in info.value.message
    with pytest.raises(errors.ConnectorError):
        connector.test()


def test_no_credentials_at_all_is_a_connector_error(connector_for):
    with pytest.raises(errors.ConnectorError):
        run(connector_for(username=None, password=None), {"query": {"match_all": {}}})


# -- errors ------------------------------------------------------------------------------------------------


def test_bad_query_is_a_query_error_with_the_reason(connector_for):
    with pytest.raises(errors.QueryExecutionError) as info:
        run(connector_for(), {"query": {"no_such_query": {}}})
    assert info.value.message == "unknown query [no_such_query]"
    assert info.value.details == {"status": 400, "type": "parsing_exception"}


def test_shard_failure_reports_the_root_cause(connector_for):
    with pytest.raises(errors.QueryExecutionError) as info:
        run(connector_for(), {"query": {"match": {"shard_failure_marker": "x"}}})
    assert info.value.message.startswith("failed to create query")
    assert info.value.details["type"] == "query_shard_exception"


def test_missing_index_is_a_query_error(connector_for):
    with pytest.raises(errors.QueryExecutionError) as info:
        run(connector_for(index="no-such-index"), {"query": {"match_all": {}}})
    assert info.value.message == "no such index [no-such-index]"
    assert info.value.details["status"] == 404


def test_unreachable_fails_fast(connector_for):
    connector = connector_for(port=closed_port())
    started = time.monotonic()
    with pytest.raises(errors.ConnectorError):
        run(connector, {"query": {"match_all": {}}}, timeout=20)
    assert time.monotonic() - started < 5


def test_server_side_timeout_is_a_timeout(orders, connector_for):
    """ES answers ``timed_out: true`` with partial hits at the body timeout: not a result."""
    k = key()
    with pytest.raises(errors.QueryTimeoutError):
        run(connector_for(), {"query": {"match": {"slow_marker": "t"}}}, timeout=1, execution_key=k)
    assert sent(orders, k)[0].body["timeout"] == "1000ms"
    assert not [s for s in orders.running() if s.opaque_id == k]


@pytest.mark.timeout(30)
def test_client_timeout_cancels_the_task(orders, connector_for):
    """A search ES cannot interrupt: the client gives up, then cancels the task by opaque id."""
    k = key()
    started = time.monotonic()
    with pytest.raises(errors.QueryTimeoutError):
        run(connector_for(), {"query": {"match": {"slow_marker": "uninterruptible"}}}, timeout=1, execution_key=k)
    assert time.monotonic() - started < 10
    assert not orders.is_running("uninterruptible")
    cancels = [r for r in orders.requests_to("/_cancel") if r.method == "POST"]
    assert any(r.path.startswith("/_tasks/") for r in cancels)


# -- cancel ---------------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_cancel_through_the_tasks_api(orders, connector_for):
    connector = connector_for()
    k = key()
    outcome = {}

    def body():
        try:
            run(connector, {"query": {"match": {"slow_marker": k}}}, timeout=60, execution_key=k)
        except errors.AnalyticsError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    deadline = time.monotonic() + 10
    while not orders.running(k) and time.monotonic() < deadline:
        time.sleep(0.05)
    (search,) = orders.running(k)
    assert search.opaque_id == k
    orders_before = len(orders.requests)
    assert connector.cancel(k) is True
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome["error"], errors.QueryCancelledError)
    assert not orders.running(k)
    calls = [(r.method, r.path, r.params) for r in orders.requests[orders_before:] if r.path.startswith("/_tasks")]
    assert calls[0] == ("GET", "/_tasks", {"actions": "*search*", "detailed": "true"})
    # Only the parent search task is cancelled (which ends its shard tasks), never a child.
    assert calls[1:] == [("POST", f"/_tasks/{search.task_id}/_cancel", {})]
    assert connector.cancel(k) is False


def test_cancel_ignores_other_executions(orders, connector_for):
    connector = connector_for()
    k = key()
    thread = threading.Thread(
        target=lambda: pytest.raises(errors.AnalyticsError, run, connector, {"query": {"match": {"slow_marker": k}}},
                                     timeout=60, execution_key=k)
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not orders.running(k) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert connector.cancel("exec_someone_else") is False
        assert orders.running(k)
    finally:
        connector.cancel(k)
        thread.join(10)


def test_partial_shard_failure_is_an_error_not_a_short_result():
    connector = ElasticsearchConnector({"host": "h", "index": "i"})
    response = {
        "timed_out": False,
        "_shards": {"total": 2, "successful": 1, "failed": 1, "failures": [
            {"shard": 1, "index": "i", "reason": {"type": "illegal_argument_exception", "reason": "Text fields are not optimised"}},
        ]},
        "hits": {"total": {"value": 1, "relation": "eq"}, "hits": [{"_id": "1", "_index": "i", "_score": 1.0, "_source": {}}]},
    }
    with pytest.raises(errors.QueryExecutionError) as info:
        connector.result_set(response, body={"size": 10}, limited=True, started=time.monotonic())
    assert info.value.message == "Some shards failed: Text fields are not optimised"


def test_result_set_ignores_unknown_shapes():
    connector = ElasticsearchConnector({"host": "h", "index": "i"})
    response = {"hits": {"total": 3, "hits": [{"_id": "1", "_index": "i", "_score": None, "_source": {"a": {}}}]}}
    result = connector.result_set(response, body={"size": 1}, limited=True, started=time.monotonic())
    assert isinstance(result, ResultSet) and result.truncated
    assert [c.name for c in result.columns] == ["_id", "_index", "_score", "a"]


# -- real cluster tier ------------------------------------------------------------------------------------------


@pytest.mark.skipif(real_server_config() is None, reason="set ANALYTICS_TEST_ELASTICSEARCH_URL for a real cluster")
def test_real_cluster_search_and_errors():
    from elasticsearch import Elasticsearch

    config = real_server_config()
    index = f"analytics-test-{uuid.uuid4().hex[:8]}"
    auth = (config["username"], config["password"]) if config.get("username") else None
    admin = Elasticsearch(f"{config['scheme']}://{config['host']}:{config['port']}", basic_auth=auth, verify_certs=config["verify_certs"])
    try:
        for i, doc in enumerate(ORDERS + MORE_ORDERS):
            admin.index(index=index, id=str(i), document={k: v for k, v in doc.items() if k != "_id"})
        admin.indices.refresh(index=index)
        connector = ElasticsearchConnector({**config, "index": index})
        result = run(connector, {"query": {"match_all": {}}}, max_rows=10)
        assert len(result.rows) == 10 and result.truncated
        aggs = run(connector, {"size": 0, "aggs": {"s": {"terms": {"field": "status.keyword"}}}}).extra["aggregations"]
        assert {b["key"] for b in aggs["s"]["buckets"]} >= {"paid", "pending"}
        with pytest.raises(errors.QueryExecutionError):
            run(connector, {"query": {"no_such_query": {}}})
        connector.test()
        assert connector.cancel("exec_nothing") is False
        with pytest.raises(errors.ConnectorError):
            run(ElasticsearchConnector({**config, "index": index, "username": "nobody", "password": "nope"}), {"size": 0})
        connector.close()
    finally:
        admin.indices.delete(index=index, ignore_unavailable=True)
        admin.close()
