"""External PostgreSQL (a throw-away database owned by an ordinary role) and the internal
target (a tenant schema on the platform database)."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from shared.connectors.base import ColumnType
from shared.connectors.internal import InternalConnector
from shared.connectors.postgres import PostgresConnector
from shared.dialects import Driver
from tests.support.databases import PG_HOST, admin_connection, PG_PORT, create_database, drop_database
from tests.support.targets.base import ConnectorTarget

# The fixture objects of ../shared/corpus/README.md, for external PostgreSQL and (with
# app_orders instead of orders) for a tenant schema.
FIXTURE_SQL = """
CREATE TABLE accept_canary (id int PRIMARY KEY, note text);
INSERT INTO accept_canary VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma');
CREATE SEQUENCE accept_seq;
CREATE MATERIALIZED VIEW accept_mv AS SELECT * FROM accept_canary;
CREATE PROCEDURE accept_wipe_canary() LANGUAGE sql AS $$ DELETE FROM accept_canary $$;
CREATE FUNCTION accept_wipe_canary_fn() RETURNS int LANGUAGE plpgsql VOLATILE AS
  $$ BEGIN DELETE FROM accept_canary; RETURN 1; END $$;
CREATE TABLE {orders} (id int PRIMARY KEY, customer text, status text, total numeric(12,2));
INSERT INTO {orders} VALUES (1, 'ada', 'paid', 10.50), (2, 'bob', 'it''s complicated', 20.00),
  (3, 'cy', 'pending', 30.25), (4, 'di', E'back\\\\slash', 40.00), (5, 'ed', 'paid', 50.75);
"""

TYPED_QUERY = """
SELECT 42::int AS i, 9007199254740993::bigint AS big, 1.5::float8 AS f,
       12345678901234567890.1234567890::numeric(38,10) AS n, true AS b, 'héllo'::text AS s,
       DATE '2024-02-29' AS d, TIMESTAMP '2024-01-02 03:04:05.123456' AS ts,
       TIMESTAMPTZ '2024-01-02 03:04:05+00' AS tstz, TIME '10:11:12' AS t,
       '\\x00ff10'::bytea AS bin, '{"a": [1, 2, {"b": null}]}'::jsonb AS j, ARRAY[1, 2, 3] AS arr,
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, NULL::text AS nothing
"""

EXPECTED = {
    "i": (ColumnType.INTEGER, 42),
    "big": (ColumnType.INTEGER, 9007199254740993),
    "f": (ColumnType.FLOAT, 1.5),
    "n": (ColumnType.DECIMAL, Decimal("12345678901234567890.1234567890")),
    "b": (ColumnType.BOOLEAN, True),
    "s": (ColumnType.STRING, "héllo"),
    "d": (ColumnType.DATE, "2024-02-29"),
    "ts": (ColumnType.DATETIME, "2024-01-02T03:04:05.123456"),
    "t": (ColumnType.TIME, "10:11:12"),
    "bin": (ColumnType.BINARY, "AP8Q"),
    "j": (ColumnType.JSON, {"a": [1, 2, {"b": None}]}),
    "arr": (ColumnType.ARRAY, [1, 2, 3]),
    "u": (ColumnType.UUID, str(uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))),
    "nothing": (ColumnType.STRING, None),
}

SLOW_QUERY = "SELECT count(*) AS slow_marker FROM generate_series(1, 100000000000) AS g"


def _rows(n: int) -> str:
    return f"SELECT g AS n FROM generate_series(1, {n}) AS g ORDER BY g"


def active_queries(db, marker: str = "slow_marker") -> int:
    """Queries of ``db`` running right now that carry ``marker``. A server-side cursor shows
    up as ``FETCH FORWARD ...`` while it runs, so fetches of our cursors count too."""
    # As the superuser: other roles' query texts are hidden from an ordinary role.
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND datname = %s "
            "AND (query LIKE %s OR query LIKE 'FETCH FORWARD %%') AND pid <> pg_backend_pid()",
            (db.name, f"%{marker}%"),
        )
        return cur.fetchone()[0]


def activity(db) -> list:
    """What runs on ``db`` right now (for failure messages)."""
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT usename, state, left(query, 120), now() - query_start FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (db.name,),
        )
        return cur.fetchall()


def _is_running(admin_db):
    return lambda marker="slow_marker": active_queries(admin_db, marker) > 0


def canary_state(db) -> list:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT id, note FROM accept_canary ORDER BY id")
        rows = cur.fetchall()
        cur.execute("SELECT last_value, is_called FROM accept_seq")
        return [rows, cur.fetchone()]


@pytest.fixture(scope="session")
def ext_pg():
    """An external PostgreSQL database holding the corpus fixture objects."""
    db = create_database("analytics_ext")
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(FIXTURE_SQL.format(orders="orders"))
    yield db
    drop_database(db)


def pg_config(db, **overrides) -> dict:
    config = {
        "host": PG_HOST, "port": PG_PORT, "database": db.name, "user": db.role, "password": db.password,
        "sslmode": "disable", "connect_timeout": 5,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def postgres_target(ext_pg):
    return ConnectorTarget(
        driver=Driver.POSTGRES,
        make=PostgresConnector,
        config=pg_config(ext_pg),
        bad_credentials=pg_config(ext_pg, user="no_such_role_x", password="wrong"),
        unreachable=pg_config(ext_pg, port=1),
        typed_query=TYPED_QUERY,
        expected=EXPECTED,
        rows_query=_rows,
        slow_query=SLOW_QUERY,
        write_query="SELECT accept_wipe_canary_fn()",
        write_check=lambda: canary_state(ext_pg),
        is_running=_is_running(ext_pg),
    )


@pytest.fixture(scope="session")
def internal_tenant(sessions, platform_db):
    """A tenant whose schema holds the fixture objects (created by the service role)."""
    from tests.support.fixtures import make_account

    account = make_account(sessions, "int")
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(f'SET search_path TO "{account.schema}"')
        cur.execute(FIXTURE_SQL.format(orders="app_orders"))
    return account


def tenant_internal_config(sessions, settings, slug: str) -> dict:
    from sqlalchemy import select

    from shared.connectors.internal import internal_config
    from shared.crypto import SecretBox
    from shared.models import Tenant

    with sessions() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
        return internal_config(settings.database_url, tenant, SecretBox(settings.secret_keys))


@pytest.fixture(scope="session")
def internal_target(internal_tenant, platform_db, settings, sessions):
    config = tenant_internal_config(sessions, settings, internal_tenant.tenant)
    bad = dict(config, dsn=dict(config["dsn"], user="no_such_role_x"))
    unreachable = dict(config, dsn=dict(config["dsn"], port=1))

    def write_check():
        with platform_db.connect() as conn, conn.cursor() as cur:
            cur.execute(f'SELECT id, note FROM "{internal_tenant.schema}".accept_canary ORDER BY id')
            return cur.fetchall()

    return ConnectorTarget(
        driver=Driver.INTERNAL,
        make=InternalConnector,
        config=config,
        bad_credentials=bad,
        unreachable=unreachable,
        typed_query=TYPED_QUERY,
        expected=EXPECTED,
        rows_query=_rows,
        slow_query=SLOW_QUERY,
        write_query="SELECT accept_wipe_canary_fn()",
        write_check=write_check,
        is_running=_is_running(platform_db),
    )


__all__ = ["ext_pg", "postgres_target", "internal_tenant", "internal_target", "dt"]
