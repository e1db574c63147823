"""Bearer tokens and the app lookup inside the caller's tenant (CONTRACT section 1)."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from shared.db import session_scope
from shared.models import ApiToken, User
from shared.services.tenants import create_app as create_app_row
from shared.services.users import create_token, create_user

# Every resource endpoint, with a body that passes the schema, so only auth and the app decide.
ENDPOINTS = [
    ("GET", "secrets/types/", None),
    ("GET", "secrets/", None),
    ("POST", "secrets/", {"key": "k", "type_slug": "generic", "value": 1}),
    ("GET", "secrets/db/", None),
    ("PUT", "secrets/db/", {"description": "d"}),
    ("PATCH", "secrets/db/", {"description": "d"}),
    ("DELETE", "secrets/db/", None),
    ("POST", "secrets/db/test/", None),
    ("GET", "analytics/queries/", None),
    ("POST", "analytics/queries/", {"name": "n", "query_text": "SELECT 1", "connection_type": "internal"}),
    ("GET", "analytics/queries/q/", None),
    ("PUT", "analytics/queries/q/", {"name": "n"}),
    ("PATCH", "analytics/queries/q/", {"name": "n"}),
    ("DELETE", "analytics/queries/q/", None),
    ("POST", "analytics/queries/q/execute/", {}),
    ("GET", "analytics/executions/exec_x/", None),
    ("DELETE", "analytics/executions/exec_x/", None),
]


def assert_401(response):
    assert response.status_code == 401, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "error"
    assert body["code"] == "AuthenticationError"
    assert body["message"]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "bearer",
        "Token abc",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-real-token",
        "Bearer " + "x" * 5000,
        "Bearer abc def",
        "Bearer \u00e9\u00e9",
    ],
)
def test_missing_malformed_or_unknown_token_is_401(client, account, header):
    headers = {} if header is None else {"Authorization": header}
    for method, path, body in ENDPOINTS:
        assert_401(client.open(account.url(path), method=method, headers=headers, json=body))


def test_the_right_token_works_with_any_case_of_the_scheme(client, account):
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = client.get(account.url("secrets/"), headers={"Authorization": f"{scheme} {account.token}"})
        assert response.status_code == 200, response.get_json()


def test_a_token_reaches_only_its_own_tenants_app_of_the_same_name(client, account, other_account):
    # Both tenants have an app called "main": the token decides whose it is.
    response = client.post(account.url("secrets/"), headers=account.headers,
                           json={"key": "mine", "type_slug": "generic", "value": 1})
    assert response.status_code == 201, response.get_json()
    assert [s["key"] for s in client.get(account.url("secrets/"), headers=account.headers).get_json()["data"]] == [
        "mine"
    ]
    response = client.get(account.url("secrets/"), headers=other_account.headers)
    assert response.status_code == 200
    assert response.get_json()["data"] == []
    assert client.get(account.url("secrets/mine/"), headers=other_account.headers).status_code == 404


def test_tokens_of_a_deleted_or_inactive_user_stop_working(client, sessions, account):
    with session_scope(sessions) as session:
        _, token = create_user(session, account.tenant, "leaver")
        _, inactive = create_user(session, account.tenant, "sleeper")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(account.url("secrets/"), headers=headers).status_code == 200

    with session_scope(sessions) as session:
        session.execute(text("DELETE FROM platform.users WHERE username = 'leaver'"))
        session.execute(text("UPDATE platform.users SET is_active = false WHERE username = 'sleeper'"))
    assert_401(client.get(account.url("secrets/"), headers=headers))
    assert_401(client.get(account.url("secrets/"), headers={"Authorization": f"Bearer {inactive}"}))
    # The account's own user is unaffected.
    assert client.get(account.url("secrets/"), headers=account.headers).status_code == 200


def test_tokens_are_stored_as_hashes_and_record_their_use(client, sessions, account):
    with session_scope(sessions) as session:
        second = create_token(session, account.tenant, account.username)
    with sessions() as session:
        stored = session.scalars(
            select(ApiToken.token_hash).join(User).where(User.username == account.username)
        ).all()
        assert len(stored) == 2
        assert account.token not in stored and second not in stored
    for token in (account.token, second):
        response = client.get(account.url("secrets/"), headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
    with sessions() as session:
        used = session.scalars(
            select(ApiToken.last_used_at).join(User).where(User.username == account.username)
        ).all()
        assert sum(u is not None for u in used) == 2


def test_another_tenants_app_answers_exactly_like_a_missing_app(client, sessions, account, other_account):
    with session_scope(sessions) as session:
        create_app_row(session, account.tenant, "private-app")
    for method, path, body in ENDPOINTS:
        theirs = client.open(f"/api/apps/private-app/{path}", method=method, headers=other_account.headers, json=body)
        missing = client.open(f"/api/apps/no-such-app/{path}", method=method, headers=other_account.headers, json=body)
        assert theirs.status_code == 404, (method, path, theirs.get_json())
        assert theirs.get_json()["code"] == "NotFound"
        assert theirs.get_data() == missing.get_data(), (method, path)
        assert dict(theirs.headers) == dict(missing.headers)
    # The owner reaches it.
    assert client.get("/api/apps/private-app/secrets/", headers=account.headers).status_code == 200


def test_the_token_is_checked_before_the_app(client, account):
    # An anonymous caller learns nothing about which apps exist.
    for app in ("main", "no-such-app"):
        assert_401(client.get(f"/api/apps/{app}/secrets/"))
