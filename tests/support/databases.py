"""Throw-away databases and roles for one test run, created as the local superuser (setup
only: the service itself always connects as an ordinary role)."""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions

ADMIN_DSN = os.environ.get("ANALYTICS_TEST_PG_ADMIN_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
PG_HOST, PG_PORT = "127.0.0.1", 5432


def run_id() -> str:
    return secrets.token_hex(4)


@contextmanager
def admin_connection(dbname: str | None = None):
    dsn = ADMIN_DSN if dbname is None else f"{ADMIN_DSN} dbname={dbname}"
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class PgDatabase:
    name: str
    role: str
    password: str

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://{self.role}:{self.password}@{PG_HOST}:{PG_PORT}/{self.name}"

    def dsn(self, **extra) -> str:
        parts = {"host": PG_HOST, "port": PG_PORT, "dbname": self.name, "user": self.role, "password": self.password}
        parts.update(extra)
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def connect(self, **extra):
        conn = psycopg2.connect(self.dsn(**extra))
        conn.autocommit = True
        return conn


def create_database(prefix: str, *, createrole: bool = False) -> PgDatabase:
    """An ordinary LOGIN role (password-authenticated where the server asks) owning a new database."""
    name = f"{prefix}_{run_id()}"
    password = secrets.token_urlsafe(12)
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(
            f"CREATE ROLE {q(name)} LOGIN {'CREATEROLE' if createrole else ''} PASSWORD %s", (password,)
        )
        cur.execute(f"CREATE DATABASE {q(name)} OWNER {q(name)}")
    return PgDatabase(name=name, role=name, password=password)


def drop_database(db: PgDatabase, *, extra_roles_like: str | None = None) -> None:
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (db.name,),
        )
        cur.execute(f"DROP DATABASE IF EXISTS {q(db.name)} WITH (FORCE)")
        roles = [db.role]
        if extra_roles_like:
            cur.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (extra_roles_like,))
            roles += [r for (r,) in cur.fetchall()]
        for role in roles:
            cur.execute(f"DROP ROLE IF EXISTS {q(role)}")
