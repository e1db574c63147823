"""Tenants: idempotent creation, and the reader role that isolates internal queries
(CONTRACT sections 1 and 9), proved directly in PostgreSQL."""
from __future__ import annotations

import psycopg2
import psycopg2.errors
import pytest

from shared.crypto import SecretBox
from shared.db import session_scope
from shared.errors import ConflictError, ValidationError
from shared.services.tenants import create_tenant, default_schema, reader_role_name
from tests.support.fixtures import make_account


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture()
def two_tenants(sessions, platform_db):
    """Two tenants, each with a table the service role created after `tenant create`."""
    a, b = make_account(sessions, "iso"), make_account(sessions, "iso")
    with platform_db.connect() as conn, conn.cursor() as cur:
        for acct, word in ((a, "mine"), (b, "theirs")):
            cur.execute(f"CREATE TABLE {q(acct.schema)}.t (id int, note text)")
            cur.execute(f"INSERT INTO {q(acct.schema)}.t VALUES (1, %s)", (word,))
    return a, b


def as_reader(platform_db, role: str, sql: str, *, read_only: bool = True):
    """Run ``sql`` in a transaction under the reader role, as the internal connector does."""
    conn = platform_db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN READ ONLY" if read_only else "BEGIN")
            cur.execute(f"SET LOCAL ROLE {q(role)}")
            cur.execute(sql)
            rows = cur.fetchall() if cur.description else None
            cur.execute("ROLLBACK")
            return rows
    finally:
        conn.close()


def test_tenant_creation_is_idempotent(sessions, platform_db, settings):
    box = SecretBox(settings.secret_keys)
    with session_scope(sessions) as session:
        first = create_tenant(session, "idem-co", name="Idem Co", box=box)
    assert first.changes[0] == "created tenant idem-co"
    assert "created schema tenant_idem_co" in first.changes
    assert sum(c.startswith("seeded secret type") for c in first.changes) == 6
    with session_scope(sessions) as session:
        second = create_tenant(session, "idem-co", name="Idem Co", box=box)
        assert second.changes == []
        assert second.tenant.id == first.tenant.id
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM platform.tenants WHERE slug = 'idem-co'")
        assert cur.fetchone() == (1,)
        cur.execute("SELECT count(*) FROM platform.secret_types WHERE tenant_id = %s", (first.tenant.id,))
        assert cur.fetchone() == (6,)


def test_tenant_create_repairs_a_dropped_schema(sessions, platform_db, settings):
    box = SecretBox(settings.secret_keys)
    with session_scope(sessions) as session:
        tenant = create_tenant(session, "repair-co", box=box).tenant
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA {q(tenant.schema_name)}")
    with session_scope(sessions) as session:
        assert create_tenant(session, "repair-co", box=box).changes == [f"created schema {tenant.schema_name}"]
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {q(tenant.schema_name)}.t AS SELECT 7 AS n")
    assert as_reader(platform_db, tenant.reader_role, f"SELECT n FROM {q(tenant.schema_name)}.t") == [(7,)]


def test_schema_names_and_slugs_are_checked(sessions):
    assert default_schema("acme-eu") == "tenant_acme_eu"
    for slug, schema in (("Upper", None), ("-x", None), ("a" * 64, None), ("ok", "platform"), ("ok", "public"),
                         ("ok", "pg_temp"), ("ok", "information_schema"), ("ok", 'x"; DROP'), ("ok", "1abc")):
        with session_scope(sessions) as session, pytest.raises(ValidationError):
            create_tenant(session, slug, schema=schema)
    with session_scope(sessions) as session:
        create_tenant(session, "owner-co", schema="shared_name")
    with session_scope(sessions) as session, pytest.raises(ConflictError):
        create_tenant(session, "thief-co", schema="shared_name")
    with session_scope(sessions) as session, pytest.raises(ConflictError):
        create_tenant(session, "owner-co", schema="another_name")


def test_reader_roles_are_per_database():
    assert reader_role_name("db_one", "tenant_a") != reader_role_name("db_two", "tenant_a")
    assert len(reader_role_name("db", "s" * 63)) <= 63


def test_reader_reads_its_own_schema(two_tenants, platform_db):
    a, _ = two_tenants
    assert as_reader(platform_db, a.reader_role, f"SELECT id, note FROM {q(a.schema)}.t") == [(1, "mine")]
    # A table created later is readable too (default privileges), without re-running tenant create.
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {q(a.schema)}.later AS SELECT 'late' AS word")
        cur.execute(f"CREATE VIEW {q(a.schema)}.v AS SELECT note FROM {q(a.schema)}.t")
    assert as_reader(platform_db, a.reader_role, f"SELECT word FROM {q(a.schema)}.later") == [("late",)]
    assert as_reader(platform_db, a.reader_role, f"SELECT note FROM {q(a.schema)}.v") == [("mine",)]


@pytest.mark.parametrize(
    "target",
    [
        "other.t",
        "platform.secrets",
        "platform.users",
        "platform.api_tokens",
        "platform.tenants",
        "platform.analytics_queries",
        "platform.executions",
        "platform.alembic_version",
    ],
)
def test_reader_cannot_read_another_tenant_or_the_platform(two_tenants, platform_db, target):
    a, b = two_tenants
    relation = f"{q(b.schema)}.t" if target == "other.t" else target
    with pytest.raises(psycopg2.errors.InsufficientPrivilege) as info:
        as_reader(platform_db, a.reader_role, f"SELECT * FROM {relation}")
    assert "permission denied" in str(info.value)
    # ... and the other way round for the tenant tables.
    if target == "other.t":
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            as_reader(platform_db, b.reader_role, f"SELECT * FROM {q(a.schema)}.t")


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO {s}.t VALUES (2, 'x')",
        "UPDATE {s}.t SET note = 'x'",
        "DELETE FROM {s}.t",
        "CREATE TABLE {s}.evil (id int)",
        "DROP TABLE {s}.t",
        "CREATE TABLE public.evil (id int)",
    ],
)
def test_reader_cannot_write_even_outside_a_read_only_transaction(two_tenants, platform_db, sql):
    a, _ = two_tenants
    with pytest.raises((psycopg2.errors.InsufficientPrivilege, psycopg2.errors.ReadOnlySqlTransaction)):
        as_reader(platform_db, a.reader_role, sql.format(s=q(a.schema)), read_only=False)
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT id, note FROM {q(a.schema)}.t")
        assert cur.fetchall() == [(1, "mine")]


def test_reader_role_cannot_log_in(two_tenants, platform_db):
    a, _ = two_tenants
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(platform_db.dsn(user=a.reader_role, password="x", connect_timeout=5))
