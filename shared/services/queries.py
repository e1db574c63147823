"""Saved queries: slugs, tags, setup checks, and early validation of the template."""
from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import any_, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.connectors.registry import is_supported
from shared.dialects import DIALECT_OF_DRIVER, Driver
from shared.errors import ConflictError, NotFoundError, SecretResolutionError, ValidationError
from shared.models import AnalyticsQuery, App, Secret, Tenant
from shared.templating import check_syntax, render_preview
from shared.validation import validate_query
from shared.validation.params import parse_declarations

EXTERNAL, INTERNAL = "external", "internal"
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,118}[a-z0-9])?$")


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:100].strip("-")
    return slug or "query"


def resolve_driver(session: Session, app: App, connection_type: str, secret_key: str | None) -> Driver:
    """The driver a query runs on, with the setup errors' documented wording."""
    if connection_type == INTERNAL:
        if secret_key:
            raise ValidationError(
                "Internal queries run on the tenant schema and take no secret_key",
                details={"secret_key": ["Must be null for internal queries."]},
            )
        tenant = session.get(Tenant, app.tenant_id)
        exists = session.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": tenant.schema_name}
        ).first()
        if not exists:
            raise SecretResolutionError("Tenant schema required")
        return Driver.INTERNAL
    if not secret_key:
        raise SecretResolutionError("Secret not found", details={"secret_key": ["Required for external queries."]})
    secret = session.scalar(select(Secret).where(Secret.app_id == app.id, Secret.key == secret_key))
    if secret is None:
        raise SecretResolutionError("Secret not found")
    driver = secret.type.driver
    if not driver:
        raise SecretResolutionError("Unsupported analytics datasource")
    if not is_supported(driver) or driver == Driver.INTERNAL:
        raise SecretResolutionError("Driver not supported")
    return Driver(driver)


def check_template(query_text: str, driver: Driver, tenant_schema: str, declarations: dict) -> None:
    """Early feedback: the template must parse, and render (with placeholders) to a valid read."""
    check_syntax(query_text)
    preview = render_preview(query_text, dialect=DIALECT_OF_DRIVER[driver], declarations=declarations)
    validate_query(preview, DIALECT_OF_DRIVER[driver], tenant_schema=tenant_schema)


def _normalize_tags(tags: list[str] | None) -> list[str]:
    seen: list[str] = []
    for tag in tags or []:
        tag = tag.strip()
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def _unique_slug(session: Session, app: App, base: str, *, exclude_id: int | None = None) -> str:
    taken = set(
        session.scalars(
            select(AnalyticsQuery.slug).where(
                AnalyticsQuery.app_id == app.id,
                or_(AnalyticsQuery.slug == base, AnalyticsQuery.slug.like(base.replace("%", r"\%") + "-%")),
                AnalyticsQuery.id != (exclude_id or -1),
            )
        )
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _check_explicit_slug(slug: str) -> str:
    if not SLUG_RE.match(slug):
        raise ValidationError("Invalid slug", details={"slug": ["Use lower-case letters, digits and '-' (max 120)."]})
    return slug


def create_query(session: Session, app: App, tenant: Tenant, body: dict[str, Any], *, max_timeout: int) -> AnalyticsQuery:
    connection_type = body.get("connection_type") or EXTERNAL
    secret_key = body.get("secret_key")
    driver = resolve_driver(session, app, connection_type, secret_key)
    declarations = parse_declarations(body.get("parameters") or [])
    check_template(body["query_text"], driver, tenant.schema_name, declarations)

    if body.get("slug"):
        slug = _check_explicit_slug(body["slug"])
        if session.scalar(select(AnalyticsQuery.id).where(AnalyticsQuery.app_id == app.id, AnalyticsQuery.slug == slug)):
            raise ConflictError(f"A query with slug '{slug}' already exists")
    else:
        slug = _unique_slug(session, app, slugify(body["name"]))
    query = AnalyticsQuery(
        app_id=app.id,
        name=body["name"],
        slug=slug,
        description=body.get("description") or "",
        connection_type=connection_type,
        secret_key=secret_key if connection_type == EXTERNAL else None,
        driver=driver.value,
        query_text=body["query_text"],
        tags=_normalize_tags(body.get("tags")),
        timeout_seconds=_clamp_timeout(body.get("timeout_seconds"), max_timeout),
        parameters=body.get("parameters") or [],
    )
    session.add(query)
    _flush_or_conflict(session, slug)
    return query


def update_query(
    session: Session, app: App, tenant: Tenant, slug: str, body: dict[str, Any], *, max_timeout: int
) -> AnalyticsQuery:
    query = get_query(session, app, slug)
    connection_type = body.get("connection_type", query.connection_type) or EXTERNAL
    if connection_type == INTERNAL and "secret_key" not in body:
        secret_key = None
    else:
        secret_key = body.get("secret_key", query.secret_key)
    driver = resolve_driver(session, app, connection_type, secret_key)
    parameters = body.get("parameters", query.parameters) or []
    declarations = parse_declarations(parameters)
    query_text = body.get("query_text", query.query_text)
    check_template(query_text, driver, tenant.schema_name, declarations)

    if "slug" in body and body["slug"] and body["slug"] != query.slug:
        new_slug = _check_explicit_slug(body["slug"])
        if session.scalar(select(AnalyticsQuery.id).where(AnalyticsQuery.app_id == app.id, AnalyticsQuery.slug == new_slug)):
            raise ConflictError(f"A query with slug '{new_slug}' already exists")
        query.slug = new_slug
    for name in ("name", "description"):
        if name in body and body[name] is not None:
            setattr(query, name, body[name])
    if "tags" in body:
        query.tags = _normalize_tags(body["tags"])
    if "timeout_seconds" in body:
        query.timeout_seconds = _clamp_timeout(body["timeout_seconds"], max_timeout)
    query.connection_type = connection_type
    query.secret_key = secret_key if connection_type == EXTERNAL else None
    query.driver = driver.value
    query.query_text = query_text
    query.parameters = parameters
    _flush_or_conflict(session, query.slug)
    return query


def get_query(session: Session, app: App, slug: str) -> AnalyticsQuery:
    query = session.scalar(select(AnalyticsQuery).where(AnalyticsQuery.app_id == app.id, AnalyticsQuery.slug == slug))
    if query is None:
        raise NotFoundError("Query not found")
    return query


def list_queries(
    session: Session, app: App, *, tag: str | None, search: str | None, page: int, page_size: int
) -> tuple[list[AnalyticsQuery], int]:
    stmt = select(AnalyticsQuery).where(AnalyticsQuery.app_id == app.id)
    if tag:
        stmt = stmt.where(any_(AnalyticsQuery.tags) == tag)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        stmt = stmt.where(
            or_(
                AnalyticsQuery.name.ilike(pattern),
                AnalyticsQuery.slug.ilike(pattern),
                AnalyticsQuery.description.ilike(pattern),
            )
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(AnalyticsQuery.slug).offset((page - 1) * page_size).limit(page_size))
    return list(rows), total


def delete_query(session: Session, app: App, slug: str) -> None:
    session.delete(get_query(session, app, slug))
    session.flush()


def _clamp_timeout(value: int | None, max_timeout: int) -> int | None:
    if value is None:
        return None
    return max(1, min(int(value), max_timeout))


def _flush_or_conflict(session: Session, slug: str) -> None:
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ConflictError(f"A query with slug '{slug}' already exists") from None
