"""Execution admission in the API process: the tenant concurrency limit (429 + Retry-After),
a broker that is down (503, nothing left queued), parameter checks before anything is
enqueued. No worker consumes these queues here, so executions stay queued until cancelled."""
from __future__ import annotations

import dataclasses

import pytest

from api.app import create_app
from tests.support.targets.postgres import pg_config


@pytest.fixture()
def make_client(settings, account):
    apps = []

    def build(**overrides):
        app = create_app(dataclasses.replace(settings, **overrides), {"TESTING": True})
        apps.append(app)
        return app.test_client()

    yield build
    for app in apps:
        app.extensions["analytics"].engine.dispose()


def _setup(client, account, ext_pg, query_text="SELECT 1 AS one", **fields):
    h = account.headers
    r = client.post(account.url("secrets/"), json={"key": "pg", "type_slug": "analytics-postgres", "value": pg_config(ext_pg)}, headers=h)
    assert r.status_code in (201, 409), r.get_json()
    r = client.post(account.url("analytics/queries/"), json={"name": "q", "query_text": query_text, "secret_key": "pg", **fields}, headers=h)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["data"]["slug"]


@pytest.fixture()
def idle_broker():
    """A broker database no worker of this run consumes (another run's worker that picked a
    message up would find no such execution in its own Redis and skip it)."""
    import redis

    url = "redis://127.0.0.1:6379/0"
    yield url
    redis.Redis.from_url(url).delete("analytics.postgres")


def test_tenant_concurrency_limit(make_client, account, ext_pg, idle_broker):
    # Nothing consumes these messages, so the executions stay "queued".
    client = make_client(tenant_concurrency=2, broker_url=idle_broker)
    slug = _setup(client, account, ext_pg)
    keys = []
    for _ in range(2):
        r = client.post(account.url(f"analytics/queries/{slug}/execute/"), json={"wait": 0}, headers=account.headers)
        assert r.status_code == 202, r.get_json()
        keys.append(r.get_json()["execution_key"])
    r = client.post(account.url(f"analytics/queries/{slug}/execute/"), json={"wait": 0}, headers=account.headers)
    assert r.status_code == 429 and r.get_json()["code"] == "RateLimited"
    assert int(r.headers["Retry-After"]) >= 1
    # Cancelling frees a slot.
    assert client.delete(account.url(f"analytics/executions/{keys[0]}/"), headers=account.headers).status_code == 200
    r = client.post(account.url(f"analytics/queries/{slug}/execute/"), json={"wait": 0}, headers=account.headers)
    assert r.status_code == 202
    keys.append(r.get_json()["execution_key"])
    for key in keys[1:]:
        client.delete(account.url(f"analytics/executions/{key}/"), headers=account.headers)


def test_broker_down_fails_fast_and_frees_the_slot(make_client, account, ext_pg):
    client = make_client(broker_url="redis://127.0.0.1:1/0", tenant_concurrency=1)
    slug = _setup(client, account, ext_pg)
    for _ in range(2):  # the second call proves the failed one released its slot
        r = client.post(account.url(f"analytics/queries/{slug}/execute/"), json={"wait": 0}, headers=account.headers)
        assert r.status_code == 503, r.get_json()
        assert r.get_json()["code"] == "ServiceUnavailable"


def test_declared_parameters_are_checked_before_enqueue(make_client, account, ext_pg):
    client = make_client(broker_url="redis://127.0.0.1:1/0")  # enqueuing would fail with 503
    slug = _setup(
        client, account, ext_pg, "SELECT {{ n }} AS n, '{{ s }}' AS s",
        parameters=[{"name": "n", "type": "integer", "required": True},
                    {"name": "s", "type": "enum", "values": ["a", "b"], "default": "a"}],
    )
    url = account.url(f"analytics/queries/{slug}/execute/")
    for params, field in (({}, "n"), ({"n": "x"}, "n"), ({"n": 1, "s": "c"}, "s")):
        r = client.post(url, json={"params": params}, headers=account.headers)
        assert r.status_code == 400 and r.get_json()["code"] == "ValidationError", r.get_json()
        assert field in r.get_json()["message"] + str(r.get_json().get("errors"))


@pytest.mark.parametrize("body", [{"wait": -1}, {"max_rows": 0}, {"params": []}, {"wait": "soon"}, {"extra": 1}])
def test_execute_body_is_validated(make_client, account, ext_pg, body):
    client = make_client()
    slug = _setup(client, account, ext_pg)
    r = client.post(account.url(f"analytics/queries/{slug}/execute/"), json=body, headers=account.headers)
    assert r.status_code == 400 and r.get_json()["code"] == "ValidationError"


def test_unknown_query_and_execution(make_client, account):
    client = make_client()
    assert client.post(account.url("analytics/queries/nope/execute/"), json={}, headers=account.headers).status_code == 404
    r = client.get(account.url("analytics/executions/exec_nope/"), headers=account.headers)
    assert r.status_code == 404 and r.get_json()["code"] == "NotFound"
    assert client.delete(account.url("analytics/executions/not-a-key/"), headers=account.headers).status_code == 404
