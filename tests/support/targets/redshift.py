"""Redshift, simulated: ``redshift_connector`` talks to the local PostgreSQL through
``tests/support/redshift_proxy.py`` (which smooths the startup handshake), so every query runs
on a real PostgreSQL engine, in a throw-away database owned by an ordinary role holding the
corpus fixture objects."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from shared.connectors.base import ColumnType
from shared.connectors.redshift import CURSOR_NAME, RedshiftConnector
from shared.dialects import Driver
from tests.support.databases import PG_HOST, PG_PORT, create_database, drop_database
from tests.support.redshift_proxy import RedshiftProxy
from tests.support.targets.base import ConnectorTarget
from tests.support.targets.postgres import FIXTURE_SQL, canary_state

# Types a Redshift cluster has too (no bytea, json or arrays there).
TYPED_QUERY = """
SELECT 42::int AS i, 9007199254740993::bigint AS big, 1.5::float8 AS f,
       12345678901234567890.1234567890::numeric(38,10) AS n, true AS b, 'héllo'::varchar AS s,
       DATE '2024-02-29' AS d, TIMESTAMP '2024-01-02 03:04:05.123456' AS ts,
       TIMESTAMPTZ '2024-01-02 03:04:05+00' AS tstz, TIME '10:11:12' AS t, NULL::varchar AS nothing
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
    "tstz": (ColumnType.DATETIME, dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc).isoformat()),
    "t": (ColumnType.TIME, "10:11:12"),
    "nothing": (ColumnType.STRING, None),
}

SLOW_QUERY = "SELECT count(*) AS slow_marker FROM generate_series(1, 100000000000) AS g"


def rows_query(n: int) -> str:
    return f"SELECT g AS n FROM generate_series(1, {int(n)}) AS g ORDER BY g"


def backend_running(db, marker: str = "slow_marker") -> bool:
    """Does PostgreSQL still run, in ``db``, a statement whose text holds ``marker``, or a FETCH
    from the connector's cursor (a SELECT runs as DECLARE + FETCH, so pg_stat_activity shows
    the FETCH while the query works)?"""
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND datname = %s "
            "AND (query LIKE %s OR query LIKE %s) AND pid <> pg_backend_pid()",
            (db.name, f"%{marker}%", f"FETCH %{CURSOR_NAME}%"),
        )
        return cur.fetchone()[0] > 0


@pytest.fixture(scope="session")
def ext_redshift_db():
    """The database the simulated Redshift serves, with the corpus fixture objects."""
    db = create_database("analytics_rs")
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(FIXTURE_SQL.format(orders="orders"))
    yield db
    drop_database(db)


@pytest.fixture(scope="session")
def redshift_proxy():
    with RedshiftProxy((PG_HOST, PG_PORT)) as proxy:
        yield proxy


def redshift_config(db, proxy, **overrides) -> dict:
    config = {
        "host": "127.0.0.1", "port": proxy.port, "database": db.name, "user": db.role, "password": db.password,
        "ssl": False, "connect_timeout": 5,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def redshift_proxy_config(ext_redshift_db, redshift_proxy) -> dict:
    """A working analytics-redshift secret value (through the proxy, without TLS)."""
    return redshift_config(ext_redshift_db, redshift_proxy)


@pytest.fixture(scope="session")
def redshift_target(ext_redshift_db, redshift_proxy, redshift_proxy_config):
    return ConnectorTarget(
        driver=Driver.REDSHIFT,
        make=RedshiftConnector,
        config=redshift_proxy_config,
        # Local PostgreSQL trusts 127.0.0.1, so a wrong password alone would be accepted.
        bad_credentials=redshift_config(ext_redshift_db, redshift_proxy, user="no_such_role_x", password="wrong"),
        unreachable=redshift_config(ext_redshift_db, redshift_proxy, port=1),
        typed_query=TYPED_QUERY,
        expected=EXPECTED,
        rows_query=rows_query,
        slow_query=SLOW_QUERY,
        write_query="SELECT accept_wipe_canary_fn()",
        write_check=lambda: canary_state(ext_redshift_db),
        is_running=lambda marker="slow_marker": backend_running(ext_redshift_db, marker),
    )


__all__ = ["ext_redshift_db", "redshift_proxy", "redshift_proxy_config", "redshift_target"]
