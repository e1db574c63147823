"""The ``analytics`` command line (CONTRACT section 2), run as a real subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.support.fixtures import REPO

SEEDED = {
    "analytics-postgres", "analytics-mysql", "analytics-redshift",
    "analytics-elasticsearch", "analytics-clickhouse", "generic",
}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def run_cli(env: dict[str, str], *args: str, **overrides: str) -> Run:
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env={**os.environ, **env, **overrides},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(run: Run, *words: str) -> None:
    assert run.code != 0, run
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], lines[0]


def fetch(platform_db, sql: str, *params):
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_db_upgrade_is_idempotent(env, platform_db):
    before = fetch(platform_db, "SELECT version_num FROM platform.alembic_version")
    run = run_cli(env, "db", "upgrade")  # the fixture already upgraded this database
    assert run.code == 0, run.stderr
    assert "up to date" in run.stdout
    assert fetch(platform_db, "SELECT version_num FROM platform.alembic_version") == before


def test_tenant_app_user_and_token_lifecycle(env, platform_db, client):
    slug = "cli-acme"
    first = run_cli(env, "tenant", "create", slug, "--name", "Acme Inc.", "--schema", "acme_data")
    assert first.code == 0, first.stderr
    assert "created tenant cli-acme" in first.stdout and "seeded secret type generic" in first.stdout

    [(tenant_id, name, schema, role)] = fetch(
        platform_db, "SELECT id, name, schema_name, reader_role FROM platform.tenants WHERE slug = %s", slug
    )
    assert (name, schema) == ("Acme Inc.", "acme_data")
    assert fetch(platform_db, "SELECT 1 FROM pg_namespace WHERE nspname = 'acme_data'") == [(1,)]
    assert fetch(platform_db, "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", role) == [(False,)]
    types = {s for (s,) in fetch(platform_db, "SELECT slug FROM platform.secret_types WHERE tenant_id = %s", tenant_id)}
    assert types == SEEDED

    again = run_cli(env, "tenant", "create", slug, "--name", "Acme Inc.", "--schema", "acme_data")
    assert again.code == 0, again.stderr
    assert "nothing changed" in again.stdout
    assert "created" not in again.stdout and "seeded" not in again.stdout
    assert fetch(platform_db, "SELECT count(*) FROM platform.tenants WHERE slug = %s", slug) == [(1,)]
    assert fetch(platform_db, "SELECT count(*) FROM platform.secret_types WHERE tenant_id = %s", tenant_id) == [(6,)]

    fetch_delete = "DELETE FROM platform.secret_types WHERE tenant_id = %s AND slug = 'analytics-mysql' RETURNING id"
    assert len(fetch(platform_db, fetch_delete, tenant_id)) == 1
    seed = run_cli(env, "tenant", "seed", slug)
    assert seed.code == 0, seed.stderr
    assert "seeded secret type analytics-mysql" in seed.stdout and "Seeded 1 secret type" in seed.stdout
    types = {s for (s,) in fetch(platform_db, "SELECT slug FROM platform.secret_types WHERE tenant_id = %s", tenant_id)}
    assert types == SEEDED

    app = run_cli(env, "app", "create", slug, "dash", "--name", "Dashboards")
    assert app.code == 0, app.stderr
    assert fetch(platform_db, "SELECT name FROM platform.apps WHERE tenant_id = %s AND slug = 'dash'", tenant_id) == [
        ("Dashboards",)
    ]

    user = run_cli(
        env, "user", "create", slug, "alice", "--email", "alice@example.com", "--first-name", "Alice",
        "--last-name", "Liddell", "--staff",
    )
    assert user.code == 0, user.stderr
    token = user.stdout.strip().splitlines()[-1]
    assert len(token) >= 32 and " " not in token
    [(email, first, last, staff, superuser)] = fetch(
        platform_db,
        "SELECT email, first_name, last_name, is_staff, is_superuser FROM platform.users WHERE tenant_id = %s",
        tenant_id,
    )
    assert (email, first, last, staff, superuser) == ("alice@example.com", "Alice", "Liddell", True, False)
    # Only the hash is stored.
    hashes = fetch(platform_db, "SELECT token_hash FROM platform.api_tokens t JOIN platform.users u ON u.id = t.user_id "
                   "WHERE u.tenant_id = %s", tenant_id)
    assert len(hashes) == 1 and token not in hashes[0][0]

    response = client.get("/api/apps/dash/secrets/types/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    assert {t["slug"] for t in response.get_json()["data"]} == SEEDED

    second = run_cli(env, "token", "create", slug, "alice")
    assert second.code == 0, second.stderr
    token2 = second.stdout.strip().splitlines()[-1]
    assert token2 != token
    for t in (token, token2):  # both work
        response = client.get("/api/apps/dash/secrets/", headers={"Authorization": f"Bearer {t}"})
        assert response.status_code == 200, response.get_json()


def test_errors_are_one_line_without_traceback(env, sessions):
    from tests.support.fixtures import make_account

    existing = make_account(sessions, "clierr")
    bad_db = "postgresql+psycopg2://nobody:pw-must-not-leak@127.0.0.1:1/nowhere"
    cases = [
        ((env, "app", "create", "no-such-tenant", "x"), {}, ("Tenant no-such-tenant not found",)),
        ((env, "token", "create", existing.tenant, "nobody"), {}, ("User nobody not found",)),
        ((env, "app", "create", existing.tenant, existing.app), {}, ("already exists",)),
        ((env, "tenant", "create", "Bad_Slug!"), {}, ("Invalid slug",)),
        ((env, "tenant", "create", "unreachable"), {"ANALYTICS_DATABASE_URL": bad_db}, ("OperationalError",)),
        (
            (env, "db", "upgrade"),
            {"ANALYTICS_ENV": "production", "ANALYTICS_SECRET_KEY": ""},
            ("ANALYTICS_SECRET_KEY is required", "Fernet.generate_key()"),
        ),
        ((env, "tenant", "seed", "x"), {"ANALYTICS_MAX_ROWS": "lots"}, ("ANALYTICS_MAX_ROWS must be a whole number",)),
    ]
    with ThreadPoolExecutor(len(cases)) as pool:
        runs = list(pool.map(lambda case: run_cli(*case[0], **case[1]), cases))
    for (_, _, words), run in zip(cases, runs, strict=True):
        assert_one_line_error(run, *words)
    assert "pw-must-not-leak" not in runs[4].stderr
    # The failed commands created nothing.
    with sessions() as session:
        from sqlalchemy import text

        assert session.execute(text("SELECT count(*) FROM platform.tenants WHERE slug LIKE 'bad%'")).scalar() == 0
        apps = "SELECT count(*) FROM platform.apps a JOIN platform.tenants t ON t.id = a.tenant_id WHERE t.slug = :s"
        assert session.execute(text(apps), {"s": existing.tenant}).scalar() == 1


@pytest.mark.parametrize("command, words", [("serve", ("--host", "--port")), ("worker", ("--queues", "--concurrency"))])
def test_serve_and_worker_help(env, command, words):
    run = run_cli(env, command, "--help")
    assert run.code == 0, run.stderr
    for word in words:
        assert word in run.stdout
