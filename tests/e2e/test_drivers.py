"""The other drivers end to end through the real API and worker: MySQL/MariaDB, Redshift
(PostgreSQL behind the handshake proxy), Elasticsearch (the local test server) and
ClickHouse (create-time validation; no server can run here, so execution must fail cleanly).
Also `POST /secrets/{key}/test/` for each driver."""
from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import create_query, create_secret, execute, wait_for_state, wait_until
from tests.support.corpus import load_corpus
from tests.support.targets import mysql as mysql_target
from tests.support.targets.elasticsearch import INDEX, es_config
from tests.support.targets.postgres import canary_state

pytestmark = pytest.mark.timeout(300)


def _refused(r) -> bool:
    return r.status_code == 400 and r.json().get("code") == "QueryValidationError"


# -- MySQL ---------------------------------------------------------------------------------------


@pytest.fixture()
def my(http, ext_mysql):
    create_secret(http, "my", "analytics-mysql", ext_mysql)
    return http


def test_mysql_executes(my):
    q = create_query(my, "Canary", "SELECT id, note FROM accept_canary WHERE note <> '{{ skip }}' ORDER BY id", secret_key="my")
    r = execute(my, q["data"]["slug"], {"skip": "beta"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"id": 1, "note": "alpha"}, {"id": 3, "note": "gamma"}]
    assert r.json()["columns"][0] == {"name": "id", "type": "integer"}


def test_mysql_blocked_corpus_refused_at_create(my, ext_mysql):
    before = mysql_target.database_state(ext_mysql["database"])
    failures = []
    for entry in load_corpus("public_blocked_mysql"):
        r = my.post("analytics/queries/", {"name": "b", "query_text": entry["sql"], "secret_key": "my"})
        if not _refused(r):
            failures.append((entry.id, r.status_code))
    assert failures == []
    assert mysql_target.database_state(ext_mysql["database"]) == before


def test_mysql_allowed_corpus_runs(my):
    failures = []
    for entry in load_corpus("public_allowed_mysql"):
        r = my.post("analytics/queries/", {"name": "a", "query_text": entry["sql"], "secret_key": "my"})
        if r.status_code != 201:
            failures.append((entry.id, "create", r.text[:200]))
            continue
        run = execute(my, r.json()["data"]["slug"])
        if run.status_code != 200:
            failures.append((entry.id, "run", run.text[:200]))
            continue
        data = run.json()["data"]
        if "rows" in entry.data and len(data) != entry["rows"]:
            failures.append((entry.id, "rows", len(data)))
        if entry.get("first") and {k: data[0].get(k) for k in entry["first"]} != entry["first"]:
            failures.append((entry.id, "first", data[0]))
    assert failures == []


def test_mysql_db_enforced_corpus_changes_nothing(my, ext_mysql):
    for entry in load_corpus("public_db_enforced_mysql"):
        before = mysql_target.database_state(ext_mysql["database"])
        r = my.post("analytics/queries/", {"name": "e", "query_text": entry["sql"], "secret_key": "my"})
        if r.status_code == 201:
            r = execute(my, r.json()["data"]["slug"])
        assert r.status_code == 400 and r.json()["code"] in ("QueryValidationError", "QueryExecutionError"), r.text
        assert mysql_target.database_state(ext_mysql["database"]) == before


@pytest.mark.parametrize("entry", load_corpus("public_param_quoted"), ids=lambda e: e.id)
def test_mysql_quoted_parameters_are_literals(my, entry):
    q = create_query(my, "Echo", "SELECT '{{ v }}' AS v", secret_key="my")
    r = execute(my, q["data"]["slug"], {"v": entry["value"]})
    if r.status_code == 200:
        assert r.json()["data"] == [{"v": str(entry["value"])}]
    else:
        assert r.status_code == 400 and r.json()["code"] in ("QueryValidationError", "ValidationError"), r.text


def test_mysql_cancel_stops_the_query(my):
    q = create_query(my, "Slow", mysql_target.SLOW_QUERY, secret_key="my")
    key = execute(my, q["data"]["slug"], wait=0).json()["execution_key"]
    wait_for_state(my, key, {"running"})
    wait_until(lambda: mysql_target.is_running("slow_marker"), "query never reached MariaDB")
    assert my.delete(f"analytics/executions/{key}/").status_code == 200
    wait_until(lambda: not mysql_target.is_running("slow_marker"), "query still running in MariaDB")
    assert wait_for_state(my, key, {"cancelled"})["code"] == "QueryCancelled"


def test_mysql_timeout(my):
    q = create_query(my, "Too slow", mysql_target.SLOW_QUERY, secret_key="my", timeout_seconds=1)
    r = execute(my, q["data"]["slug"], wait=20)
    assert r.status_code == 504 and r.json()["code"] == "QueryTimeoutError", r.text
    wait_until(lambda: not mysql_target.is_running("slow_marker"), "query still running in MariaDB")


# -- Redshift ------------------------------------------------------------------------------------


@pytest.fixture()
def rs(http, redshift_proxy_config):
    create_secret(http, "rs", "analytics-redshift", redshift_proxy_config)
    return http


def test_redshift_executes_and_refuses_writes(rs, ext_redshift_db):
    q = create_query(rs, "Canary", "SELECT id, note FROM accept_canary WHERE id <= {{ n }} ORDER BY id", secret_key="rs")
    r = execute(rs, q["data"]["slug"], {"n": 2})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"id": 1, "note": "alpha"}, {"id": 2, "note": "beta"}]
    before = canary_state(ext_redshift_db)
    q = create_query(rs, "Wipe", "SELECT accept_wipe_canary_fn()", secret_key="rs")
    r = execute(rs, q["data"]["slug"])
    assert r.status_code == 400 and r.json()["code"] == "QueryExecutionError"
    assert canary_state(ext_redshift_db) == before


def test_redshift_blocked_corpus_refused_at_create(rs):
    failures = []
    for entry in load_corpus("public_blocked_postgres", {"SENTINEL_DIR": "/tmp/none"}):
        r = rs.post("analytics/queries/", {"name": "b", "query_text": entry["sql"], "secret_key": "rs"})
        if not _refused(r):
            failures.append((entry.id, r.status_code))
    assert failures == []


# -- Elasticsearch -------------------------------------------------------------------------------


@pytest.fixture()
def es(http, es_server):
    create_secret(http, "es", "analytics-elasticsearch", es_config(es_server))
    return http


def test_elasticsearch_executes_on_the_secret_index_only(es, es_server):
    body = '{"query": {"range": {"n": {"lt": {{ n }}}}}, "size": 100, "sort": [{"n": "asc"}]}'
    q = create_query(es, "Docs", body, secret_key="es")
    es_server.clear_requests()
    r = execute(es, q["data"]["slug"], {"n": 5}, max_rows=3)
    assert r.status_code == 200, r.text
    data = r.json()
    assert [row["n"] for row in data["data"]] == [0, 1, 2]
    assert data["truncated"] is True
    searches = es_server.requests_to("/_search")
    assert [s.path for s in searches] == [f"/{INDEX}/_search"]
    assert searches[0].body["size"] == 3
    assert searches[0].header("X-Opaque-Id") == data["execution_key"]


def test_elasticsearch_string_parameter_is_json_escaped(es):
    q = create_query(es, "Term", '{"query": {"term": {"kind": "{{ kind }}"}}}', secret_key="es")
    r = execute(es, q["data"]["slug"], {"kind": 'typed", "script": "x'})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert r.json()["data"] == []  # the whole value was one term: nothing matches it


def test_elasticsearch_corpora_at_create(es):
    failures = []
    for entry in load_corpus("public_blocked_elasticsearch"):
        r = es.post("analytics/queries/", {"name": "b", "query_text": entry["sql"], "secret_key": "es"})
        if not _refused(r):
            failures.append((entry.id, r.status_code))
    for entry in load_corpus("public_allowed_elasticsearch"):
        r = es.post("analytics/queries/", {"name": "a", "query_text": entry["sql"], "secret_key": "es"})
        if r.status_code != 201:
            failures.append((entry.id, r.status_code, r.text[:200]))
    assert failures == []


# -- ClickHouse ----------------------------------------------------------------------------------


@pytest.fixture()
def ch(http):
    from tests.support.targets.elasticsearch import closed_port

    create_secret(http, "ch", "analytics-clickhouse", {"host": "127.0.0.1", "port": closed_port(), "secure": False})
    return http


def test_clickhouse_corpora_at_create(ch):
    failures = []
    for entry in load_corpus("public_blocked_clickhouse"):
        r = ch.post("analytics/queries/", {"name": "b", "query_text": entry["sql"], "secret_key": "ch"})
        if not _refused(r):
            failures.append((entry.id, r.status_code))
    for entry in load_corpus("public_allowed_clickhouse"):
        r = ch.post("analytics/queries/", {"name": "a", "query_text": entry["sql"], "secret_key": "ch"})
        if r.status_code != 201:
            failures.append((entry.id, r.status_code, r.text[:200]))
    assert failures == []


def test_clickhouse_unreachable_is_a_connector_error(ch):
    q = create_query(ch, "One", "SELECT 1 AS one", secret_key="ch")
    r = execute(ch, q["data"]["slug"])
    assert r.status_code == 502 and r.json()["code"] == "ConnectorError", r.text


# -- test/ for every driver ------------------------------------------------------------------------


def test_secret_test_endpoint_for_each_driver(http, ext_mysql, redshift_proxy_config, es_server):
    from tests.support.targets.elasticsearch import closed_port

    create_secret(http, "my", "analytics-mysql", ext_mysql)
    create_secret(http, "rs", "analytics-redshift", redshift_proxy_config)
    create_secret(http, "es", "analytics-elasticsearch", es_config(es_server))
    create_secret(http, "ch", "analytics-clickhouse", {"host": "127.0.0.1", "port": closed_port(), "secure": False})
    create_secret(http, "badmy", "analytics-mysql", dict(ext_mysql, password="wrong-Pa55word"))
    create_secret(http, "gen", "generic", {"token": "x"})
    for key in ("my", "rs", "es"):
        r = http.post(f"secrets/{key}/test/")
        assert r.status_code == 200, (key, r.text)
        assert r.json()["status"] == "success"
    for key in ("ch", "badmy"):
        r = http.post(f"secrets/{key}/test/")
        assert r.status_code == 502 and r.json()["code"] == "ConnectorError", (key, r.text)
        assert "wrong-Pa55word" not in r.text
    r = http.post("secrets/gen/test/")
    assert r.status_code == 400 and r.json()["message"] == "Unsupported analytics datasource"
    assert http.post("secrets/nope/test/").status_code == 404


__all__ = ["json"]
