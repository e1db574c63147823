"""Security end to end: parameter injection, template injection, secrets never leave the
worker, blocked queries, and tenant isolation of internal queries (CONTRACT 8 and 9)."""
from __future__ import annotations

import re
from decimal import Decimal

import psycopg2
import pytest

from tests.e2e.helpers import create_query, create_secret, execute
from tests.support.corpus import load_corpus
from tests.support.fixtures import HttpCaller, make_account
from tests.support.targets.postgres import FIXTURE_SQL, canary_state, pg_config

pytestmark = pytest.mark.timeout(300)

PG_PASSWORD_MARK = "pw-Zq8-unique"
GENERIC_TOKEN = "tok-SECRET-98765"
LEAK_MARKERS = ("__", "<class", "built-in", "<function", "root:x:", "Environment", "TemplateReference", "Traceback")


def expand(text: str, mapping: dict[str, str]) -> str:
    return re.sub(r"<<([A-Z0-9_]+)>>", lambda m: mapping[m.group(1)], text)


@pytest.fixture(scope="module")
def world(live, sessions, ext_pg, platform_db, tmp_path_factory):
    """Two tenants with data in their schemas; tenant A has a PostgreSQL and a generic secret."""
    a, b = make_account(sessions, "seca"), make_account(sessions, "secb")
    with platform_db.connect() as conn, conn.cursor() as cur:
        for acct, customer in ((a, "own-customer"), (b, "FOREIGN-customer-b")):
            cur.execute(f'SET search_path TO "{acct.schema}"')
            cur.execute(FIXTURE_SQL.format(orders="app_orders"))
            cur.execute("UPDATE app_orders SET customer = %s || '-' || id", (customer,))
    # Give the external role a recognisable password (pg_hba is trust here, so any works).
    with ext_pg.connect() as conn, conn.cursor() as cur:
        cur.execute(f'ALTER ROLE "{ext_pg.role}" PASSWORD %s', (PG_PASSWORD_MARK,))
    http = HttpCaller(live, a)
    create_secret(http, "pg", "analytics-postgres", pg_config(ext_pg, password=PG_PASSWORD_MARK))
    create_secret(http, "generic", "generic", {"token": GENERIC_TOKEN})
    sentinel = tmp_path_factory.mktemp("sentinel")
    sentinel.chmod(0o777)
    mapping = {
        "SENTINEL_DIR": str(sentinel),
        "OTHER_SCHEMA": b.schema,
        "OTHER_SCHEMA_UPPER": b.schema.upper(),
        "OTHER_SCHEMA_UESCAPE": b.schema.replace("_", "\\005f"),
        "OWN_SCHEMA": a.schema,
        "PLATFORM_SCHEMA": "platform",
        "PLATFORM_TABLE": "platform.secrets",
        "SERVICE_ROLE": platform_db.role,
        "PG_SECRET": "pg",
        "GENERIC_SECRET": "generic",
    }
    return {"a": a, "b": b, "http": http, "mapping": mapping, "sentinel": sentinel}


def _no_leak(text: str) -> None:
    assert PG_PASSWORD_MARK not in text
    assert PG_PASSWORD_MARK[::-1] not in text and PG_PASSWORD_MARK.upper() not in text
    assert GENERIC_TOKEN not in text


def _literal_count(ext_pg, value) -> int:
    with ext_pg.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM orders WHERE status = %s", (str(value),))
        return cur.fetchone()[0]


# -- parameters are data ---------------------------------------------------------------------


@pytest.mark.parametrize("entry", load_corpus("public_param_quoted"), ids=lambda e: e.id)
def test_quoted_parameter_is_a_literal(world, ext_pg, entry):
    http = world["http"]
    value = entry["value"]
    echo = create_query(http, "Echo", "SELECT '{{ v }}' AS v", secret_key="pg")["data"]["slug"]
    count = create_query(
        http, "Count", "SELECT count(*) AS n FROM orders WHERE status = '{{ v }}'", secret_key="pg"
    )["data"]["slug"]
    before = canary_state(ext_pg)

    r = execute(http, echo, {"v": value})
    if r.status_code == 400:
        assert r.json()["code"] in ("QueryValidationError", "ValidationError")
    else:
        assert r.status_code == 200, r.text
        assert r.json()["data"] == [{"v": str(value)}]
    r = execute(http, count, {"v": value})
    if r.status_code == 400:
        assert r.json()["code"] in ("QueryValidationError", "ValidationError")
    else:
        assert r.status_code == 200, r.text
        assert r.json()["data"] == [{"n": _literal_count(ext_pg, value)}]
    assert canary_state(ext_pg) == before


@pytest.mark.parametrize(("value", "count"), [("paid", 2), ("it's complicated", 1), ("back\\slash", 1), ("x' OR '1'='1", 0)])
def test_quoted_values_match_like_literals(world, value, count):
    http = world["http"]
    q = create_query(http, "Match", "SELECT count(*) AS n FROM orders WHERE status = '{{ v }}'", secret_key="pg")
    r = execute(http, q["data"]["slug"], {"v": value})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"n": count}]


@pytest.mark.parametrize("entry", load_corpus("public_param_unquoted"), ids=lambda e: e.id)
def test_unquoted_parameter_must_be_a_number(world, entry):
    http = world["http"]
    slug = create_query(http, "Limit", "SELECT id FROM accept_canary ORDER BY id LIMIT {{ v }}", secret_key="pg")
    r = execute(http, slug["data"]["slug"], {"v": entry["value"]})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "QueryValidationError"


def test_unquoted_numbers_and_booleans_work(world):
    http = world["http"]
    q = create_query(
        http, "Num", "SELECT id FROM accept_canary WHERE {{ flag }} ORDER BY id LIMIT {{ n }}", secret_key="pg"
    )
    r = execute(http, q["data"]["slug"], {"n": 2, "flag": True})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"id": 1}, {"id": 2}]


# -- templates are sandboxed ----------------------------------------------------------------


@pytest.mark.parametrize("entry", load_corpus("public_ssti"), ids=lambda e: e.id)
def test_template_injection_is_refused_or_inert(world, entry):
    http = world["http"]
    payload = expand(entry["payload"], world["mapping"])
    for text in (f"SELECT '{payload}' AS x", f"SELECT 1 AS x -- {payload}"):
        r = http.post("analytics/queries/", {"name": "ssti", "query_text": text, "secret_key": "pg"})
        _no_leak(r.text)
        if r.status_code != 201:
            assert r.status_code == 400 and r.json()["code"] in ("QueryValidationError", "ValidationError")
            continue
        run = execute(http, r.json()["data"]["slug"], entry.get("params") or {})
        _no_leak(run.text)
        if run.status_code == 200:
            for marker in LEAK_MARKERS:
                assert marker not in str(run.json()["data"]), marker
        else:
            assert run.status_code == 400 and run.json()["code"] in ("QueryValidationError", "QueryExecutionError")


# -- secrets stay in the worker -----------------------------------------------------------------


def test_secret_in_select_output_is_redacted(world, platform_db):
    http = world["http"]
    q = create_query(
        http, "Leak", "SELECT '{{ secret.pg.password }}' AS p, '{{ secret.generic.token }}' AS t", secret_key="pg"
    )
    r = execute(http, q["data"]["slug"])
    assert r.status_code == 200, r.text
    _no_leak(r.text)
    assert r.json()["data"] == [{"p": "[REDACTED]", "t": "[REDACTED]"}]
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT parameters::text, coalesce(error_message, '') FROM platform.executions")
        _no_leak(str(cur.fetchall()))


def test_secret_in_a_database_error_is_redacted(world):
    http = world["http"]
    q = create_query(http, "LeakErr", "SELECT '{{ secret.pg.password }}'::int AS p", secret_key="pg")
    r = execute(http, q["data"]["slug"])
    assert r.status_code == 400 and r.json()["code"] == "QueryExecutionError"
    _no_leak(r.text)


def test_secrets_used_as_data_and_user_profile(world):
    http = world["http"]
    q = create_query(
        http,
        "Profile",
        "SELECT '{{ secret.user_profile.email }}' AS email, count(*) AS n FROM orders "
        "WHERE customer <> '{{ secret.generic.token }}'",
        secret_key="pg",
    )
    r = execute(http, q["data"]["slug"])
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"email": f"{world['a'].username}@example.com", "n": 5}]


def test_internal_queries_get_no_secrets(world):
    http = world["http"]
    r = http.post(
        "analytics/queries/",
        {"name": "int-secret", "query_text": "SELECT '{{ secret.pg.password }}' AS p", "connection_type": "internal"},
    )
    if r.status_code == 201:
        r = execute(http, r.json()["data"]["slug"])
    assert r.status_code == 400 and r.json()["code"] == "QueryValidationError"
    _no_leak(r.text)


# -- the read-only check -------------------------------------------------------------------------


@pytest.mark.parametrize("connection", ["external", "internal"])
def test_blocked_postgres_corpus_is_refused_at_create(world, connection):
    http = world["http"]
    failures = []
    for entry in load_corpus("public_blocked_postgres"):
        sql = expand(entry["sql"], world["mapping"])
        extra = {"secret_key": "pg"} if connection == "external" else {"connection_type": "internal"}
        r = http.post("analytics/queries/", {"name": "blocked", "query_text": sql, **extra})
        if r.status_code != 400 or r.json().get("code") != "QueryValidationError":
            failures.append((entry.id, sql, r.status_code))
    assert failures == []
    assert list(world["sentinel"].iterdir()) == []


@pytest.mark.parametrize("connection", ["external", "internal"])
def test_allowed_postgres_corpus_runs(world, connection):
    http = world["http"]
    failures = []
    for entry in load_corpus("public_allowed_postgres"):
        sql = expand(entry["sql"], world["mapping"])
        extra = {"secret_key": "pg"} if connection == "external" else {"connection_type": "internal"}
        r = http.post("analytics/queries/", {"name": "allowed", "query_text": sql, **extra})
        if r.status_code != 201:
            failures.append((entry.id, "create", r.status_code, r.text[:200]))
            continue
        run = execute(http, r.json()["data"]["slug"])
        if run.status_code != 200:
            failures.append((entry.id, "run", run.status_code, run.text[:200]))
            continue
        data = run.json()["data"]
        if "rows" in entry.data and len(data) != entry["rows"]:
            failures.append((entry.id, "rows", len(data)))
        if entry.get("first") and {k: data[0].get(k) for k in entry["first"]} != entry["first"]:
            failures.append((entry.id, "first", data[0]))
    assert failures == []


def test_db_enforced_corpus_changes_nothing(world, ext_pg):
    http = world["http"]
    for entry in load_corpus("public_db_enforced_postgres"):
        before = canary_state(ext_pg)
        r = http.post("analytics/queries/", {"name": "enforced", "query_text": entry["sql"], "secret_key": "pg"})
        if r.status_code == 201:
            r = execute(http, r.json()["data"]["slug"])
        assert r.status_code == 400, (entry.id, r.text)
        assert r.json()["code"] in ("QueryValidationError", "QueryExecutionError")
        assert canary_state(ext_pg) == before


# -- tenant isolation of internal queries ---------------------------------------------------------


PLATFORM_TABLES = ["secrets", "users", "api_tokens", "tenants", "apps", "secret_types", "analytics_queries", "executions"]


def test_isolation_corpus(world):
    http = world["http"]
    failures = []
    for table in PLATFORM_TABLES:
        mapping = dict(world["mapping"], PLATFORM_TABLE=f"platform.{table}")
        for entry in load_corpus("public_isolation_internal"):
            sql = expand(entry["sql"], mapping)
            r = http.post("analytics/queries/", {"name": "iso", "query_text": sql, "connection_type": "internal"})
            if r.status_code == 201:
                r = execute(http, r.json()["data"]["slug"])
                if r.status_code == 200 and ("FOREIGN" in r.text or world["b"].schema in r.text):
                    failures.append((entry.id, table, "leaked", r.text[:300]))
                elif r.status_code not in (200, 400):
                    failures.append((entry.id, table, r.status_code))
            elif r.status_code != 400:
                failures.append((entry.id, table, r.status_code))
    assert failures == []


def test_internal_query_reads_own_schema(world):
    http = world["http"]
    q = create_query(
        http, "Own", "SELECT customer FROM app_orders WHERE status = '{{ s }}' ORDER BY id", connection_type="internal"
    )
    r = execute(http, q["data"]["slug"], {"s": "paid"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"customer": "own-customer-1"}, {"customer": "own-customer-5"}]


def test_tenant_schema_required(world, platform_db):
    a = world["a"]
    http = world["http"]
    q = create_query(http, "Needs schema", "SELECT 1 AS one", connection_type="internal")
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(f'ALTER SCHEMA "{a.schema}" RENAME TO "{a.schema}_away"')
    try:
        r = execute(http, q["data"]["slug"])
        assert r.status_code == 400 and r.json()["code"] == "SecretResolutionError"
        assert r.json()["message"] == "Tenant schema required"
    finally:
        with platform_db.connect() as conn, conn.cursor() as cur:
            cur.execute(f'ALTER SCHEMA "{a.schema}_away" RENAME TO "{a.schema}"')


__all__ = ["Decimal", "psycopg2"]
