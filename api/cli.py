"""The ``analytics`` command line (CONTRACT section 2).

Errors print one clear line on stderr and exit non-zero, never a traceback.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps

import click

from shared.config import ConfigError, Settings
from shared.errors import AnalyticsError


def _settings() -> Settings:
    return Settings.from_env()


def _session_factory(settings: Settings):
    from shared.db import make_engine, make_session_factory

    return make_session_factory(make_engine(settings.database_url, pool_size=1, max_overflow=0))


def friendly(func: Callable) -> Callable:
    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (AnalyticsError, ConfigError) as exc:
            _fail(exc.message)
        except Exception as exc:  # database down, bad URL...: one line, no traceback
            _fail(_one_line(exc))

    return wrapper


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return f"{type(exc).__name__}: {first}"[:500]


def _fail(message: str) -> None:
    # One line, whatever the message holds (the missing-key help spans two).
    message = " ".join(line.strip() for line in message.splitlines() if line.strip())
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group()
def main() -> None:
    """Analytics API: saved, parameterized, read-only queries for every tenant."""


@main.group()
def db() -> None:
    """Platform database."""


@db.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Apply all migrations (idempotent)."""
    from shared.migrate import upgrade

    upgrade(_settings().database_url)
    click.echo("Database is up to date.")


@main.group()
def tenant() -> None:
    """Tenants."""


@tenant.command("create")
@click.argument("slug")
@click.option("--name", default=None, help="Display name (default: the slug).")
@click.option("--schema", default=None, help="Tenant schema (default: tenant_<slug>).")
@friendly
def tenant_create(slug: str, name: str | None, schema: str | None) -> None:
    """Create a tenant, its schema and reader role, and seed its secret types (idempotent)."""
    from shared.db import session_scope
    from shared.services.tenants import create_tenant

    from shared.crypto import SecretBox

    settings = _settings()
    with session_scope(_session_factory(settings)) as session:
        outcome = create_tenant(session, slug, name=name, schema=schema, box=SecretBox(settings.secret_keys))
        tenant_row = outcome.tenant
        for change in outcome.changes:
            click.echo(f"  {change}")
        if outcome.changes:
            click.echo(f"Tenant {tenant_row.slug} is ready (schema {tenant_row.schema_name}).")
        else:
            click.echo(f"Tenant {tenant_row.slug} already exists (schema {tenant_row.schema_name}); nothing changed.")


@tenant.command("seed")
@click.argument("slug")
@friendly
def tenant_seed(slug: str) -> None:
    """(Re)create the tenant's missing secret types."""
    from shared.db import session_scope
    from shared.services.tenants import get_tenant, seed_secret_types

    with session_scope(_session_factory(_settings())) as session:
        changes = seed_secret_types(session, get_tenant(session, slug))
        for change in changes:
            click.echo(f"  {change}")
        click.echo(f"Seeded {len(changes)} secret type(s)." if changes else "All secret types exist; nothing changed.")


@main.group()
def app() -> None:
    """Apps."""


@app.command("create")
@click.argument("tenant_slug")
@click.argument("app_slug")
@click.option("--name", default=None)
@friendly
def app_create(tenant_slug: str, app_slug: str, name: str | None) -> None:
    """Create an app in a tenant."""
    from shared.db import session_scope
    from shared.services.tenants import create_app

    with session_scope(_session_factory(_settings())) as session:
        row = create_app(session, tenant_slug, app_slug, name=name)
        click.echo(f"Created app {row.slug} in tenant {tenant_slug}.")


@main.group()
def user() -> None:
    """Users."""


@user.command("create")
@click.argument("tenant_slug")
@click.argument("username")
@click.option("--email", default="")
@click.option("--first-name", default="")
@click.option("--last-name", default="")
@click.option("--staff", is_flag=True)
@click.option("--superuser", is_flag=True)
@friendly
def user_create(tenant_slug, username, email, first_name, last_name, staff, superuser) -> None:
    """Create a user; the last line printed is the new API token (shown once)."""
    from shared.db import session_scope
    from shared.services.users import create_user

    with session_scope(_session_factory(_settings())) as session:
        _, token = create_user(
            session, tenant_slug, username, email=email, first_name=first_name, last_name=last_name,
            is_staff=staff, is_superuser=superuser,
        )
    click.echo(f"Created user {username} in tenant {tenant_slug}. API token (shown once):")
    click.echo(token)


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.argument("tenant_slug")
@click.argument("username")
@friendly
def token_create(tenant_slug: str, username: str) -> None:
    """Issue another token for a user; the last line printed is the token."""
    from shared.db import session_scope
    from shared.services.users import create_token

    with session_scope(_session_factory(_settings())) as session:
        new = create_token(session, tenant_slug, username)
    click.echo(f"New API token for {username} (shown once):")
    click.echo(new)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn processes")
@click.option("--threads", default=16, show_default=True, type=int, help="threads per process (requests wait for results)")
@friendly
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Run the HTTP API under gunicorn (threaded workers)."""
    _settings()  # fail here, with one line, rather than in every gunicorn worker
    timeout = int(_settings().max_wait) + 60
    args = [
        sys.executable, "-m", "gunicorn", "api.wsgi:app",
        "--bind", f"{host}:{port}",
        "--worker-class", "gthread",
        "--workers", str(workers),
        "--threads", str(threads),
        # A request may legitimately wait up to ANALYTICS_MAX_WAIT for a result.
        "--timeout", str(timeout),
        "--graceful-timeout", "30",
        "--access-logfile", "-",
    ]
    os.execv(sys.executable, args)


@main.command()
@click.option("--queues", default=None, help="Comma-separated queues (default: all six).")
@click.option("--concurrency", default=None, type=int, help="Worker processes (default: CPU count).")
@click.option("--loglevel", default="INFO", show_default=True)
@friendly
def worker(queues: str | None, concurrency: int | None, loglevel: str) -> None:
    """Run a Celery worker on the named queues."""
    from shared.jobs import Queue

    _settings()
    names = [q.strip() for q in (queues or ",".join(q.value for q in Queue)).split(",") if q.strip()]
    unknown = [q for q in names if q not in {q.value for q in Queue}]
    if unknown:
        _fail(f"unknown queue(s): {', '.join(unknown)}; known: {', '.join(q.value for q in Queue)}")
    args = [
        sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker",
        "--queues", ",".join(names), "--loglevel", loglevel, "--without-gossip", "--without-mingle",
        "--hostname", f"analytics-{os.getpid()}@%h",
    ]
    if concurrency:
        args += ["--concurrency", str(concurrency)]
    os.execv(sys.executable, args)


if __name__ == "__main__":
    main()
