"""Demo data for `make run` (idempotent): app `dashboard`, user `demo`, a table of orders in
the demo tenant schema and a saved internal query. Prints the demo user's token last."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text

from shared.config import Settings
from shared.db import make_engine, make_session_factory, session_scope
from shared.models import AnalyticsQuery, App, Tenant, User
from shared.services.queries import create_query
from shared.services.tenants import create_app
from shared.services.users import create_token, create_user

TOKEN_FILE = Path(".analytics/demo_token")

settings = Settings.from_env()
sessions = make_session_factory(make_engine(settings.database_url, pool_size=1))

with session_scope(sessions) as session:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    app = session.scalar(select(App).where(App.tenant_id == tenant.id, App.slug == "dashboard"))
    if app is None:
        app = create_app(session, "demo", "dashboard", name="Dashboard")
    session.execute(
        text(
            f'CREATE TABLE IF NOT EXISTS "{tenant.schema_name}".orders '
            "(id int PRIMARY KEY, customer text NOT NULL, status text NOT NULL, total numeric(12,2) NOT NULL)"
        )
    )
    session.execute(
        text(
            f'INSERT INTO "{tenant.schema_name}".orders VALUES '
            "(1, 'Ada', 'paid', 120.50), (2, 'Grace', 'pending', 80.00), (3, 'Linus', 'paid', 42.42) "
            "ON CONFLICT (id) DO NOTHING"
        )
    )
    if not session.scalar(select(AnalyticsQuery).where(AnalyticsQuery.app_id == app.id, AnalyticsQuery.slug == "orders-by-status")):
        create_query(
            session,
            app,
            tenant,
            {
                "name": "Orders by status",
                "slug": "orders-by-status",
                "connection_type": "internal",
                "query_text": "SELECT id, customer, total FROM orders WHERE status = '{{ status }}' ORDER BY id",
                "tags": ["demo"],
                "parameters": [{"name": "status", "type": "text", "default": "paid"}],
            },
            max_timeout=settings.query_timeout,
        )
    user = session.scalar(select(User).where(User.tenant_id == tenant.id, User.username == "demo"))
    if user is None:
        _, token = create_user(session, "demo", "demo", email="demo@example.com", first_name="Demo")
    elif TOKEN_FILE.exists():
        token = TOKEN_FILE.read_text().strip()
    else:
        token = create_token(session, "demo", "demo")

TOKEN_FILE.parent.mkdir(exist_ok=True)
TOKEN_FILE.write_text(token + "\n")
print(token)
