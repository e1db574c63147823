"""The tenant's own schema on the platform database.

Each execution is one ``READ ONLY`` transaction that sets a statement timeout,
``SET LOCAL search_path`` to the tenant schema only, and ``SET LOCAL ROLE`` to the tenant's
reader role, which can read that schema and nothing else. The role is the isolation; the
validator's schema and catalog rules are the second layer.
"""
from __future__ import annotations

from typing import Any, ClassVar

from shared import errors
from shared.connectors.postgres import PostgresConnector
from shared.crypto import SecretBox
from shared.db import libpq_params
from shared.dialects import Driver


def internal_config(database_url: str, tenant, box: SecretBox) -> dict[str, Any]:
    """Connection settings for a tenant: the platform database, as the tenant's login role."""
    if not tenant.login_secret:
        raise errors.SecretResolutionError(
            "Tenant schema required",
            details={"reason": "the tenant's login role has no password yet: run `analytics tenant create` again"},
        )
    dsn = libpq_params(database_url)
    dsn.update(user=tenant.login_role, password=box.decrypt_json(tenant.login_secret))
    return {"dsn": dsn, "schema": tenant.schema_name, "role": tenant.reader_role}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class InternalConnector(PostgresConnector):
    driver: ClassVar[Driver] = Driver.INTERNAL

    def connect_params(self) -> dict[str, Any]:
        params = dict(self.config["dsn"])
        params.setdefault("connect_timeout", 10)
        params["application_name"] = "analytics-api-internal"
        return params

    def prepare(self, cur, *, timeout: float) -> None:
        schema, role = self.config["schema"], self.config["role"]
        # One round trip. Identifiers cannot be bound parameters; these two come from the tenant
        # row, which only `analytics tenant create` writes after checking them against a strict
        # pattern. Setting a search_path that does not exist is no error, hence the check.
        cur.execute(
            "RESET ALL; SET LOCAL statement_timeout = %s; "
            f"SET LOCAL search_path TO {_ident(schema)}; SET LOCAL ROLE {_ident(role)}; "
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s",
            (int(timeout * 1000), schema),
        )
        if cur.fetchone()[0] == 0:
            raise errors.SecretResolutionError("Tenant schema required")
