"""Secrets of an app: values checked against their type, encrypted before they touch the
database, and shown by field names only."""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.crypto import SecretBox
from shared.errors import ConflictError, NotFoundError, SecretResolutionError, ValidationError
from shared.models import App, Secret, SecretType
from shared.secret_types import check_secret_value

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
# user_profile is the caller's profile in templates; "types" would be shadowed by /secrets/types/.
RESERVED_KEYS = {"user_profile", "types"}


def list_types(session: Session, tenant_id: int) -> list[SecretType]:
    return list(session.scalars(select(SecretType).where(SecretType.tenant_id == tenant_id).order_by(SecretType.slug)))


def get_type(session: Session, tenant_id: int, slug: str) -> SecretType:
    secret_type = session.scalar(select(SecretType).where(SecretType.tenant_id == tenant_id, SecretType.slug == slug))
    if secret_type is None:
        raise SecretResolutionError("Secret type not found", details={"type_slug": ["Secret type not found"]})
    return secret_type


def field_names(value: Any) -> list[str]:
    return sorted(value.keys()) if isinstance(value, dict) else []


def check_key(key: str) -> None:
    # Keys are read in templates as {{ secret.<key> }}, so they must be identifiers.
    if not KEY_RE.match(key or "") or key in RESERVED_KEYS:
        raise ValidationError(
            "Invalid secret key", details={"key": ["Use letters, digits and '_', not starting with a digit (max 100)."]}
        )


def create_secret(
    session: Session, box: SecretBox, app: App, *, key: str, type_slug: str, value: Any, description: str = ""
) -> Secret:
    check_key(key)
    secret_type = get_type(session, app.tenant_id, type_slug)
    value = check_secret_value(secret_type.schema, value)
    if session.scalar(select(Secret.id).where(Secret.app_id == app.id, Secret.key == key)):
        raise ConflictError(f"A secret with key '{key}' already exists")
    secret = Secret(
        app_id=app.id,
        type_id=secret_type.id,
        key=key,
        description=description or "",
        value_encrypted=box.encrypt_json(value),
        fields=field_names(value),
    )
    session.add(secret)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ConflictError(f"A secret with key '{key}' already exists") from None
    return secret


def get_secret(session: Session, app: App, key: str) -> Secret:
    secret = session.scalar(select(Secret).where(Secret.app_id == app.id, Secret.key == key))
    if secret is None:
        raise NotFoundError("Secret not found")
    return secret


def list_secrets(session: Session, app: App, *, page: int, page_size: int) -> tuple[list[Secret], int]:
    base = select(Secret).where(Secret.app_id == app.id)
    total = session.scalar(select(func.count()).select_from(base.subquery()))
    rows = session.scalars(base.order_by(Secret.key).offset((page - 1) * page_size).limit(page_size))
    return list(rows), total or 0


def update_secret(
    session: Session, box: SecretBox, app: App, key: str, *, value: Any = None, has_value: bool, description: str | None,
    type_slug: str | None,
) -> Secret:
    secret = get_secret(session, app, key)
    if type_slug is not None and type_slug != secret.type.slug:
        raise ValidationError("The type of a secret cannot be changed", details={"type_slug": ["Cannot be changed."]})
    if has_value:
        value = check_secret_value(secret.type.schema, value)
        secret.value_encrypted = box.encrypt_json(value)
        secret.fields = field_names(value)
    if description is not None:
        secret.description = description
    session.flush()
    return secret


def delete_secret(session: Session, app: App, key: str) -> None:
    session.delete(get_secret(session, app, key))
    session.flush()
