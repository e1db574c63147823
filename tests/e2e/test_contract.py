"""The contract (CONTRACT.md) statement by statement, over HTTP against the real processes
(gunicorn API, Celery worker, PostgreSQL, Redis): the statements the other suites do not
assert yet, and the odd-but-valid requests a client makes (no trailing slash, HEAD, OPTIONS,
a charset in the Content-Type, an empty execute body, unicode)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from shared.db import session_scope
from shared.services.tenants import create_app as create_app_row
from tests.e2e.helpers import body, create_query, create_secret, execute, poll, wait_for_state, wait_until
from tests.support.fixtures import REPO, HttpCaller, Process, free_port
from tests.support.targets.postgres import SLOW_QUERY, active_queries, pg_config

pytestmark = pytest.mark.timeout(120)

SECRET_KEYS = {"key", "type_slug", "description", "fields", "created_at", "updated_at"}
QUERY_KEYS = {
    "id", "name", "slug", "description", "connection_type", "secret_key", "driver", "query_text", "tags",
    "timeout_seconds", "parameters", "created_at", "updated_at",
}
LIST_KEYS = {"status", "message", "data", "total"}
RESULT_KEYS = {"status", "message", "data", "total", "execution_key", "state", "columns", "truncated", "duration_ms"}
PENDING_KEYS = {"status", "message", "execution_key", "state", "poll_url"}
SEEDED_TYPES = {
    "analytics-postgres", "analytics-mysql", "analytics-redshift", "analytics-elasticsearch",
    "analytics-clickhouse", "generic",
}
TEN_ROWS = "SELECT g FROM generate_series(1, 10) AS g ORDER BY g"

# The limits of the "tight" API process (same database, Redis and broker as the main one).
TIGHT = {
    "ANALYTICS_TENANT_CONCURRENCY": "2",
    "ANALYTICS_SYNC_WAIT": "0.5",
    "ANALYTICS_MAX_WAIT": "2",
    "ANALYTICS_MAX_ROWS": "5",
    "ANALYTICS_QUERY_TIMEOUT": "3",
    "ANALYTICS_RESULT_TTL": "2",
    "ANALYTICS_MAX_BODY_BYTES": "4096",
}


# -- helpers -------------------------------------------------------------------------------------


def check_error(response: requests.Response, status: int, code: str, message: str | None = None) -> dict:
    """An error in the envelope of CONTRACT section 4: JSON, never HTML or a traceback."""
    text = response.text
    assert response.status_code == status, text
    assert response.headers["Content-Type"].startswith("application/json"), (response.headers, text)
    data = response.json()
    assert data["status"] == "error" and data["code"] == code, data
    assert isinstance(data["message"], str) and data["message"], data
    if message is not None:
        assert data["message"] == message, data
    if "errors" in data:
        assert data["errors"] and all(
            isinstance(v, list) and all(isinstance(m, str) for m in v) for v in data["errors"].values()
        ), data
    assert "Traceback" not in text and "<html" not in text.lower() and 'File "' not in text
    return data


def assert_timestamp(value: str) -> None:
    """ISO 8601 with a `T` and a UTC offset."""
    assert isinstance(value, str) and "T" in value, value
    assert datetime.fromisoformat(value).utcoffset() is not None, value
    assert re.search(r"(Z|[+-]\d\d:\d\d)$", value), value


def check_list(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == LIST_KEYS, data
    assert (data["status"], data["message"]) == ("success", "Data retrieved successfully")
    assert isinstance(data["data"], list) and isinstance(data["total"], int)
    return data


def check_secret(item: dict) -> None:
    assert set(item) == SECRET_KEYS, item
    assert isinstance(item["fields"], list) and all(isinstance(f, str) for f in item["fields"])
    assert_timestamp(item["created_at"])
    assert_timestamp(item["updated_at"])


def execution_rows(platform_db, account) -> int:
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM platform.executions e JOIN platform.tenants t ON t.id = e.tenant_id "
            "WHERE t.slug = %s",
            (account.tenant,),
        )
        return cur.fetchone()[0]


def start_api(env: dict[str, str], log: Path) -> tuple[Process, str]:
    port = free_port()
    proc = Process([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", "1",
                    "--threads", "8"], env, log)
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(proc: Process, base: str) -> None:
    deadline = time.time() + 60
    while True:
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.proc.poll() is not None or time.time() > deadline:
            proc.stop()
            pytest.fail("API did not start:\n" + proc.output()[-3000:])
        time.sleep(0.1)


@pytest.fixture(scope="module")
def more_apis(live, env, tmp_path_factory):
    """Two more API processes on the same database, Redis and broker: a `twin` started with
    exactly the same variables, and a `tight` one with small limits (TIGHT)."""
    logs = tmp_path_factory.mktemp("more-apis")
    twin = start_api(env, logs / "twin.log")
    tight = start_api({**env, **TIGHT}, logs / "tight.log")
    for proc, base in (twin, tight):
        wait_healthy(proc, base)
    yield {"twin": twin[1], "tight": tight[1]}
    for proc, _ in (twin, tight):
        proc.stop()


@pytest.fixture(autouse=True)
def cancel_leftovers(live, account, platform_db):
    """Cancel what a test left queued or running (a failed assertion skips its own cleanup),
    so that the next test finds both worker processes free."""
    yield
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT e.key, a.slug FROM platform.executions e JOIN platform.apps a ON a.id = e.app_id "
            "JOIN platform.tenants t ON t.id = e.tenant_id WHERE t.slug = %s AND e.state IN ('queued', 'running')",
            (account.tenant,),
        )
        leftovers = cur.fetchall()
    for key, app in leftovers:
        requests.delete(f"{live}/api/apps/{app}/analytics/executions/{key}/", headers=account.headers, timeout=10)


@pytest.fixture()
def pg(http, ext_pg):
    create_secret(http, "pg", "analytics-postgres", pg_config(ext_pg))
    return http


def slow_running(ext_pg) -> bool:
    return active_queries(ext_pg, "slow_marker") > 0


# -- 1. tenants, apps, users, tokens ---------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Token abc"},
     {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer " + "x" * 5000}],
    ids=["none", "empty", "unknown", "scheme", "basic", "huge"],
)
def test_no_malformed_or_unknown_token_is_401(live, account, headers):
    for method, path in (("GET", "secrets/"), ("POST", "secrets/"), ("PUT", "secrets/x/"), ("DELETE", "secrets/x/"),
                         ("POST", "analytics/queries/x/execute/"), ("GET", "analytics/executions/exec_x/")):
        r = requests.request(method, live + account.url(path), headers=headers, timeout=10)
        data = check_error(r, 401, "AuthenticationError")
        assert set(data) == {"status", "code", "message"}
        assert r.headers["WWW-Authenticate"] == "Bearer"


# -- 2. command line -----------------------------------------------------------------------------


def test_console_script_user_and_token_create_print_the_token_last(live, env, account):
    script = Path(sys.executable).parent / "analytics"
    assert script.exists(), "console script `analytics` is not installed"

    def run(*args: str) -> str:
        proc = subprocess.run([str(script), *args], env={**os.environ, **env}, cwd=REPO, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        return proc.stdout.strip().splitlines()[-1]

    token = run("user", "create", account.tenant, "cli-grace", "--email", "g@example.com", "--first-name", "Grace",
                "--last-name", "Hopper", "--staff", "--superuser")
    again = run("token", "create", account.tenant, "cli-grace")
    assert token != again
    for t in (token, again):
        assert re.fullmatch(r"\S{22,}", t), t
        r = requests.get(live + account.url("secrets/"), headers={"Authorization": f"Bearer {t}"}, timeout=10)
        check_list(r)
    # An unknown queue is one line on stderr and a non-zero exit, before any worker starts.
    proc = subprocess.run([str(script), "worker", "--queues", "analytics.oracle"], env={**os.environ, **env},
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "analytics.oracle" in proc.stderr, proc.stderr


# -- 3. environment: two processes with the same variables share everything ----------------------


def test_two_api_processes_with_the_same_variables_share_everything(pg, more_apis, ext_pg):
    twin = HttpCaller(more_apis["twin"], pg.account)
    # A secret and a query made through one process are there in the other.
    q = create_query(pg, "Shared", "SELECT id, note FROM accept_canary ORDER BY id", secret_key="pg")
    assert check_list(twin.get("secrets/"))["data"][0]["key"] == "pg"
    assert twin.get(f"analytics/queries/{q['data']['slug']}/").json()["data"] == q["data"]
    # An execution started through one process is pollable through the other...
    started = execute(pg, q["data"]["slug"], wait=0).json()
    done = poll(twin, started["execution_key"], wait=15)
    assert done.status_code == 200 and done.json()["state"] == "succeeded", done.text
    assert done.json()["data"][0] == {"id": 1, "note": "alpha"}
    # ...and cancellable through it: the query stops at the database.
    slow = create_query(pg, "Shared slow", SLOW_QUERY, secret_key="pg")
    key = execute(pg, slow["data"]["slug"], wait=0).json()["execution_key"]
    wait_for_state(twin, key, {"running"})
    wait_until(lambda: slow_running(ext_pg), "query never reached the database")
    r = twin.delete(f"analytics/executions/{key}/")
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    wait_until(lambda: not slow_running(ext_pg), "query still running at the database", timeout=10)
    after = poll(pg, key).json()
    assert (after["status"], after["state"], after["code"]) == ("error", "cancelled", "QueryCancelled")


# -- 3/4. limits from the environment: clamped, not refused ---------------------------------------


def test_tenant_concurrency_wait_and_timeout_limits(pg, more_apis, ext_pg):
    """ANALYTICS_TENANT_CONCURRENCY=2, ANALYTICS_SYNC_WAIT=0.5, ANALYTICS_MAX_WAIT=2,
    ANALYTICS_QUERY_TIMEOUT=3 in the tight process."""
    tight = HttpCaller(more_apis["tight"], pg.account)
    slow = create_query(pg, "Slow", SLOW_QUERY, secret_key="pg")["data"]["slug"]
    fast = create_query(pg, "Fast", "SELECT 1 AS one", secret_key="pg")["data"]["slug"]

    # Two slow executions fill the tenant's slots; a third is refused at once.
    first = execute(tight, slow, wait=0)
    second = execute(tight, slow, wait=0)
    assert first.status_code == 202 and second.status_code == 202, (first.text, second.text)
    third = execute(tight, fast, wait=0)
    data = check_error(third, 429, "RateLimited")
    assert int(third.headers["Retry-After"]) >= 1
    assert "execution_key" not in data

    # Cancelling one frees its slot.
    assert tight.delete(f"analytics/executions/{second.json()['execution_key']}/").status_code == 200
    ok = execute(tight, fast, wait=5)
    assert ok.status_code == 200, ok.text

    # The first one runs into ANALYTICS_QUERY_TIMEOUT (the query has no timeout of its own).
    key = first.json()["execution_key"]
    r = poll(tight, key, wait=10**6)  # clamped to ANALYTICS_MAX_WAIT, not refused
    assert r.status_code == 200, r.text
    final = wait_for_state(tight, key, {"failed", "succeeded", "cancelled"}, timeout=15)
    assert (final["status"], final["state"], final["code"]) == ("error", "failed", "QueryTimeoutError"), final
    wait_until(lambda: not slow_running(ext_pg), "query still running at the database", timeout=10)

    # Waits are clamped: the slow query ends with a 504 after ANALYTICS_QUERY_TIMEOUT (3 s), so
    # an answer of 202 proves the call stopped waiting first, at ANALYTICS_MAX_WAIT (2 s) for a
    # huge `wait` and at ANALYTICS_SYNC_WAIT (0.5 s) by default.
    for response in (execute(tight, slow, wait=10**6), tight.post(f"analytics/queries/{slow}/execute/", {})):
        assert response.status_code == 202, response.text
        tight.delete(f"analytics/executions/{response.json()['execution_key']}/")
    wait_until(lambda: not slow_running(ext_pg), "query still running at the database", timeout=10)


def test_max_rows_default_and_cap_come_from_the_environment(pg, more_apis):
    tight = HttpCaller(more_apis["tight"], pg.account)
    slug = create_query(pg, "Ten", TEN_ROWS, secret_key="pg")["data"]["slug"]
    for fields, rows, truncated in (({}, 5, True), ({"max_rows": 10**9}, 5, True), ({"max_rows": 3}, 3, True)):
        r = execute(tight, slug, wait=2, **fields)
        assert r.status_code == 200, r.text
        data = r.json()
        assert [row["g"] for row in data["data"]] == list(range(1, rows + 1))
        assert (data["total"], data["truncated"]) == (rows, truncated)
    # The main process keeps its own default (10000).
    data = execute(pg, slug).json()
    assert (data["total"], data["truncated"]) == (10, False)


def test_result_ttl_then_the_key_is_unknown(pg, more_apis):
    tight = HttpCaller(more_apis["tight"], pg.account)
    slug = create_query(pg, "Slow", SLOW_QUERY, secret_key="pg")["data"]["slug"]
    key = execute(tight, slug, wait=0).json()["execution_key"]
    assert tight.delete(f"analytics/executions/{key}/").status_code == 200
    assert poll(tight, key).json()["state"] == "cancelled"
    wait_until(lambda: poll(tight, key).status_code == 404, "a finished execution outlived ANALYTICS_RESULT_TTL",
               timeout=6)
    check_error(poll(pg, key), 404, "NotFound")


def test_body_limit_413_is_a_validation_error(pg, more_apis):
    tight = HttpCaller(more_apis["tight"], pg.account)
    r = tight.post("secrets/", {"key": "big", "type_slug": "generic", "value": "x" * 5000})
    data = check_error(r, 413, "ValidationError")
    assert "4096" in data["message"]
    # The default limit is 1 MiB.
    r = pg.post("secrets/", {"key": "big", "type_slug": "generic", "value": "x" * (1024 * 1024)})
    check_error(r, 413, "ValidationError")
    r = pg.post("secrets/", {"key": "big", "type_slug": "generic", "value": "x" * (1000 * 1000)})
    assert r.status_code == 201, r.text

    # A chunked body (no Content-Length) is held to the same limit, not cut at it: a cut
    # document padded with blanks would otherwise pass as valid JSON.
    def chunked(size: int):
        yield b'{"key": "padded", "type_slug": "generic", "value": 1}'
        for _ in range(size // 1024):
            yield b" " * 1024

    url = pg.base + pg.account.url("secrets/")
    headers = {**pg.account.headers, "Content-Type": "application/json"}
    r = requests.post(url, data=chunked(1024 * 1024 + 4096), headers=headers, timeout=30)
    check_error(r, 413, "ValidationError")
    r = requests.post(url, data=chunked(64 * 1024), headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    assert [s["key"] for s in check_list(pg.get("secrets/"))["data"]] == ["big", "padded", "pg"]


# -- 4. envelope ---------------------------------------------------------------------------------


def test_lists_paginate_and_total_counts_every_match(pg):
    for name in ("Alpha", "Beta", "Gamma", "Delta", "Epsilon"):
        create_query(pg, name, "SELECT 1 AS one", secret_key="pg", tags=["even" if name in ("Beta", "Delta") else "odd"])
    page = check_list(pg.get("analytics/queries/?page_size=2"))
    assert ([q["slug"] for q in page["data"]], page["total"]) == (["alpha", "beta"], 5)
    page = check_list(pg.get("analytics/queries/?page=3&page_size=2"))
    assert ([q["slug"] for q in page["data"]], page["total"]) == (["gamma"], 5)
    page = check_list(pg.get("analytics/queries/?page=4&page_size=2"))
    assert (page["data"], page["total"]) == ([], 5)
    page = check_list(pg.get("analytics/queries/?tag=odd&page_size=1"))
    assert ([q["slug"] for q in page["data"]], page["total"]) == (["alpha"], 3)
    page = check_list(pg.get("analytics/queries/?page_size=501"))  # clamped, not refused
    assert page["total"] == 5 and len(page["data"]) == 5
    for item in page["data"]:
        assert set(item) == QUERY_KEYS
    secrets = check_list(pg.get("secrets/?page_size=100000&page=1"))
    assert secrets["total"] == 1
    types = check_list(pg.get("secrets/types/?page=2&page_size=4"))
    assert (len(types["data"]), types["total"]) == (2, 6)
    types = check_list(pg.get("secrets/types/?page_size=9999"))
    assert {t["slug"] for t in types["data"]} == SEEDED_TYPES
    # A page far past the end is empty, whatever its number (not a database overflow).
    for path in ("analytics/queries/", "secrets/", "secrets/types/"):
        for query in ("?page=99999999999999999999", "?page=9223372036854775807&page_size=500"):
            page = check_list(pg.get(path + query))
            assert page["data"] == [] and page["total"] > 0, (path, query)


def test_field_errors_are_keyed_by_dotted_path(http):
    r = http.post("secrets/", {"key": "db", "type_slug": "analytics-postgres", "value": {"user": "u", "database": "d"}})
    data = check_error(r, 400, "ValidationError")
    assert data["errors"] == {"value.host": ["Missing data for required field."]}
    assert set(data) == {"status", "code", "message", "errors"}
    r = http.post("secrets/", {"type_slug": "generic", "value": 1})
    assert check_error(r, 400, "ValidationError")["errors"] == {"key": ["Missing data for required field."]}
    # An error without field-level messages has no `errors`.
    data = check_error(http.get("secrets/nope/"), 404, "NotFound")
    assert set(data) == {"status", "code", "message"}


def test_every_row_of_the_error_table_over_http(pg, http, ext_pg):
    # 400 ValidationError: a field missing, of the wrong type, out of range.
    check_error(pg.post("analytics/queries/", {"name": "x"}), 400, "ValidationError")
    check_error(pg.post("analytics/queries/", {"name": 5, "query_text": "SELECT 1", "secret_key": "pg"}), 400,
                "ValidationError")
    check_error(pg.post("analytics/queries/", {"name": "x", "query_text": "SELECT 1", "secret_key": "pg",
                                               "timeout_seconds": 0}), 400, "ValidationError")
    # 400 QueryValidationError: at create (syntax, blocked, two statements) and at run time.
    for text in ("SELECT {{ x ", "DELETE FROM accept_canary", "SELECT 1; SELECT 2", "SELEC 1"):
        check_error(pg.post("analytics/queries/", {"name": "bad", "query_text": text, "secret_key": "pg"}), 400,
                    "QueryValidationError")
    # 400 SecretResolutionError, with the documented words.
    r = pg.post("analytics/queries/", {"name": "x", "query_text": "SELECT 1", "secret_key": "nope"})
    check_error(r, 400, "SecretResolutionError", "Secret not found")
    create_secret(pg, "gen", "generic", {"a": 1})
    r = pg.post("analytics/queries/", {"name": "x", "query_text": "SELECT 1", "secret_key": "gen"})
    check_error(r, 400, "SecretResolutionError", "Unsupported analytics datasource")
    r = pg.post("secrets/", {"key": "x", "type_slug": "analytics-oracle", "value": {}})
    check_error(r, 400, "SecretResolutionError", "Secret type not found")
    # ... also when the secret disappears between saving the query and running it.
    create_secret(pg, "gone", "analytics-postgres", pg_config(ext_pg))
    slug = create_query(pg, "Orphan", "SELECT 1 AS one", secret_key="gone")["data"]["slug"]
    assert pg.delete("secrets/gone/").status_code == 200
    r = execute(pg, slug)
    data = check_error(r, 400, "SecretResolutionError", "Secret not found")
    assert data["state"] == "failed" and data["execution_key"].startswith("exec_")
    # 404 NotFound: app, query, secret, execution.
    check_error(requests.get(pg.base + "/api/apps/nope/secrets/", headers=pg.account.headers, timeout=10), 404,
                "NotFound")
    check_error(pg.get("analytics/queries/nope/"), 404, "NotFound")
    check_error(pg.post("analytics/queries/nope/execute/", {}), 404, "NotFound")
    check_error(pg.get("secrets/nope/"), 404, "NotFound")
    check_error(pg.get("analytics/executions/exec_nope/"), 404, "NotFound")
    check_error(pg.delete("analytics/executions/exec_nope/"), 404, "NotFound")
    # 409 Conflict: duplicate secret key, duplicate slug.
    check_error(pg.post("secrets/", {"key": "pg", "type_slug": "generic", "value": 1}), 409, "Conflict")
    create_query(pg, "Dup", "SELECT 1 AS one", secret_key="pg", slug="dup")
    check_error(pg.post("analytics/queries/", {"name": "x", "slug": "dup", "query_text": "SELECT 1",
                                               "secret_key": "pg"}), 409, "Conflict")


# -- 5. secrets ----------------------------------------------------------------------------------


def test_secret_types_and_secret_objects(http, ext_pg):
    types = check_list(http.get("secrets/types/"))
    assert types["total"] == 6 and {t["slug"] for t in types["data"]} == SEEDED_TYPES
    for t in types["data"]:
        assert set(t) == {"slug", "name", "driver", "schema"}
        assert isinstance(t["schema"], dict)
    assert {t["slug"]: t["driver"] for t in types["data"]}["generic"] is None

    r = http.post("secrets/", {"key": "wh", "type_slug": "analytics-postgres", "value": pg_config(ext_pg),
                               "description": "Lager — 倉庫"})
    assert r.status_code == 201, r.text
    assert (r.json()["status"], set(r.json())) == ("success", {"status", "message", "data"})
    created = r.json()["data"]
    check_secret(created)
    assert (created["key"], created["type_slug"], created["description"]) == ("wh", "analytics-postgres", "Lager — 倉庫")
    assert "password" in created["fields"] and "host" in created["fields"]
    assert ext_pg.password not in r.text

    got = http.get("secrets/wh/")
    assert got.status_code == 200 and got.json()["message"] == "Data retrieved successfully"
    check_secret(got.json()["data"])
    for item in check_list(http.get("secrets/"))["data"]:
        check_secret(item)

    # PUT and PATCH may repeat type_slug, never change it.
    for method in ("PUT", "PATCH"):
        r = http.request(method, "secrets/wh/", {"type_slug": "analytics-postgres", "description": method})
        assert r.status_code == 200, r.text
        check_secret(r.json()["data"])
        assert r.json()["data"]["description"] == method
        r = http.request(method, "secrets/wh/", {"type_slug": "generic", "value": {"a": 1}})
        assert "type_slug" in check_error(r, 400, "ValidationError")["errors"]
    r = http.request("PATCH", "secrets/wh/", {"value": {"host": "h", "user": "u", "database": "d"}})
    assert r.status_code == 200, r.text
    check_secret(r.json()["data"])
    check_error(http.request("PATCH", "secrets/wh/", {"value": {"host": "h"}}), 400, "ValidationError")
    assert http.get("secrets/wh/").json()["data"]["type_slug"] == "analytics-postgres"
    r = http.delete("secrets/wh/")
    assert r.status_code == 200 and r.json()["status"] == "success", r.text
    check_error(http.get("secrets/wh/"), 404, "NotFound")


# -- 6. queries ----------------------------------------------------------------------------------


def test_query_object_defaults_and_slugs(pg):
    r = pg.post("analytics/queries/", {"name": "Top Rows", "query_text": "SELECT 1 AS one", "secret_key": "pg"})
    assert r.status_code == 201, r.text
    q = r.json()["data"]
    assert set(q) == QUERY_KEYS
    assert (q["connection_type"], q["driver"], q["secret_key"], q["slug"]) == ("external", "postgres", "pg", "top-rows")
    assert_timestamp(q["created_at"])
    assert_timestamp(q["updated_at"])
    assert [create_query(pg, "Top Rows", "SELECT 1 AS one", secret_key="pg")["data"]["slug"] for _ in range(2)] == [
        "top-rows-2", "top-rows-3",
    ]
    internal = create_query(pg, "Own", "SELECT 1 AS one", connection_type="internal")["data"]
    assert (internal["connection_type"], internal["secret_key"], internal["driver"]) == ("internal", None, "internal")
    r = pg.request("PATCH", "analytics/queries/top-rows/", {"description": "changed"})
    assert r.status_code == 200 and set(r.json()["data"]) == QUERY_KEYS, r.text
    # timeout_seconds above ANALYTICS_QUERY_TIMEOUT (30 here) is clamped, not refused.
    r = pg.request("PATCH", "analytics/queries/top-rows-2/", {"timeout_seconds": 10**6})
    assert r.status_code == 200 and r.json()["data"]["timeout_seconds"] == 30, r.text
    r = pg.delete("analytics/queries/top-rows-3/")
    assert r.status_code == 200 and r.json()["status"] == "success", r.text


ALL_TYPES = [
    {"name": "i", "type": "integer", "default": 1},
    {"name": "n", "type": "number", "default": 0.5},
    {"name": "b", "type": "boolean", "default": False},
    {"name": "t", "type": "text", "default": "x"},
    {"name": "d", "type": "date", "default": "2000-01-01"},
    {"name": "ts", "type": "datetime", "default": "2000-01-01T00:00:00"},
    {"name": "e", "type": "enum", "values": ["a", "b"], "default": "a"},
    {"name": "ids", "type": "list", "item_type": "integer", "default": [1]},
    {"name": "col", "type": "identifier", "values": ["id", "note"], "default": "id"},
]
ALL_TYPES_SQL = """
SELECT {{ i }} AS i, {{ n }} AS n, {{ b }} AS b, {{ t }} AS t, {{ d }}::date AS d, {{ ts }}::timestamp AS ts,
       {{ e }} AS e, '{{ free }}' AS free,
       (SELECT count(*) FROM accept_canary WHERE id IN ({{ ids }})) AS in_count,
       (SELECT string_agg({{ col }}::text, ',' ORDER BY id) FROM accept_canary) AS col_values
"""


@pytest.fixture()
def typed(pg):
    return create_query(pg, "Typed", ALL_TYPES_SQL, secret_key="pg", parameters=ALL_TYPES)["data"]["slug"]


def test_every_parameter_type_renders_at_run_time(pg, typed):
    params = {
        "i": 42, "n": "12.50", "b": True, "t": "it's ü — 説明", "d": "2024-02-29", "ts": "2024-01-02T03:04:05",
        "e": "b", "ids": [1, 3], "col": "note", "free": "O'Brien 🎉 {{ secret.pg.password }}",
    }
    r = execute(pg, typed, params)
    assert r.status_code == 200, r.text
    row = body(r)["data"]
    assert row == [{
        "i": 42, "n": Decimal("12.50"), "b": True, "t": "it's ü — 説明", "d": "2024-02-29",
        "ts": "2024-01-02T03:04:05", "e": "b", "free": "O'Brien 🎉 {{ secret.pg.password }}", "in_count": 2,
        "col_values": "alpha,beta,gamma",
    }]
    # Defaults fill in what is not given; an undeclared variable is a plain text parameter.
    r = execute(pg, typed, {"free": "plain"})
    assert r.status_code == 200, r.text
    assert body(r)["data"][0] == {
        "i": 1, "n": Decimal("0.5"), "b": False, "t": "x", "d": "2000-01-01", "ts": "2000-01-01T00:00:00",
        "e": "a", "free": "plain", "in_count": 1, "col_values": "1,2,3",
    }
    # Query-string style values (strings) are accepted for typed parameters.
    r = execute(pg, typed, {"i": "7", "b": "false", "ids": ["2"], "free": ""})
    assert r.status_code == 200, r.text
    assert body(r)["data"][0]["i"] == 7 and body(r)["data"][0]["in_count"] == 1


@pytest.mark.parametrize(
    "name, value",
    [
        ("i", "x"), ("i", 1.5), ("i", True), ("n", "abc"), ("n", True), ("b", "yes"), ("b", 1), ("t", 5),
        ("t", ["a"]), ("d", "2024-13-01"), ("d", "yesterday"), ("ts", "soon"), ("e", "c"), ("e", 1),
        ("ids", "1,2"), ("ids", [1, "x"]), ("ids", [None]), ("col", "password"), ("col", 'id"; DROP TABLE x; --'),
    ],
)
def test_declared_values_are_checked_before_anything_is_enqueued(pg, typed, platform_db, name, value):
    before = execution_rows(platform_db, pg.account)
    r = execute(pg, typed, {name: value, "free": "x"})
    data = check_error(r, 400, "ValidationError")
    assert list(data["errors"]) == [f"params.{name}"], data
    assert f"'{name}'" in data["message"], data
    assert "execution_key" not in data
    assert execution_rows(platform_db, pg.account) == before


def test_required_parameters_and_reserved_names(pg, platform_db):
    slug = create_query(pg, "Req", "SELECT {{ n }} AS n", secret_key="pg",
                        parameters=[{"name": "n", "type": "integer", "required": True}])["data"]["slug"]
    data = check_error(execute(pg, slug, {}), 400, "ValidationError")
    assert data["errors"] == {"params.n": ["Missing required parameter"]} and "'n'" in data["message"]
    check_error(execute(pg, slug, {"n": None}), 400, "ValidationError")
    data = check_error(execute(pg, slug, {"n": 1, "secret": "x"}), 400, "ValidationError")
    assert "params.secret" in data["errors"]
    data = check_error(execute(pg, slug, {"n": 1, "not an identifier": "x"}), 400, "ValidationError")
    assert list(data["errors"]) == ["params.not an identifier"]
    assert execution_rows(platform_db, pg.account) == 0
    r = pg.post("analytics/queries/", {"name": "R", "query_text": "SELECT '{{ secret }}'", "secret_key": "pg",
                                       "parameters": [{"name": "secret", "type": "text"}]})
    check_error(r, 400, "ValidationError")
    assert execute(pg, slug, {"n": "3"}).json()["data"] == [{"n": 3}]


# -- 7. execution --------------------------------------------------------------------------------


def test_result_and_pending_bodies_are_exact(pg):
    fast = create_query(pg, "Fast", "SELECT 1 AS one, 'ü' AS \"ключ\"", secret_key="pg")["data"]["slug"]
    r = execute(pg, fast)
    assert r.status_code == 200, r.text
    data = r.json()
    assert set(data) == RESULT_KEYS, data
    assert (data["status"], data["message"], data["state"]) == ("success", "Query executed successfully", "succeeded")
    assert data["data"] == [{"one": 1, "ключ": "ü"}] and data["total"] == 1
    assert [c["name"] for c in data["columns"]] == ["one", "ключ"] and set(data["columns"][0]) == {"name", "type"}
    assert list(data["data"][0]) == ["one", "ключ"]  # rows keep the column order
    assert "Location" not in r.headers
    # Polling a finished execution gives the same body.
    again = poll(pg, data["execution_key"])
    assert again.status_code == 200 and again.json() == data

    slow = create_query(pg, "Slow", SLOW_QUERY, secret_key="pg")["data"]["slug"]
    r = execute(pg, slow, wait=0)
    assert r.status_code == 202, r.text
    pending = r.json()
    assert set(pending) == PENDING_KEYS, pending
    assert pending["status"] == "pending" and pending["state"] in ("queued", "running") and pending["message"]
    assert re.fullmatch(r"exec_[A-Za-z0-9_-]{22,}", pending["execution_key"])
    assert r.headers["Location"] == pending["poll_url"]
    assert pending["poll_url"] == pg.account.url(f"analytics/executions/{pending['execution_key']}/")
    # The poll URL works as given.
    p = pg.get(pg.base + pending["poll_url"])
    assert p.status_code == 200 and set(p.json()) == PENDING_KEYS, p.text
    assert p.json()["status"] == "pending"
    # Cancel answers 200 with state cancelled; a cancelled execution reads as an error.
    r = pg.delete(f"analytics/executions/{pending['execution_key']}/")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["state"], r.json()["execution_key"]) == (
        "success", "cancelled", pending["execution_key"])
    after = poll(pg, pending["execution_key"])
    assert after.status_code == 200
    assert set(after.json()) >= {"status", "code", "message", "execution_key", "state"}
    assert (after.json()["status"], after.json()["state"], after.json()["code"]) == ("error", "cancelled",
                                                                                      "QueryCancelled")


def test_failed_executions_carry_key_and_state(pg):
    slug = create_query(pg, "Broken", "SELECT 1/0 AS boom", secret_key="pg")["data"]["slug"]
    r = execute(pg, slug)
    data = check_error(r, 400, "QueryExecutionError")
    assert data["state"] == "failed" and data["execution_key"].startswith("exec_")
    assert "errors" not in data or data["errors"]
    # Read back: 200, status error, the same code and message.
    got = poll(pg, data["execution_key"])
    assert got.status_code == 200, got.text
    read = got.json()
    assert (read["status"], read["state"], read["code"], read["message"]) == (
        "error", "failed", "QueryExecutionError", data["message"])
    # A finished execution cannot be cancelled: 409, whether it succeeded or failed.
    check_error(pg.delete(f"analytics/executions/{data['execution_key']}/"), 409, "Conflict")
    ok = execute(pg, create_query(pg, "Fine", "SELECT 1 AS one", secret_key="pg")["data"]["slug"]).json()
    check_error(pg.delete(f"analytics/executions/{ok['execution_key']}/"), 409, "Conflict")
    assert poll(pg, ok["execution_key"]).json()["state"] == "succeeded"


def test_another_apps_execution_key_is_not_found(pg, sessions, live):
    with session_scope(sessions) as session:
        create_app_row(session, pg.account.tenant, "second")
    slug = create_query(pg, "One", "SELECT 1 AS one", secret_key="pg")["data"]["slug"]
    key = execute(pg, slug).json()["execution_key"]
    other_app = pg.base + f"/api/apps/second/analytics/executions/{key}/"
    check_error(pg.get(other_app), 404, "NotFound")
    check_error(pg.delete(other_app), 404, "NotFound")
    assert poll(pg, key).status_code == 200


def test_wait_is_accepted_as_a_string_number(pg):
    slug = create_query(pg, "Slow", SLOW_QUERY, secret_key="pg")["data"]["slug"]
    r = execute(pg, slug, wait="0")
    assert r.status_code == 202, r.text
    key = r.json()["execution_key"]
    r = pg.get(f"analytics/executions/{key}/?wait=0.5")
    assert r.status_code == 200 and r.json()["status"] == "pending"
    check_error(pg.get(f"analytics/executions/{key}/?wait=soon"), 400, "ValidationError")
    check_error(pg.get(f"analytics/executions/{key}/?wait=-1"), 400, "ValidationError")
    # `wait` in the execute URL's query string is honoured too (the body's value wins).
    r = pg.post(f"analytics/queries/{slug}/execute/?wait=0", {})
    assert r.status_code == 202, r.text
    for k in (key, r.json()["execution_key"]):
        assert pg.delete(f"analytics/executions/{k}/").status_code == 200
    check_error(pg.post(f"analytics/queries/{slug}/execute/?wait=soon", {}), 400, "ValidationError")


def test_max_rows_is_a_whole_number(pg):
    slug = create_query(pg, "Ten", TEN_ROWS, secret_key="pg")["data"]["slug"]
    for bad in (5.5, "5.5", True, 0, -1, "many"):
        data = check_error(execute(pg, slug, max_rows=bad), 400, "ValidationError")
        assert list(data["errors"]) == ["max_rows"], data
    for good, rows in ((5, 5), ("5", 5), (5.0, 5), (10**30, 10)):
        r = execute(pg, slug, max_rows=good)
        assert r.status_code == 200 and r.json()["total"] == rows, r.text
    r = pg.post(f"analytics/queries/{slug}/execute/?max_rows=3", {})
    assert r.status_code == 200 and r.json()["total"] == 3 and r.json()["truncated"] is True, r.text
    r = pg.post(f"analytics/queries/{slug}/execute/?max_rows=3", {"max_rows": 4})
    assert r.status_code == 200 and r.json()["total"] == 4, r.text


# -- odd but valid requests ------------------------------------------------------------------------


def test_empty_or_charset_bodies_on_execute(pg):
    slug = create_query(pg, "One", "SELECT 1 AS one", secret_key="pg")["data"]["slug"]
    url = pg.base + pg.account.url(f"analytics/queries/{slug}/execute/")
    for data, headers in (
        (None, {}),
        (b"", {"Content-Type": "application/json"}),
        (b"{}", {"Content-Type": "application/json; charset=utf-8"}),
        ('{"params": {}, "wait": 5}'.encode(), {"Content-Type": "application/json; charset=UTF-8"}),
    ):
        r = pg.http.post(url, data=data, headers=headers, timeout=30)
        assert r.status_code == 200, (data, headers, r.text)
        assert r.json()["data"] == [{"one": 1}]
    r = pg.http.post(pg.base + pg.account.url("secrets/"), headers={"Content-Type": "application/json; charset=utf-8"},
                     data='{"key": "uni", "type_slug": "generic", "value": {"ключ": "значение"}}'.encode())
    assert r.status_code == 201 and r.json()["data"]["fields"] == ["ключ"], r.text


def test_urls_without_a_trailing_slash_answer_like_with_one(pg):
    slug = create_query(pg, "One", "SELECT 1 AS one", secret_key="pg")["data"]["slug"]
    base = pg.base + pg.account.url("")
    for path in ("secrets", "secrets/types", "secrets/pg", "analytics/queries", f"analytics/queries/{slug}"):
        r = pg.http.get(base + path, allow_redirects=False, timeout=10)
        assert r.status_code == 200, (path, r.status_code, r.text)
        assert r.json()["status"] == "success"
    r = pg.http.post(base + f"analytics/queries/{slug}/execute", json={}, allow_redirects=False, timeout=30)
    assert r.status_code == 200 and r.json()["data"] == [{"one": 1}], r.text
    key = r.json()["execution_key"]
    r = pg.http.get(base + f"analytics/executions/{key}", allow_redirects=False, timeout=10)
    assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
    r = pg.http.put(base + "secrets/pg", json={"description": "no slash"}, allow_redirects=False, timeout=10)
    assert r.status_code == 200 and r.json()["data"]["description"] == "no slash", r.text
    # Without a token it is still a 401 envelope, never a redirect or HTML.
    r = requests.get(base + "secrets", allow_redirects=False, timeout=10)
    check_error(r, 401, "AuthenticationError")
    check_error(pg.http.get(base + "nothing", allow_redirects=False, timeout=10), 404, "NotFound")


def test_head_and_options(pg, live):
    url = pg.base + pg.account.url("secrets/")
    r = pg.http.head(url, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json") and not r.content
    r = requests.head(url, timeout=10)
    assert r.status_code == 401 and not r.content
    r = requests.options(url, timeout=10)
    assert r.status_code == 200, r.text
    assert {"GET", "POST", "HEAD", "OPTIONS"} <= {m.strip() for m in r.headers["Allow"].split(",")}
    r = requests.options(pg.base + pg.account.url("analytics/queries/x/execute/"), timeout=10)
    assert r.status_code == 200 and "POST" in r.headers["Allow"], r.text
    for path in ("/healthz", "/readyz", "/api/openapi.json"):
        assert requests.head(live + path, timeout=10).status_code == 200, path


# -- 11. operations ----------------------------------------------------------------------------------


def test_health_ready_docs_over_http(live):
    r = requests.get(live + "/healthz", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "success"
    r = requests.get(live + "/readyz", timeout=10)
    assert r.status_code == 200 and r.json()["data"] == {"database": "ok", "redis": "ok", "broker": "ok"}, r.text
    r = requests.get(live + "/api/openapi.json", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    spec = r.json()
    assert spec["openapi"].startswith("3.") and "/api/apps/{app_slug}/analytics/queries/{slug}/execute/" in spec["paths"]
    r = requests.get(live + "/api/docs", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "openapi.json" in r.text


def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_executions_by_driver_and_state(pg, live, ext_pg):
    def scrape() -> str:
        r = requests.get(live + "/metrics", timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
        return r.text

    before = scrape()
    fast = create_query(pg, "Fast", "SELECT 1 AS one", secret_key="pg")["data"]["slug"]
    assert execute(pg, fast).status_code == 200
    slow = create_query(pg, "Slow", SLOW_QUERY, secret_key="pg")["data"]["slug"]
    key = execute(pg, slow, wait=0).json()["execution_key"]
    wait_for_state(pg, key, {"running"})
    during = scrape()
    assert _sample(during, "analytics_executions", driver="postgres", state="succeeded") >= (
        _sample(before, "analytics_executions", driver="postgres", state="succeeded") + 1)
    assert _sample(during, "analytics_executions", driver="postgres", state="running") >= 1, during
    assert _sample(during, "analytics_execution_duration_ms_count", driver="postgres") >= (
        _sample(before, "analytics_execution_duration_ms_count", driver="postgres") + 1)
    assert 'analytics_queue_depth{queue="analytics.postgres"}' in during
    assert pg.delete(f"analytics/executions/{key}/").status_code == 200
    after = scrape()
    assert _sample(after, "analytics_executions", driver="postgres", state="cancelled") >= 1
    wait_until(lambda: not slow_running(ext_pg), "query still running at the database", timeout=10)








def test_lone_surrogates_are_a_validation_error_not_a_500(pg):
    """JSON can spell half a surrogate pair ("\\ud800"); no UTF-8 text (and no PostgreSQL
    column) can hold it."""
    slug = create_query(pg, "Echo", "SELECT '{{ x }}' AS x", secret_key="pg")["data"]["slug"]
    cases = [
        ("POST", "secrets/", '{"key": "s1", "type_slug": "generic", "value": 1, "description": "a\\ud800"}',
         "description"),
        ("POST", "secrets/", '{"key": "s2", "type_slug": "generic", "value": {"\\udfff": "x"}}', "value.\udfff"),
        ("POST", "analytics/queries/", '{"name": "\\ud800", "query_text": "SELECT 1", "secret_key": "pg"}', "name"),
        ("PATCH", f"analytics/queries/{slug}/", '{"query_text": "SELECT \'\\ud800\'"}', "query_text"),
        ("POST", f"analytics/queries/{slug}/execute/", '{"params": {"x": "\\ud800"}}', "params.x"),
        ("POST", f"analytics/queries/{slug}/execute/", '{"params": {"\\ud800": "x"}}', "params.\ud800"),
    ]
    for method, path, raw, field in cases:
        r = pg.request(method, path, data=raw.encode(), headers={"Content-Type": "application/json"})
        data = check_error(r, 400, "ValidationError")
        assert list(data["errors"]) == [field], (path, data)
    assert check_list(pg.get("analytics/queries/"))["total"] == 1
    assert check_list(pg.get("secrets/"))["total"] == 1
    # A proper pair is one character and fine.
    r = execute(pg, slug, {"x": "\U0001F600"})
    assert r.status_code == 200 and r.json()["data"] == [{"x": "\U0001F600"}], r.text

