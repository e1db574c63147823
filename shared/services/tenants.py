"""Tenants: the row, the tenant schema, the reader role and the seeded secret types.

Everything here is idempotent: running it again creates only what is missing and reports
what it did, so ``analytics tenant create`` can be re-run safely.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shared.crypto import SecretBox
from shared.errors import ConflictError, NotFoundError, ValidationError
from shared.models import App, SecretType, Tenant
from shared.secret_types import SEED_TYPES

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RESERVED_SCHEMAS = {"public", "platform", "information_schema"}


@dataclass
class Outcome:
    tenant: Tenant
    changes: list[str] = field(default_factory=list)


def default_schema(slug: str) -> str:
    return "tenant_" + slug.replace("-", "_")


def reader_role_name(database: str, schema: str, kind: str = "reader") -> str:
    # Roles are cluster-wide while schemas are per database: the database's hash keeps two
    # platform databases on one server (say, production and a test run) from sharing a role.
    digest = hashlib.sha256(database.encode()).hexdigest()[:8]
    return f"{schema[:45]}_{kind}_{digest}"


def login_role_name(database: str, schema: str) -> str:
    return reader_role_name(database, schema, "login")


def check_slug(slug: str, what: str = "slug") -> str:
    if not SLUG_RE.match(slug or ""):
        raise ValidationError(
            f"Invalid {what} {slug!r}: use 1-63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit",
            details={what: ["Invalid slug."]},
        )
    return slug


def create_tenant(
    session: Session, slug: str, *, name: str | None = None, schema: str | None = None, box: SecretBox | None = None
) -> Outcome:
    """Create (or complete) a tenant. ``box`` encrypts the login role's password; without it
    the login role is left without one, and internal queries of the tenant cannot run until
    ``tenant create`` runs again with the key (the CLI always passes it)."""
    check_slug(slug)
    schema = schema or default_schema(slug)
    if not SCHEMA_RE.match(schema) or schema in RESERVED_SCHEMAS or schema.startswith("pg_"):
        raise ValidationError(f"Invalid schema name {schema!r}", details={"schema": ["Invalid schema name."]})

    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    changes: list[str] = []
    if tenant is None:
        if session.scalar(select(Tenant).where(Tenant.schema_name == schema)):
            raise ConflictError(f"Schema {schema} already belongs to another tenant")
        database = session.execute(text("SELECT current_database()")).scalar_one()
        tenant = Tenant(
            slug=slug,
            name=name or slug,
            schema_name=schema,
            reader_role=reader_role_name(database, schema),
            login_role=login_role_name(database, schema),
        )
        session.add(tenant)
        session.flush()
        changes.append(f"created tenant {slug}")
    elif schema != tenant.schema_name and schema != default_schema(slug):
        raise ConflictError(f"Tenant {slug} already exists with schema {tenant.schema_name}")

    changes += _ensure_schema_and_role(session, tenant)
    changes += _ensure_login_role(session, tenant, box)
    changes += seed_secret_types(session, tenant)
    return Outcome(tenant, changes)


def _ensure_schema_and_role(session: Session, tenant: Tenant) -> list[str]:
    changes = []
    schema, role = _quote_ident(tenant.schema_name), _quote_ident(tenant.reader_role)
    exists = session.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": tenant.schema_name}
    ).first()
    if not exists:
        session.execute(text(f"CREATE SCHEMA {schema}"))
        changes.append(f"created schema {tenant.schema_name}")
    role_exists = session.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": tenant.reader_role}).first()
    if not role_exists:
        # NOLOGIN: the role is only ever entered with SET LOCAL ROLE inside a read-only
        # transaction of the internal connector.
        session.execute(text(f"CREATE ROLE {role} NOLOGIN NOINHERIT"))
        changes.append(f"created reader role {tenant.reader_role}")
    member = session.execute(
        text("SELECT pg_has_role(current_user, :r, 'MEMBER')"), {"r": tenant.reader_role}
    ).scalar_one()
    if not member:
        session.execute(text(f"GRANT {role} TO current_user"))
        changes.append("granted the reader role to the service role")
    # Grants are idempotent; running them every time also repairs a schema whose tables were
    # created before the default privileges existed.
    session.execute(text(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"))
    session.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {role}"))
    session.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}"))
    session.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}"))
    return changes


def _ensure_login_role(session: Session, tenant: Tenant, box: SecretBox | None) -> list[str]:
    """The role the internal connector logs in as. Its only privilege is membership in the
    reader role, so `SET ROLE NONE`/`RESET ROLE` inside a query (were the validator to miss
    one) falls back to the tenant's own grants instead of the service role's."""
    changes = []
    login, reader = _quote_ident(tenant.login_role), _quote_ident(tenant.reader_role)
    exists = session.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": tenant.login_role}).first()
    if not exists:
        session.execute(text(f"CREATE ROLE {login} NOLOGIN INHERIT"))
        changes.append(f"created login role {tenant.login_role}")
    member = session.execute(
        text("SELECT pg_has_role(:login, :reader, 'MEMBER')"), {"login": tenant.login_role, "reader": tenant.reader_role}
    ).scalar_one()
    if not member:
        session.execute(text(f"GRANT {reader} TO {login}"))
    if tenant.login_secret is None and box is not None:
        password = secrets.token_urlsafe(32)  # URL-safe alphabet: nothing to escape in the literal
        session.execute(text(f"ALTER ROLE {login} LOGIN PASSWORD '{password}'"))
        tenant.login_secret = box.encrypt_json(password)
        changes.append("set the login role's password")
    return changes


def seed_secret_types(session: Session, tenant: Tenant) -> list[str]:
    existing = set(session.scalars(select(SecretType.slug).where(SecretType.tenant_id == tenant.id)))
    changes = []
    for spec in SEED_TYPES:
        if spec.slug in existing:
            continue
        session.add(
            SecretType(
                tenant_id=tenant.id,
                slug=spec.slug,
                name=spec.name,
                driver=spec.driver.value if spec.driver else None,
                schema=spec.json_schema(),
            )
        )
        changes.append(f"seeded secret type {spec.slug}")
    session.flush()
    return changes


def get_tenant(session: Session, slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFoundError(f"Tenant {slug} not found")
    return tenant


def create_app(session: Session, tenant_slug: str, app_slug: str, *, name: str | None = None) -> App:
    tenant = get_tenant(session, tenant_slug)
    check_slug(app_slug, "app slug")
    if session.scalar(select(App).where(App.tenant_id == tenant.id, App.slug == app_slug)):
        raise ConflictError(f"App {app_slug} already exists in tenant {tenant_slug}")
    app = App(tenant_id=tenant.id, slug=app_slug, name=name or app_slug)
    session.add(app)
    session.flush()
    return app


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
