"""Alembic migrations on an empty database: upgrade, downgrade to base, upgrade again."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from shared.migrate import downgrade, upgrade
from shared.models import PLATFORM_SCHEMA, Base
from tests.support.databases import create_database, drop_database

TABLES = {"tenants", "apps", "users", "api_tokens", "secret_types", "secrets", "analytics_queries", "executions"}


@pytest.fixture()
def empty_db():
    db = create_database("analytics_mig")
    yield db
    drop_database(db)


def platform_tables(db) -> set[str]:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (PLATFORM_SCHEMA,))
        return {name for (name,) in cur.fetchall()} - {"alembic_version"}


def version(db) -> list:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM platform.alembic_version")
        return cur.fetchall()


def test_upgrade_downgrade_upgrade_on_an_empty_database(empty_db):
    assert platform_tables(empty_db) == set()

    upgrade(empty_db.sqlalchemy_url)
    assert platform_tables(empty_db) == TABLES
    head = version(empty_db)
    assert len(head) == 1

    upgrade(empty_db.sqlalchemy_url)  # idempotent
    assert version(empty_db) == head

    downgrade(empty_db.sqlalchemy_url, "base")
    assert platform_tables(empty_db) == set()
    assert version(empty_db) == []

    upgrade(empty_db.sqlalchemy_url)
    assert platform_tables(empty_db) == TABLES
    assert version(empty_db) == head


def test_migrations_match_the_models(platform_db):
    """A model change without a migration (or the reverse) shows up here."""
    engine = create_engine(platform_db.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "include_schemas": True,
                    "version_table_schema": PLATFORM_SCHEMA,
                    "include_name": lambda name, type_, parent: type_ != "schema" or name == PLATFORM_SCHEMA,
                    "compare_type": True,
                },
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
