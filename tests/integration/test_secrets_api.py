"""Secrets over HTTP (CONTRACT section 5, except /test/): types, create, read, update, delete,
values never shown and never stored in plaintext, tenant isolation."""
from __future__ import annotations

import secrets as random
from datetime import datetime

import pytest

from shared.crypto import SecretBox
from shared.db import session_scope
from shared.services.tenants import create_app as create_app_row

PASSWORD = "pw-" + random.token_hex(12)
PG_VALUE = {"host": "db.example.com", "user": "reporter", "database": "sales", "password": PASSWORD}
PG_FIELDS = ["connect_timeout", "database", "host", "password", "port", "sslmode", "user"]
SECRET_KEYS = {"key", "type_slug", "description", "fields", "created_at", "updated_at"}


class Recorder:
    """Calls the API as one account and keeps every response body, to search them all."""

    def __init__(self, client, account):
        self.client, self.account, self.texts = client, account, []

    def __call__(self, method, path, json=None, *, app=None, **kwargs):
        url = f"/api/apps/{app or self.account.app}/{path.lstrip('/')}"
        response = self.client.open(url, method=method, json=json, headers=self.account.headers, **kwargs)
        self.texts.append(response.get_data(as_text=True))
        assert response.status_code != 500, response.get_data(as_text=True)
        return response.status_code, response.get_json()


@pytest.fixture()
def call(client, account):
    recorder = Recorder(client, account)
    yield recorder
    for body in recorder.texts:
        assert PASSWORD not in body


@pytest.fixture()
def other_call(client, other_account):
    recorder = Recorder(client, other_account)
    yield recorder
    for body in recorder.texts:
        assert PASSWORD not in body


def stored(platform_db, account, key):
    """The row of a secret as the platform database holds it, read directly."""
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT s.value_encrypted, s.description, s.fields, s::text FROM platform.secrets s "
            "JOIN platform.apps a ON a.id = s.app_id JOIN platform.tenants t ON t.id = a.tenant_id "
            "WHERE t.slug = %s AND a.slug = %s AND s.key = %s",
            (account.tenant, account.app, key),
        )
        return cur.fetchone()


def decrypted(platform_db, secret_key, account, key):
    return SecretBox((secret_key,)).decrypt_json(stored(platform_db, account, key)[0])


def assert_error(status_body, status, code):
    status_got, body = status_body
    assert (status_got, body["status"], body["code"]) == (status, "error", code), body
    assert body["message"]
    return body


def same_time(item):
    """A secret with its timestamps parsed (the offset they are written in may differ)."""
    return {k: datetime.fromisoformat(v) if k.endswith("_at") else v for k, v in item.items()}


def assert_timestamp(value):
    assert "T" in value
    assert datetime.fromisoformat(value).utcoffset() is not None


def test_types_are_listed_with_their_json_schemas(call):
    status, body = call("GET", "secrets/types/")
    assert status == 200
    assert (body["status"], body["message"], body["total"]) == ("success", "Data retrieved successfully", 6)
    types = {t["slug"]: t for t in body["data"]}
    assert set(types) == {
        "analytics-postgres", "analytics-mysql", "analytics-redshift",
        "analytics-elasticsearch", "analytics-clickhouse", "generic",
    }
    for item in body["data"]:
        assert set(item) == {"slug", "name", "driver", "schema"}
    assert types["generic"]["driver"] is None
    assert types["analytics-postgres"]["driver"] == "postgres"
    es = types["analytics-elasticsearch"]["schema"]
    assert es["properties"]["port"]["default"] == 9200
    assert es["properties"]["max_result_rows"]["default"] == 10000
    assert types["analytics-clickhouse"]["schema"]["properties"]["secure"]["default"] is True
    assert set(types["analytics-postgres"]["schema"]["required"]) == {"host", "user", "database"}
    assert types["analytics-postgres"]["schema"]["additionalProperties"] is False


def test_create_shows_field_names_and_stores_only_ciphertext(call, platform_db, secret_key, account):
    status, body = call("POST", "secrets/", {"key": "warehouse", "type_slug": "analytics-postgres",
                                               "value": PG_VALUE, "description": "Reporting replica"})
    assert status == 201, body
    assert (body["status"], body["message"]) == ("success", "Secret created successfully")
    data = body["data"]
    assert set(data) == SECRET_KEYS
    assert (data["key"], data["type_slug"], data["description"]) == ("warehouse", "analytics-postgres", "Reporting replica")
    assert data["fields"] == PG_FIELDS  # names only, with the defaults the type added
    assert_timestamp(data["created_at"])
    assert_timestamp(data["updated_at"])

    status, one = call("GET", "secrets/warehouse/")
    assert status == 200 and same_time(one["data"]) == same_time(data)
    status, many = call("GET", "secrets/")
    assert status == 200 and many["total"] == 1 and [same_time(d) for d in many["data"]] == [same_time(data)]

    value_encrypted, description, fields, row_text = stored(platform_db, account, "warehouse")
    assert PASSWORD not in row_text and "db.example.com" not in row_text
    assert (description, fields) == ("Reporting replica", PG_FIELDS)
    assert SecretBox((secret_key,)).decrypt_json(value_encrypted) == {
        **PG_VALUE, "port": 5432, "sslmode": "prefer", "connect_timeout": 10,
    }


@pytest.mark.parametrize(
    "value, errors",
    [
        (
            {"user": "u", "database": "d", "password": PASSWORD},
            {"value.host": ["Missing data for required field."]},
        ),
        ({**PG_VALUE, "port": "5432"}, {"value.port": ["Not a valid integer."]}),
        ({**PG_VALUE, "port": 99999}, None),
        ({**PG_VALUE, "host": ""}, None),
        ({**PG_VALUE, "sslmode": ["require"]}, {"value.sslmode": ["Not a valid string."]}),
        ({**PG_VALUE, "passwd": PASSWORD}, {"value.passwd": ["Unknown field."]}),
        ([PG_VALUE], {"value": ["Must be an object."]}),
        (PASSWORD, {"value": ["Must be an object."]}),
    ],
)
def test_value_is_checked_against_its_type(call, value, errors):
    body = assert_error(call("POST", "secrets/", {"key": "bad", "type_slug": "analytics-postgres", "value": value}),
                        400, "ValidationError")
    if errors is None:
        assert len(body["errors"]) == 1 and next(iter(body["errors"])).startswith("value.")
    else:
        assert body["errors"] == errors
    assert call("GET", "secrets/")[1]["total"] == 0
    assert_error(call("GET", "secrets/bad/"), 404, "NotFound")


def test_other_types_and_defaults(call, platform_db, secret_key, account):
    status, body = call("POST", "secrets/", {"key": "search", "type_slug": "analytics-elasticsearch",
                                               "value": {"host": "es", "index": "logs-*", "password": PASSWORD}})
    assert status == 201, body
    value = decrypted(platform_db, secret_key, account, "search")
    assert (value["port"], value["max_result_rows"], value["scheme"]) == (9200, 10000, "https")
    status, body = call("POST", "secrets/", {"key": "olap", "type_slug": "analytics-clickhouse", "value": {"host": "ch"}})
    assert status == 201, body
    assert decrypted(platform_db, secret_key, account, "olap")["secure"] is True
    body = assert_error(call("POST", "secrets/", {"key": "x", "type_slug": "analytics-oracle", "value": {}}),
                        400, "SecretResolutionError")
    assert body["message"] == "Secret type not found"


@pytest.mark.parametrize(
    "value, fields",
    [
        ({"token": PASSWORD, "nested": {"a": [1, 2, None]}}, ["nested", "token"]),
        ([PASSWORD, 1, True], []),
        (PASSWORD, []),
        (12.75, []),
        (123456789012345678901234567890, []),
        (False, []),
    ],
)
def test_generic_accepts_any_json(call, platform_db, secret_key, account, value, fields):
    status, body = call("POST", "secrets/", {"key": "anything", "type_slug": "generic", "value": value})
    assert status == 201, body
    assert body["data"]["fields"] == fields
    assert decrypted(platform_db, secret_key, account, "anything") == value
    assert PASSWORD not in stored(platform_db, account, "anything")[3]


def test_update_value_and_or_description(call, platform_db, secret_key, account):
    created = call("POST", "secrets/", {"key": "wh", "type_slug": "analytics-postgres", "value": PG_VALUE,
                                        "description": "first"})[1]["data"]

    status, body = call("PUT", "secrets/wh/", {"description": "second"})
    assert status == 200, body
    assert (body["message"], body["data"]["description"]) == ("Secret updated successfully", "second")
    assert body["data"]["fields"] == PG_FIELDS
    assert decrypted(platform_db, secret_key, account, "wh")["password"] == PASSWORD  # value kept
    assert same_time(body["data"])["created_at"] == same_time(created)["created_at"]
    assert same_time(body["data"])["updated_at"] > same_time(created)["updated_at"]

    new_password = PASSWORD + "-rotated"
    status, body = call("PATCH", "secrets/wh/", {"value": {"host": "h2", "user": "u2", "database": "d2",
                                                          "password": new_password, "port": 6432}})
    assert status == 200, body
    assert body["data"]["description"] == "second"  # description kept
    value = decrypted(platform_db, secret_key, account, "wh")
    assert (value["host"], value["port"], value["password"]) == ("h2", 6432, new_password)

    status, body = call("PUT", "secrets/wh/", {"type_slug": "analytics-postgres", "description": "third",
                                                "value": {"host": "h3", "user": "u", "database": "d"}})
    assert status == 200, body  # the same type may be repeated
    assert body["data"]["fields"] == ["connect_timeout", "database", "host", "password", "port", "sslmode", "user"]
    assert decrypted(platform_db, secret_key, account, "wh")["password"] == ""


def test_update_is_checked_and_changes_nothing_when_refused(call, platform_db, secret_key, account):
    call("POST", "secrets/", {"key": "wh", "type_slug": "analytics-postgres", "value": PG_VALUE, "description": "keep"})
    before = stored(platform_db, account, "wh")

    body = assert_error(call("PUT", "secrets/wh/", {"value": {"user": "u", "database": "d"}, "description": "lost"}),
                        400, "ValidationError")
    assert body["errors"] == {"value.host": ["Missing data for required field."]}
    body = assert_error(call("PATCH", "secrets/wh/", {"type_slug": "analytics-mysql", "value": PG_VALUE}),
                        400, "ValidationError")
    assert "type_slug" in body["errors"]
    body = assert_error(call("PUT", "secrets/wh/", {"key": "renamed"}), 400, "ValidationError")
    assert body["errors"] == {"key": ["Unknown field."]}
    assert_error(call("PUT", "secrets/wh/", {"value": None}), 400, "ValidationError")
    assert_error(call("PUT", "secrets/nope/", {"description": "x"}), 404, "NotFound")

    assert stored(platform_db, account, "wh") == before


def test_delete_then_gone(call):
    call("POST", "secrets/", {"key": "temp", "type_slug": "generic", "value": {"a": PASSWORD}})
    status, body = call("DELETE", "secrets/temp/")
    assert (status, body["status"]) == (200, "success")
    assert_error(call("GET", "secrets/temp/"), 404, "NotFound")
    assert_error(call("DELETE", "secrets/temp/"), 404, "NotFound")
    assert_error(call("PUT", "secrets/temp/", {"description": "x"}), 404, "NotFound")
    assert call("GET", "secrets/")[1]["total"] == 0
    # The key can be used again.
    assert call("POST", "secrets/", {"key": "temp", "type_slug": "generic", "value": 1})[0] == 201


def test_duplicate_key_is_a_conflict_and_keeps_the_first(call, platform_db, secret_key, account):
    assert call("POST", "secrets/", {"key": "dup", "type_slug": "generic", "value": {"v": "first"}})[0] == 201
    body = assert_error(call("POST", "secrets/", {"key": "dup", "type_slug": "analytics-postgres", "value": PG_VALUE}),
                        409, "Conflict")
    assert "dup" in body["message"]
    assert decrypted(platform_db, secret_key, account, "dup") == {"v": "first"}


@pytest.mark.parametrize(
    "key",
    ["1st", "with-dash", "with space", "dotted.key", "ключ", "semi;colon", "user_profile", "types", "k" * 101, ""],
)
def test_keys_must_be_identifiers(call, key):
    body = assert_error(call("POST", "secrets/", {"key": key, "type_slug": "generic", "value": 1}), 400, "ValidationError")
    assert "key" in body["errors"]
    assert call("GET", "secrets/")[1]["total"] == 0


def test_list_is_paginated_with_a_total(call):
    for key in ("c", "a", "b"):
        assert call("POST", "secrets/", {"key": key, "type_slug": "generic", "value": 1})[0] == 201
    status, body = call("GET", "secrets/?page_size=2")
    assert status == 200
    assert ([s["key"] for s in body["data"]], body["total"]) == (["a", "b"], 3)
    status, body = call("GET", "secrets/?page=2&page_size=2")
    assert ([s["key"] for s in body["data"]], body["total"]) == (["c"], 3)
    status, body = call("GET", "secrets/?page=9")
    assert (body["data"], body["total"]) == ([], 3)


def test_tenants_never_see_each_others_secrets(call, other_call, sessions, account, other_account, platform_db,
                                               secret_key):
    # Both tenants have an app called "main"; each sees only its own secret of the same key.
    assert call("POST", "secrets/", {"key": "same", "type_slug": "generic", "value": {"owner": "a"}})[0] == 201
    assert other_call("POST", "secrets/", {"key": "same", "type_slug": "generic", "value": {"owner": "b"}})[0] == 201
    assert call("POST", "secrets/", {"key": "a_only", "type_slug": "analytics-postgres", "value": PG_VALUE})[0] == 201
    assert other_call("POST", "secrets/", {"key": "b_only", "type_slug": "generic", "value": PASSWORD})[0] == 201

    assert [s["key"] for s in call("GET", "secrets/")[1]["data"]] == ["a_only", "same"]
    assert [s["key"] for s in other_call("GET", "secrets/")[1]["data"]] == ["b_only", "same"]
    for caller, theirs in ((other_call, "a_only"), (call, "b_only")):
        assert_error(caller("GET", f"secrets/{theirs}/"), 404, "NotFound")
        assert_error(caller("PUT", f"secrets/{theirs}/", {"description": "mine now"}), 404, "NotFound")
        assert_error(caller("DELETE", f"secrets/{theirs}/"), 404, "NotFound")
    assert decrypted(platform_db, secret_key, account, "same") == {"owner": "a"}
    assert decrypted(platform_db, secret_key, other_account, "same") == {"owner": "b"}
    assert decrypted(platform_db, secret_key, account, "a_only")["password"] == PASSWORD

    # Through the other tenant's own app slug: exactly like a missing app.
    with session_scope(sessions) as session:
        create_app_row(session, account.tenant, "a-private")
        create_app_row(session, other_account.tenant, "b-private")
    assert call("POST", "secrets/", {"key": "deep", "type_slug": "generic", "value": 1}, app="a-private")[0] == 201
    for caller, app in ((other_call, "a-private"), (call, "b-private")):
        for method, path, payload in (
            ("GET", "secrets/", None),
            ("GET", "secrets/types/", None),
            ("GET", "secrets/deep/", None),
            ("POST", "secrets/", {"key": "planted", "type_slug": "generic", "value": 1}),
            ("PUT", "secrets/deep/", {"description": "x"}),
            ("DELETE", "secrets/deep/", None),
        ):
            theirs = caller(method, path, payload, app=app)
            missing = caller(method, path, payload, app="no-such-app")
            assert theirs == missing
            assert_error(theirs, 404, "NotFound")
    status, body = call("GET", "secrets/", app="a-private")
    assert [s["key"] for s in body["data"]] == ["deep"]
