"""The reader role alone isolates tenants: with validation switched off (the connector is
called directly), an internal query cannot read another tenant's schema or the platform."""
from __future__ import annotations

import pytest

from shared import errors
from shared.connectors.internal import InternalConnector
from tests.support.fixtures import make_account
from tests.support.targets.postgres import tenant_internal_config


@pytest.fixture(scope="module")
def tenants(sessions, platform_db):
    a, b = make_account(sessions, "isoa"), make_account(sessions, "isob")
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(f'CREATE TABLE "{a.schema}".mine (x text)')
        cur.execute(f"INSERT INTO \"{a.schema}\".mine VALUES ('a-data')")
        cur.execute(f'CREATE TABLE "{b.schema}".theirs (x text)')
        cur.execute(f"INSERT INTO \"{b.schema}\".theirs VALUES ('b-data')")
    return a, b


@pytest.fixture()
def connector(tenants, settings, sessions):
    a, _ = tenants
    conn = InternalConnector(tenant_internal_config(sessions, settings, a.tenant))
    yield conn
    conn.close()


def run(connector, sql: str):
    return connector.execute(sql, max_rows=100, timeout=10, execution_key="exec_iso")


def test_own_schema_is_readable_unqualified(connector):
    assert run(connector, "SELECT x FROM mine").rows == [("a-data",)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT x FROM {b}.theirs",
        "SELECT * FROM platform.secrets",
        "SELECT * FROM platform.api_tokens",
        "SELECT * FROM platform.users",
        "SELECT query_to_xml('select * from {b}.theirs', true, true, '')",
        "SELECT set_config('search_path', '{b}', true), query_to_xml('select * from theirs', true, true, '')",
    ],
)
def test_other_schemas_are_denied_by_the_role(connector, tenants, sql):
    _, b = tenants
    with pytest.raises(errors.QueryExecutionError) as info:
        run(connector, sql.format(b=b.schema))
    # Without USAGE on the schema a relation is either denied or not even visible.
    assert "permission denied" in info.value.message or "does not exist" in info.value.message
    assert "b-data" not in info.value.message


def test_resetting_the_role_falls_back_to_the_tenant_only(connector, tenants):
    # Were the validator to miss a role change, the session user is the tenant's login role,
    # whose only privilege is the reader role: the platform and other tenants stay closed.
    _, b = tenants
    sql = (
        "SELECT set_config('role', 'none', true) AS r, "
        "query_to_xml('select * from platform.secrets', true, true, '') AS leak"
    )
    with pytest.raises(errors.QueryExecutionError) as info:
        run(connector, sql)
    assert "permission denied" in info.value.message
    with pytest.raises(errors.QueryExecutionError):
        run(connector, f"SELECT set_config('role', 'none', true), query_to_xml('select * from {b.schema}.theirs', true, true, '')")


def test_writes_are_refused_in_own_schema(connector, platform_db, tenants):
    a, _ = tenants
    with pytest.raises(errors.QueryExecutionError):
        run(connector, "WITH d AS (DELETE FROM mine RETURNING *) SELECT count(*) FROM d")
    with platform_db.connect() as conn, conn.cursor() as cur:
        cur.execute(f'SELECT x FROM "{a.schema}".mine')
        assert cur.fetchall() == [("a-data",)]
