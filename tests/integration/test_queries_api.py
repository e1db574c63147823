"""Saved queries over HTTP (CONTRACT section 6): slugs, tags, search, pagination, partial
updates, delete, and the setup errors with their documented wording."""
from __future__ import annotations

from datetime import datetime

import pytest

from shared.db import session_scope
from shared.services.tenants import create_app as create_app_row

QUERY_KEYS = {
    "id", "name", "slug", "description", "connection_type", "secret_key", "driver", "query_text", "tags",
    "timeout_seconds", "parameters", "created_at", "updated_at",
}
ORDERS = "SELECT id, total FROM orders WHERE status = '{{ status }}'"


@pytest.fixture()
def pg_api(api):
    """The account's API with an analytics-postgres secret `pg` and a generic secret `gen`."""
    value = {"host": "db.example.com", "user": "u", "database": "d", "password": "pw"}
    assert api.post("secrets/", {"key": "pg", "type_slug": "analytics-postgres", "value": value})[0] == 201
    assert api.post("secrets/", {"key": "gen", "type_slug": "generic", "value": {"a": 1}})[0] == 201
    return api


def create(api, **body):
    body.setdefault("secret_key", "pg")
    body.setdefault("query_text", ORDERS)
    status, response = api.post("analytics/queries/", body)
    assert status == 201, response
    return response["data"]


def assert_error(result, status, code, message=None):
    got, body = result
    assert (got, body["status"], body["code"]) == (status, "error", code), body
    if message is not None:
        assert body["message"] == message
    return body


def count(api) -> int:
    return api.get("analytics/queries/")[1]["total"]


def test_create_returns_the_query_object(pg_api, settings):
    status, body = pg_api.post("analytics/queries/", {
        "name": "Monthly Sales", "description": "Paid orders", "secret_key": "pg", "query_text": ORDERS,
        "tags": ["sales", " monthly ", "sales"],
    })
    assert status == 201, body
    assert (body["status"], body["message"]) == ("success", "Query created successfully")
    q = body["data"]
    assert set(q) == QUERY_KEYS
    assert isinstance(q["id"], int)
    assert (q["name"], q["slug"], q["description"]) == ("Monthly Sales", "monthly-sales", "Paid orders")
    assert (q["connection_type"], q["secret_key"], q["driver"]) == ("external", "pg", "postgres")
    assert (q["query_text"], q["tags"]) == (ORDERS, ["sales", "monthly"])
    assert (q["timeout_seconds"], q["parameters"]) == (settings.query_timeout, [])
    for stamp in (q["created_at"], q["updated_at"]):
        assert "T" in stamp and datetime.fromisoformat(stamp).utcoffset() is not None

    status, one = pg_api.get("analytics/queries/monthly-sales/")
    assert status == 200
    assert {k: v for k, v in one["data"].items() if not k.endswith("_at")} == {
        k: v for k, v in q.items() if not k.endswith("_at")
    }


def test_internal_queries_take_no_secret(api):
    q = create(api, name="Own table", connection_type="internal", secret_key=None, query_text="SELECT * FROM t")
    assert (q["connection_type"], q["secret_key"], q["driver"]) == ("internal", None, "internal")
    status, body = api.post("analytics/queries/", {"name": "Own table 2", "connection_type": "internal",
                                                   "query_text": "SELECT 1 AS one"})
    assert (status, body["data"]["secret_key"], body["data"]["driver"]) == (201, None, "internal"), body
    body = assert_error(
        api.post("analytics/queries/", {"name": "x", "connection_type": "internal", "secret_key": "pg",
                                        "query_text": "SELECT 1"}),
        400, "ValidationError",
    )
    assert "secret_key" in body["errors"]
    assert count(api) == 2


def test_slugs_come_from_the_name_and_clashes_get_a_number(pg_api):
    assert [create(pg_api, name="Top Customers")["slug"] for _ in range(3)] == [
        "top-customers", "top-customers-2", "top-customers-3",
    ]
    assert create(pg_api, name="Über Größe — 2024!")["slug"] == "uber-groe-2024"
    assert create(pg_api, name="売上")["slug"] == "query"
    assert create(pg_api, name="売上")["slug"] == "query-2"
    assert create(pg_api, name="Anything", slug="custom-slug")["slug"] == "custom-slug"
    # A name whose slug is taken by an explicit slug still gets a free one.
    assert create(pg_api, name="Custom Slug")["slug"] == "custom-slug-2"
    body = assert_error(pg_api.post("analytics/queries/", {"name": "Again", "slug": "custom-slug", "secret_key": "pg",
                                                           "query_text": ORDERS}), 409, "Conflict")
    assert "custom-slug" in body["message"]
    for bad in ("Upper", "with space", "-leading", "trailing-", "ü", "a/b"):
        body = assert_error(pg_api.post("analytics/queries/", {"name": "x", "slug": bad, "secret_key": "pg",
                                                               "query_text": ORDERS}), 400, "ValidationError")
        assert "slug" in body["errors"]
    assert count(pg_api) == 8


def test_tags_search_and_pagination(pg_api):
    create(pg_api, name="Revenue by month", tags=["finance", "monthly"])
    create(pg_api, name="Revenue by day", tags=["finance"], description="Daily 100% numbers")
    create(pg_api, name="Signups", tags=["growth", "monthly"])
    create(pg_api, name="Churn", description="customers who left", tags=[])

    def slugs(query):
        status, body = pg_api.get("analytics/queries/" + query)
        assert status == 200, body
        return [q["slug"] for q in body["data"]], body["total"]

    assert slugs("") == (["churn", "revenue-by-day", "revenue-by-month", "signups"], 4)
    assert slugs("?tag=monthly") == (["revenue-by-month", "signups"], 2)
    assert slugs("?tag=finance") == (["revenue-by-day", "revenue-by-month"], 2)
    assert slugs("?tag=fin") == ([], 0)
    assert slugs("?search=REVENUE") == (["revenue-by-day", "revenue-by-month"], 2)
    assert slugs("?search=left") == (["churn"], 1)  # description
    assert slugs("?search=by-day") == (["revenue-by-day"], 1)  # slug
    assert slugs("?search=100%25") == (["revenue-by-day"], 1)  # % is literal
    assert slugs("?search=_") == ([], 0)  # _ is literal
    assert slugs("?tag=finance&search=month") == (["revenue-by-month"], 1)
    assert slugs("?page_size=3") == (["churn", "revenue-by-day", "revenue-by-month"], 4)
    assert slugs("?page=2&page_size=3") == (["signups"], 4)
    assert slugs("?tag=monthly&page=2&page_size=1") == (["signups"], 2)


def test_partial_updates_change_only_the_given_fields(pg_api, settings):
    original = create(pg_api, name="Sales", description="d1", tags=["a"], timeout_seconds=5)

    def unchanged_except(updated, *names):
        for key in QUERY_KEYS - {"updated_at", *names}:
            assert updated[key] == original[key], key

    status, body = pg_api.put("analytics/queries/sales/", {"description": "d2"})
    assert status == 200, body
    assert (body["message"], body["data"]["description"]) == ("Query updated successfully", "d2")
    unchanged_except(body["data"], "description")

    status, body = pg_api.patch("analytics/queries/sales/", {"name": "Renamed Sales", "tags": ["b", "c"]})
    assert status == 200, body
    assert (body["data"]["name"], body["data"]["tags"], body["data"]["slug"]) == ("Renamed Sales", ["b", "c"], "sales")
    unchanged_except(body["data"], "description", "name", "tags")

    text = "SELECT id FROM orders WHERE customer = '{{ who }}'"
    status, body = pg_api.patch("analytics/queries/sales/", {"query_text": text, "timeout_seconds": None})
    assert status == 200, body
    # Cleared: the query follows ANALYTICS_QUERY_TIMEOUT again.
    assert (body["data"]["query_text"], body["data"]["timeout_seconds"]) == (text, settings.query_timeout)
    assert body["data"]["description"] == "d2"

    status, body = pg_api.put("analytics/queries/sales/", {})
    assert status == 200, body
    assert body["data"]["query_text"] == text

    status, body = pg_api.put("analytics/queries/sales/", {"slug": "sales-v2"})
    assert status == 200 and body["data"]["slug"] == "sales-v2"
    assert_error(pg_api.get("analytics/queries/sales/"), 404, "NotFound")
    status, body = pg_api.get("analytics/queries/sales-v2/")
    assert (status, body["data"]["id"], body["data"]["name"]) == (200, original["id"], "Renamed Sales")

    # external -> internal drops the secret; internal -> external needs one again.
    status, body = pg_api.patch("analytics/queries/sales-v2/", {"connection_type": "internal", "query_text": "SELECT 1"})
    assert status == 200, body
    assert (body["data"]["connection_type"], body["data"]["secret_key"], body["data"]["driver"]) == (
        "internal", None, "internal",
    )
    assert_error(pg_api.patch("analytics/queries/sales-v2/", {"connection_type": "external"}),
                 400, "SecretResolutionError", "Secret not found")
    status, body = pg_api.patch("analytics/queries/sales-v2/", {"connection_type": "external", "secret_key": "pg"})
    assert (status, body["data"]["driver"]) == (200, "postgres")


def test_refused_updates_change_nothing(pg_api):
    original = create(pg_api, name="Stable", tags=["x"])
    create(pg_api, name="Other")
    attempts = [
        ({"slug": "other"}, 409, "Conflict"),
        ({"secret_key": "nope"}, 400, "SecretResolutionError"),
        ({"secret_key": "gen"}, 400, "SecretResolutionError"),
        ({"query_text": "DELETE FROM orders"}, 400, "QueryValidationError"),
        ({"query_text": "SELECT 1 FROM t WHERE a = {{ b"}, 400, "QueryValidationError"),
        ({"name": ""}, 400, "ValidationError"),
        ({"parameters": [{"name": "p", "type": "no-such-type"}]}, 400, "ValidationError"),
        ({"connection_type": "internal", "secret_key": "pg"}, 400, "ValidationError"),
    ]
    for body, status, code in attempts:
        assert_error(pg_api.put("analytics/queries/stable/", {"description": "changed", **body}), status, code)
        now = pg_api.get("analytics/queries/stable/")[1]["data"]
        assert now == original, body
    assert_error(pg_api.put("analytics/queries/missing/", {"name": "x"}), 404, "NotFound")


def test_delete_then_gone(pg_api):
    create(pg_api, name="Temp")
    status, body = pg_api.delete("analytics/queries/temp/")
    assert (status, body["status"], body["message"]) == (200, "success", "Query deleted successfully")
    assert_error(pg_api.get("analytics/queries/temp/"), 404, "NotFound", "Query not found")
    assert_error(pg_api.delete("analytics/queries/temp/"), 404, "NotFound")
    assert_error(pg_api.patch("analytics/queries/temp/", {"name": "x"}), 404, "NotFound")
    assert count(pg_api) == 0
    assert create(pg_api, name="Temp")["slug"] == "temp"  # the slug is free again


@pytest.mark.parametrize(
    "body, code, message",
    [
        ({}, "SecretResolutionError", "Secret not found"),
        ({"secret_key": None}, "SecretResolutionError", "Secret not found"),
        ({"secret_key": "no_such_secret"}, "SecretResolutionError", "Secret not found"),
        ({"secret_key": "gen"}, "SecretResolutionError", "Unsupported analytics datasource"),
        ({"connection_type": "internal", "secret_key": "pg"}, "ValidationError", None),
        ({"connection_type": "sideways"}, "ValidationError", None),
    ],
)
def test_setup_errors_use_the_documented_words(pg_api, body, code, message):
    assert_error(pg_api.post("analytics/queries/", {"name": "Broken", "query_text": ORDERS, **body}), 400, code, message)
    assert count(pg_api) == 0


def test_another_tenants_secret_is_not_found(pg_api, client, other_account):
    response = client.post(other_account.url("analytics/queries/"), headers=other_account.headers,
                           json={"name": "Steal", "secret_key": "pg", "query_text": "SELECT 1"})
    assert response.status_code == 400
    assert (response.get_json()["code"], response.get_json()["message"]) == ("SecretResolutionError", "Secret not found")


def test_invalid_or_blocked_templates_are_refused_at_create(pg_api):
    body = assert_error(
        pg_api.post("analytics/queries/", {"name": "Syntax", "secret_key": "pg",
                                           "query_text": "SELECT id\nFROM orders\nWHERE status = '{{ status '"}),
        400, "QueryValidationError",
    )
    assert "line 3" in body["message"].lower() or body.get("details", {}).get("line") == 3, body
    for text in (
        "DELETE FROM t",
        "DROP TABLE orders",
        "UPDATE orders SET total = 0",
        "SELECT 1; SELECT 2",
        "INSERT INTO t SELECT * FROM orders",
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "SELECT pg_sleep(10)",
    ):
        assert_error(pg_api.post("analytics/queries/", {"name": "Blocked", "secret_key": "pg", "query_text": text}),
                     400, "QueryValidationError")
        assert_error(pg_api.post("analytics/queries/", {"name": "Blocked", "connection_type": "internal",
                                                        "query_text": text}), 400, "QueryValidationError")
    assert count(pg_api) == 0


def test_timeout_is_clamped_to_the_maximum(pg_api, settings):
    assert create(pg_api, name="Slow", timeout_seconds=10**6)["timeout_seconds"] == settings.query_timeout
    assert create(pg_api, name="Quick", timeout_seconds=3)["timeout_seconds"] == 3
    status, body = pg_api.patch("analytics/queries/quick/", {"timeout_seconds": settings.query_timeout + 1})
    assert (status, body["data"]["timeout_seconds"]) == (200, settings.query_timeout)
    for bad in (0, -5, "soon", "30", 1.5, True):
        body = assert_error(pg_api.post("analytics/queries/", {"name": "T", "secret_key": "pg", "query_text": ORDERS,
                                                               "timeout_seconds": bad}), 400, "ValidationError")
        assert "timeout_seconds" in body["errors"]
    assert count(pg_api) == 2


def test_parameter_declarations_are_stored_and_checked(pg_api):
    declared = [
        {"name": "status", "type": "enum", "values": ["paid", "pending"], "required": True},
        {"name": "since", "type": "date", "required": False},
    ]
    q = create(pg_api, name="Declared", parameters=declared)
    assert [(p["name"], p["type"]) for p in q["parameters"]] == [("status", "enum"), ("since", "date")]
    assert pg_api.get("analytics/queries/declared/")[1]["data"]["parameters"] == q["parameters"]
    for bad in (
        [{"name": "status", "type": "uuidish"}],
        [{"type": "text"}],
        "status",
        [{"name": "secret", "type": "text"}],
    ):
        assert_error(pg_api.post("analytics/queries/", {"name": "Bad params", "secret_key": "pg", "query_text": ORDERS,
                                                        "parameters": bad}), 400, "ValidationError")
    assert count(pg_api) == 1


def test_queries_of_another_tenant_are_not_reachable(pg_api, client, sessions, account, other_account):
    create(pg_api, name="Private")
    with session_scope(sessions) as session:
        create_app_row(session, account.tenant, "a-reports")
    headers = other_account.headers
    assert client.get(other_account.url("analytics/queries/"), headers=headers).get_json()["total"] == 0
    for method, path in (("GET", "private/"), ("PUT", "private/"), ("DELETE", "private/")):
        response = client.open(other_account.url(f"analytics/queries/{path}"), method=method, headers=headers,
                               json={"name": "x"} if method == "PUT" else None)
        assert (response.status_code, response.get_json()["code"]) == (404, "NotFound")
        theirs = client.open(f"/api/apps/a-reports/analytics/queries/{path}", method=method, headers=headers,
                             json={"name": "x"} if method == "PUT" else None)
        missing = client.open(f"/api/apps/nope/analytics/queries/{path}", method=method, headers=headers,
                              json={"name": "x"} if method == "PUT" else None)
        assert theirs.status_code == 404 and theirs.get_data() == missing.get_data()
    assert pg_api.get("analytics/queries/private/")[0] == 200
