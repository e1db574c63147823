"""Users and their API tokens (stored as hashes only; shown once when created)."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.crypto import hash_token, new_token
from shared.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from shared.models import ApiToken, Tenant, User, utcnow
from shared.services.tenants import get_tenant

USERNAME_RE = re.compile(r"^[\w.@+-]{1,150}$")


def create_user(
    session: Session,
    tenant_slug: str,
    username: str,
    *,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> tuple[User, str]:
    tenant = get_tenant(session, tenant_slug)
    if not USERNAME_RE.match(username or ""):
        raise ValidationError(f"Invalid username {username!r}", details={"username": ["Invalid username."]})
    if session.scalar(select(User).where(User.tenant_id == tenant.id, User.username == username)):
        raise ConflictError(f"User {username} already exists in tenant {tenant_slug}")
    user = User(
        tenant_id=tenant.id,
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )
    session.add(user)
    session.flush()
    return user, issue_token(session, user)


def issue_token(session: Session, user: User) -> str:
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token)))
    session.flush()
    return token


def create_token(session: Session, tenant_slug: str, username: str) -> str:
    tenant = get_tenant(session, tenant_slug)
    user = session.scalar(select(User).where(User.tenant_id == tenant.id, User.username == username))
    if user is None:
        raise NotFoundError(f"User {username} not found in tenant {tenant_slug}")
    return issue_token(session, user)


def authenticate(session: Session, token: str) -> tuple[User, Tenant]:
    row = session.execute(
        select(ApiToken, User, Tenant)
        .join(User, ApiToken.user_id == User.id)
        .join(Tenant, User.tenant_id == Tenant.id)
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    if row is None or not row.User.is_active:
        raise AuthenticationError("Invalid or expired token")
    now = utcnow()
    last = row.ApiToken.last_used_at
    # Recorded to the minute: a write (and a commit) on every request would cost more than it tells.
    if last is None or (now - last).total_seconds() > 60:
        row.ApiToken.last_used_at = now
    return row.User, row.Tenant
