"""Bearer-token authentication and app lookup inside the caller's tenant."""
from __future__ import annotations

from dataclasses import dataclass

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.context import services
from shared.errors import AuthenticationError, NotFoundError
from shared.models import App, Tenant, User
from shared.services.users import authenticate


@dataclass(frozen=True)
class Caller:
    user: User
    tenant: Tenant


def db() -> Session:
    if "db" not in g:
        g.db = services().sessions()
    return g.db


def authenticate_request() -> None:
    """``before_request`` of every resource blueprint."""
    if request.method == "OPTIONS" and getattr(request.url_rule, "provide_automatic_options", False):
        # Flask answers this OPTIONS itself with the allowed methods and nothing else; like
        # Flask-Login's login_required, it needs no token (no view runs).
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise AuthenticationError("Missing or malformed Authorization header (expected: Bearer <token>)")
    session = db()
    user, tenant = authenticate(session, token)
    if session.dirty:
        session.commit()  # records last_used_at
    g.caller = Caller(user=user, tenant=tenant)


def caller() -> Caller:
    return g.caller


def app_of_caller(app_slug: str) -> App:
    """The app ``app_slug`` of the caller's tenant; another tenant's app is simply not found."""
    app = db().scalar(select(App).where(App.tenant_id == caller().tenant.id, App.slug == app_slug))
    if app is None:
        raise NotFoundError("App not found")
    return app
