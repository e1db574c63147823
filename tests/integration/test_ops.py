"""Operational endpoints (CONTRACT section 11): liveness, readiness, metrics, OpenAPI."""
from __future__ import annotations

import re
from dataclasses import replace

import pytest

from shared.jobs import Queue
from tests.support.fixtures import free_port


@pytest.fixture()
def app_with(settings):
    """Build apps with changed settings; their engines are disposed afterwards."""
    from api.app import create_app

    built = []

    def build(**changes):
        app = create_app(replace(settings, **changes), {"TESTING": True})
        built.append(app)
        return app.test_client()

    yield build
    for app in built:
        app.extensions["analytics"].engine.dispose()


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "success"


def test_readyz_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "success"
    assert body["data"] == {"database": "ok", "redis": "ok", "broker": "ok"}


@pytest.mark.parametrize("broken", ["redis_url", "broker_url", "database_url"])
def test_readyz_is_503_when_a_dependency_is_unreachable(app_with, settings, broken):
    port = free_port()  # nothing listens there
    url = {
        "redis_url": f"redis://127.0.0.1:{port}/0",
        "broker_url": f"redis://127.0.0.1:{port}/0",
        "database_url": settings.database_url.replace(":5432/", f":{port}/"),
    }[broken]
    response = app_with(**{broken: url}).get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert (body["status"], body["code"]) == ("error", "ServiceUnavailable")
    expected = {"database": "ok", "redis": "ok", "broker": "ok"}
    expected[broken.removesuffix("_url")] = "unreachable"
    assert body["data"] == expected
    assert "password" not in response.get_data(as_text=True).lower()


def test_openapi_document_lists_the_paths(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["info"]["title"] == "Analytics API"
    paths = set(spec["paths"])
    for path in (
        "/api/apps/{app_slug}/secrets/",
        "/api/apps/{app_slug}/secrets/types/",
        "/api/apps/{app_slug}/secrets/{key}/",
        "/api/apps/{app_slug}/secrets/{key}/test/",
        "/api/apps/{app_slug}/analytics/queries/",
        "/api/apps/{app_slug}/analytics/queries/{slug}/",
        "/api/apps/{app_slug}/analytics/queries/{slug}/execute/",
        "/api/apps/{app_slug}/analytics/executions/{execution_key}/",
    ):
        assert path in paths, sorted(paths)
    assert set(spec["paths"]["/api/apps/{app_slug}/secrets/{key}/"]) >= {"get", "put", "patch", "delete"}
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    # The documented response of a secret has field names, never a value.
    secret_schema = spec["components"]["schemas"]["Secret"]["properties"]
    assert "fields" in secret_schema and "value" not in secret_schema


def test_docs_page(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "swagger" in response.get_data(as_text=True).lower()


def _sample(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_in_prometheus_text(client, account, platform_db):
    def scrape() -> str:
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.mimetype == "text/plain"
        return response.get_data(as_text=True)

    before = scrape()
    assert "# TYPE analytics_executions gauge" in before
    assert "# TYPE analytics_queue_depth gauge" in before
    for queue in Queue:
        assert f'analytics_queue_depth{{queue="{queue.value}"}}' in before

    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT a.id, t.id FROM platform.apps a JOIN platform.tenants t ON t.id = a.tenant_id WHERE t.slug = %s",
            (account.tenant,),
        )
        app_id, tenant_id = cur.fetchone()
        cur.execute(
            "INSERT INTO platform.executions (key, tenant_id, app_id, driver, parameters, max_rows, timeout_seconds, "
            "state, attempts, created_at, duration_ms) VALUES "
            "('exec_metrics_1', %(t)s, %(a)s, 'clickhouse', '{}', 10, 10, 'succeeded', 1, now(), 42), "
            "('exec_metrics_2', %(t)s, %(a)s, 'clickhouse', '{}', 10, 10, 'failed', 1, now(), 7000)",
            {"t": tenant_id, "a": app_id},
        )
    after = scrape()
    for state in ("succeeded", "failed"):
        labels = f'driver="clickhouse",state="{state}"'
        assert _sample(after, "analytics_executions", labels) == _sample(before, "analytics_executions", labels) + 1
    count = 'driver="clickhouse"'
    assert _sample(after, "analytics_execution_duration_ms_count", count) == (
        _sample(before, "analytics_execution_duration_ms_count", count) + 2
    )
    le_50 = 'driver="clickhouse",le="50"'
    assert _sample(after, "analytics_execution_duration_ms_bucket", le_50) == (
        _sample(before, "analytics_execution_duration_ms_bucket", le_50) + 1
    )


def test_ops_endpoints_need_no_token_and_resources_do(client):
    for path in ("/healthz", "/readyz", "/metrics", "/api/openapi.json", "/api/docs"):
        assert client.get(path).status_code == 200, path
    assert client.get("/api/apps/main/secrets/").status_code == 401
