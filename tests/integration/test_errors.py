"""The envelope and the error table (CONTRACT section 4): every bad request gets the right
status and code in JSON, none is a 500, and none loses or changes stored data."""
from __future__ import annotations

from dataclasses import replace

import pytest

from shared.crypto import SecretBox

PG_VALUE = {"host": "db.example.com", "user": "u", "database": "d", "password": "pw-errors-never-shown"}


@pytest.fixture()
def state(api, platform_db, secret_key):
    """A secret `db` and queries `q` and `q2`; ``state()`` reads everything back."""
    assert api.post("secrets/", {"key": "db", "type_slug": "analytics-postgres", "value": PG_VALUE,
                                 "description": "keep me"})[0] == 201
    for name in ("q", "q2"):
        status, body = api.post("analytics/queries/", {"name": name, "connection_type": "internal",
                                                      "query_text": "SELECT 1 AS one", "tags": ["t"]})
        assert status == 201, body

    def read():
        with platform_db.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT s.value_encrypted FROM platform.secrets s JOIN platform.apps a ON a.id = s.app_id "
                        "JOIN platform.tenants t ON t.id = a.tenant_id WHERE t.slug = %s AND s.key = 'db'",
                        (api.account.tenant,))
            (ciphertext,) = cur.fetchone()
        return {
            "value": SecretBox((secret_key,)).decrypt_json(ciphertext),
            "secrets": api.get("secrets/")[1],
            "queries": api.get("analytics/queries/")[1],
        }

    return read


def check_error(response, status, code):
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "application/json", text
    body = response.get_json()
    assert body["status"] == "error" and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in text and "<html" not in text.lower()
    if "errors" in body:
        assert all(isinstance(v, list) for v in body["errors"].values()), body
    return body


JSON = "application/json"

# (method, path, raw body or JSON value, content type, status, code, expected `errors` or None)
BAD_REQUESTS = [
    # malformed JSON, whatever the method
    ("POST", "secrets/", '{"key": "x",', JSON, 400, "ValidationError", None),
    ("PUT", "secrets/db/", '{"description": "changed",', JSON, 400, "ValidationError", None),
    ("PATCH", "secrets/db/", "{description: 'changed'}", JSON, 400, "ValidationError", None),
    ("PUT", "analytics/queries/q/", '{"name": "changed"', JSON, 400, "ValidationError", None),
    ("POST", "analytics/queries/", "not json at all", JSON, 400, "ValidationError", None),
    ("PUT", "secrets/db/", b'{"description": "\xff\xfe"}', JSON, 400, "ValidationError", None),
    ("PUT", "secrets/db/", '{"description": "changed"}', "text/plain", 400, "ValidationError", None),
    ("PUT", "secrets/db/", "description=changed", "application/x-www-form-urlencoded", 400, "ValidationError", None),
    ("PUT", "secrets/db/", '{"description": "a", "description": "b"}', JSON, 400, "ValidationError", None),
    ("PUT", "secrets/db/", '{"value": {"host": "a", "host": "b", "user": "u", "database": "d"}}', JSON, 400,
     "ValidationError", None),
    # not an object
    ("POST", "secrets/", [], None, 400, "ValidationError", None),
    ("PUT", "secrets/db/", "null", JSON, 400, "ValidationError", None),
    ("PATCH", "analytics/queries/q/", '"name"', JSON, 400, "ValidationError", None),
    ("PUT", "analytics/queries/q/", "42", JSON, 400, "ValidationError", None),
    # wrong types
    ("POST", "secrets/", {"key": 5, "type_slug": "generic", "value": 1}, None, 400, "ValidationError",
     {"key": ["Not a valid string."]}),
    ("PUT", "secrets/db/", {"description": 5}, None, 400, "ValidationError", {"description": ["Not a valid string."]}),
    ("PUT", "secrets/db/", {"description": None}, None, 400, "ValidationError", {"description": ["Field may not be null."]}),
    ("PUT", "secrets/db/", {"value": {**PG_VALUE, "port": "x"}}, None, 400, "ValidationError",
     {"value.port": ["Not a valid integer."]}),
    ("PATCH", "analytics/queries/q/", {"tags": "t"}, None, 400, "ValidationError", {"tags": ["Not a valid list."]}),
    ("PATCH", "analytics/queries/q/", {"tags": [1]}, None, 400, "ValidationError", {"tags.0": ["Not a valid string."]}),
    ("PATCH", "analytics/queries/q/", {"timeout_seconds": "soon"}, None, 400, "ValidationError",
     {"timeout_seconds": ["Not a valid integer."]}),
    ("PATCH", "analytics/queries/q/", {"name": ""}, None, 400, "ValidationError", None),
    ("PATCH", "analytics/queries/q/", {"name": None}, None, 400, "ValidationError", None),
    ("PATCH", "analytics/queries/q/", {"connection_type": "sideways"}, None, 400, "ValidationError", None),
    ("PATCH", "analytics/queries/q/", {"parameters": {"name": "x"}}, None, 400, "ValidationError", None),
    ("PATCH", "analytics/queries/q/", {"query_text": ["SELECT 1"]}, None, 400, "ValidationError", None),
    # unknown fields
    ("POST", "secrets/", {"key": "x", "type_slug": "generic", "value": 1, "owner": "me"}, None, 400,
     "ValidationError", {"owner": ["Unknown field."]}),
    ("PUT", "secrets/db/", {"key": "renamed"}, None, 400, "ValidationError", {"key": ["Unknown field."]}),
    ("PATCH", "analytics/queries/q/", {"id": 99}, None, 400, "ValidationError", {"id": ["Unknown field."]}),
    ("PATCH", "analytics/queries/q/", {"driver": "mysql"}, None, 400, "ValidationError", {"driver": ["Unknown field."]}),
    # missing fields
    ("POST", "secrets/", {}, None, 400, "ValidationError", {
        "key": ["Missing data for required field."], "type_slug": ["Missing data for required field."],
        "value": ["Missing data for required field."],
    }),
    ("POST", "secrets/", {"key": "x", "type_slug": "analytics-postgres", "value": {"user": "u", "database": "d"}},
     None, 400, "ValidationError", {"value.host": ["Missing data for required field."]}),
    ("PUT", "secrets/db/", {"value": {"user": "u", "database": "d"}}, None, 400, "ValidationError",
     {"value.host": ["Missing data for required field."]}),
    ("POST", "analytics/queries/", {}, None, 400, "ValidationError", {
        "name": ["Missing data for required field."], "query_text": ["Missing data for required field."],
    }),
    # odd keys and slugs
    ("POST", "secrets/", {"key": "bad key", "type_slug": "generic", "value": 1}, None, 400, "ValidationError", None),
    ("POST", "secrets/", {"key": "db'; DROP TABLE x;--", "type_slug": "generic", "value": 1}, None, 400,
     "ValidationError", None),
    ("POST", "analytics/queries/", {"name": "x", "slug": "Q!", "connection_type": "internal", "query_text": "SELECT 1"},
     None, 400, "ValidationError", None),
    ("GET", "secrets/ключ/", None, None, 404, "NotFound", None),
    # NUL characters (PostgreSQL text cannot hold them) and absurd nesting
    ("GET", "secrets/db%00/", None, None, 400, "ValidationError", None),
    ("GET", "analytics/queries/?search=a%00", None, None, 400, "ValidationError", None),
    ("GET", "analytics/queries/?tag=%00", None, None, 400, "ValidationError", None),
    ("PUT", "secrets/db/", {"description": "a\x00b"}, None, 400, "ValidationError",
     {"description": ["Must not contain NUL characters."]}),
    ("PATCH", "analytics/queries/q/", {"tags": ["ok", "b\x00d"]}, None, 400, "ValidationError",
     {"tags.1": ["Must not contain NUL characters."]}),
    ("POST", "secrets/", {"key": "n", "type_slug": "generic", "value": {"a": ["\x00"]}}, None, 400, "ValidationError",
     {"value.a.0": ["Must not contain NUL characters."]}),
    ("POST", "secrets/", '{"key": "x", "type_slug": "generic", "value": ' + "[" * 50_000 + "]" * 50_000 + "}", JSON,
     400, "ValidationError", None),
    ("DELETE", "secrets/%27%20OR%201%3D1/", None, None, 404, "NotFound", None),
    ("GET", "analytics/queries/%F0%9F%92%A5/", None, None, 404, "NotFound", None),
    ("DELETE", "analytics/queries/q%25/", None, None, 404, "NotFound", None),
    # very long values
    ("POST", "secrets/", {"key": "k" * 101, "type_slug": "generic", "value": 1}, None, 400, "ValidationError", None),
    ("PUT", "secrets/db/", {"description": "d" * 2001}, None, 400, "ValidationError", None),
    ("PATCH", "analytics/queries/q/", {"name": "n" * 201}, None, 400, "ValidationError", None),
    ("PATCH", "analytics/queries/q/", {"tags": ["t" * 101]}, None, 400, "ValidationError", None),
    ("PATCH", "analytics/queries/q/", {"tags": [f"t{i}" for i in range(51)]}, None, 400, "ValidationError", None),
    ("PATCH", "analytics/queries/q/", {"query_text": "SELECT 1 " + " " * 100_000}, None, 400, "ValidationError", None),
    # duplicates
    ("POST", "secrets/", {"key": "db", "type_slug": "generic", "value": "overwrite?"}, None, 409, "Conflict", None),
    ("POST", "analytics/queries/", {"name": "x", "slug": "q", "connection_type": "internal", "query_text": "SELECT 2"},
     None, 409, "Conflict", None),
    ("PATCH", "analytics/queries/q2/", {"slug": "q"}, None, 409, "Conflict", None),
    # missing things
    ("DELETE", "secrets/gone/", None, None, 404, "NotFound", None),
    ("DELETE", "analytics/queries/gone/", None, None, 404, "NotFound", None),
    ("PUT", "analytics/queries/gone/", {"name": "x"}, None, 404, "NotFound", None),
    # query strings
    ("GET", "secrets/?page=abc", None, None, 400, "ValidationError", {"page": ["Not a valid integer."]}),
    ("GET", "analytics/queries/?page_size=lots", None, None, 400, "ValidationError", None),
    ("GET", "analytics/queries/?search=" + "s" * 201, None, None, 400, "ValidationError", None),
    # wrong method on a known route
    ("DELETE", "secrets/", None, None, 405, "MethodNotAllowed", None),
    ("POST", "secrets/db/", {"key": "x"}, None, 405, "MethodNotAllowed", None),
    ("PUT", "analytics/queries/", {"name": "x"}, None, 405, "MethodNotAllowed", None),
    ("GET", "analytics/queries/q/execute/", None, None, 405, "MethodNotAllowed", None),
]


@pytest.mark.parametrize("method, path, payload, content_type, status, code, errors", BAD_REQUESTS)
def test_bad_requests(client, account, state, method, path, payload, content_type, status, code, errors):
    before = state()
    kwargs = {"headers": account.headers}
    if content_type is None:
        kwargs["json"] = payload
    else:
        kwargs["data"] = payload
        kwargs["content_type"] = content_type
    body = check_error(client.open(account.url(path), method=method, **kwargs), status, code)
    if errors is not None:
        assert body["errors"] == errors
    assert "pw-errors-never-shown" not in str(body)
    assert state() == before


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        ("GET", "/api/nope", 404, "NotFound"),
        ("GET", "/api/apps/", 404, "NotFound"),
        ("GET", "/api/apps/main/nothing-here/", 404, "NotFound"),
        ("GET", "/nowhere", 404, "NotFound"),
        ("GET", "/api/apps/main/secrets/db/extra/", 404, "NotFound"),
        ("POST", "/healthz", 405, "MethodNotAllowed"),
        ("DELETE", "/metrics", 405, "MethodNotAllowed"),
        ("PUT", "/api/openapi.json", 405, "MethodNotAllowed"),
    ],
)
def test_unknown_routes_and_methods_answer_json(client, account, method, path, status, code):
    body = check_error(client.open(path, method=method, headers=account.headers), status, code)
    assert body["message"]
    if status == 405:
        assert client.open(path, method=method).headers.get("Allow")


def test_an_unknown_app_is_not_found(client, account):
    for app in ("no-such-app", "%F0%9F%92%A5", "a" * 300, "MAIN"):
        body = check_error(client.get(f"/api/apps/{app}/secrets/", headers=account.headers), 404, "NotFound")
        assert body["message"] == "App not found"


def test_unicode_and_long_values_round_trip(api):
    description = "Beschreibung — 説明 🎉 \u202e reversed"
    status, body = api.post("secrets/", {"key": "uni", "type_slug": "generic", "value": {"ключ": "значение"},
                                         "description": description})
    assert status == 201, body
    assert body["data"]["fields"] == ["ключ"]
    assert api.get("secrets/uni/")[1]["data"]["description"] == description

    name = "Umsätze 📈 nach Monat — 売上"
    status, body = api.post("analytics/queries/", {"name": name, "connection_type": "internal",
                                                  "query_text": "SELECT 'ü 📈' AS label", "description": description})
    assert status == 201, body
    q = api.get(f"analytics/queries/{body['data']['slug']}/")[1]["data"]
    assert (q["name"], q["slug"], q["description"], q["query_text"]) == (
        name, "umsatze-nach-monat", description, "SELECT 'ü 📈' AS label",
    )

    long_name = "L" * 200
    status, body = api.post("analytics/queries/", {"name": long_name, "connection_type": "internal",
                                                  "query_text": "SELECT 1"})
    assert status == 201, body
    assert body["data"]["name"] == long_name and len(body["data"]["slug"]) <= 120
    status, body = api.post("secrets/", {"key": "K" * 100, "type_slug": "generic", "value": 1,
                                         "description": "d" * 2000})
    assert status == 201, body


def test_page_size_is_clamped_and_total_counts_everything(api, platform_db, secret_key):
    """501 secrets: `page_size=100000` gives 500 of them, and `total` says 501."""
    ciphertext = SecretBox((secret_key,)).encrypt_json(1)
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT a.id, st.id FROM platform.apps a JOIN platform.tenants t ON t.id = a.tenant_id "
            "JOIN platform.secret_types st ON st.tenant_id = t.id AND st.slug = 'generic' "
            "WHERE t.slug = %s AND a.slug = %s",
            (api.account.tenant, api.account.app),
        )
        app_id, type_id = cur.fetchone()
        cur.execute(
            "INSERT INTO platform.secrets (app_id, type_id, key, description, value_encrypted, fields, created_at, "
            "updated_at) SELECT %s, %s, 'k' || lpad(g::text, 4, '0'), '', %s, '[]', now(), now() "
            "FROM generate_series(1, 501) AS g",
            (app_id, type_id, ciphertext),
        )

    def page(query):
        status, body = api.get("secrets/" + query)
        assert status == 200, body
        assert (body["status"], body["message"]) == ("success", "Data retrieved successfully")
        return len(body["data"]), body["total"], body["data"][0]["key"] if body["data"] else None

    assert page("") == (50, 501, "k0001")
    assert page("?page_size=100000") == (500, 501, "k0001")
    assert page("?page=2&page_size=100000") == (1, 501, "k0501")
    assert page("?page_size=500&page=2") == (1, 501, "k0501")
    assert page("?page=0&page_size=10") == (10, 501, "k0001")
    assert page("?page=-3&page_size=10") == (10, 501, "k0001")
    assert page("?page_size=0") == (1, 501, "k0001")
    assert page("?page_size=-1") == (1, 501, "k0001")
    assert page("?page=11&page_size=50") == (1, 501, "k0501")
    assert page("?page=12&page_size=50") == (0, 501, None)


def test_oversize_bodies_get_413(settings, account):
    from api.app import create_app

    small = create_app(replace(settings, max_body_bytes=2048), {"TESTING": True})
    client = small.test_client()
    try:
        response = client.post(account.url("secrets/"), headers=account.headers,
                               json={"key": "big", "type_slug": "generic", "value": "x" * 4096})
        body = check_error(response, 413, "ValidationError")
        assert "2048" in body["message"]
        response = client.put(account.url("secrets/big/"), headers=account.headers, data="{" + " " * 5000 + "}",
                              content_type="application/json")
        check_error(response, 413, "ValidationError")
        assert client.get(account.url("secrets/"), headers=account.headers).get_json()["total"] == 0
        # Under the limit it works.
        response = client.post(account.url("secrets/"), headers=account.headers,
                               json={"key": "small", "type_slug": "generic", "value": "x" * 1024})
        assert response.status_code == 201, response.get_json()
    finally:
        small.extensions["analytics"].engine.dispose()


def test_an_unexpected_error_is_a_generic_500(flask_app, client, account, monkeypatch):
    from shared.services import secrets as service

    def boom(*args, **kwargs):
        raise RuntimeError("secret detail: pw-errors-never-shown at /srv/app.py line 3")

    monkeypatch.setattr(service, "list_secrets", boom)
    body = check_error(client.get(account.url("secrets/"), headers=account.headers), 500, "InternalError")
    assert body == {"status": "error", "code": "InternalError", "message": "An internal error occurred"}
