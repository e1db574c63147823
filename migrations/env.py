"""Alembic environment: the URL comes from the caller (``analytics db upgrade``) or Settings."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from shared.models import PLATFORM_SCHEMA, Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from shared.config import Settings

        url = Settings.from_env().database_url
    engine = create_engine(url)
    with engine.connect() as connection:
        # The version table lives in the platform schema, so the schema must exist first.
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{PLATFORM_SCHEMA}"'))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=PLATFORM_SCHEMA,
            include_schemas=False,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
