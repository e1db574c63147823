"""Read-only validation of rendered queries, one module per family of dialects.

Pure functions, no I/O: the worker calls this on the rendered query before the connector runs
it, and the API on a template at create/update time for early feedback. It is one of two layers
(CONTRACT section 9): the database's read-only session is the other.
"""
from __future__ import annotations

from shared.dialects import Dialect
from shared.errors import QueryValidationError
from shared.validation.clickhouse import validate_clickhouse
from shared.validation.elasticsearch import validate_elasticsearch
from shared.validation.sql import validate_sql

__all__ = ["validate_query"]

_SQL_DIALECTS = frozenset({Dialect.POSTGRES, Dialect.INTERNAL, Dialect.MYSQL, Dialect.REDSHIFT})


def validate_query(text: str, dialect: Dialect, *, tenant_schema: str | None = None) -> None:
    """Raise QueryValidationError unless `text` is exactly one read-only statement for `dialect`.

    ``tenant_schema`` is required for ``Dialect.INTERNAL`` (the caller's own schema): internal
    queries follow the PostgreSQL rules plus the tenant-isolation rules. Elasticsearch gets the
    rendered JSON search body.
    """
    dialect = Dialect(dialect)
    if not isinstance(text, str):
        raise QueryValidationError("Query text must be a string", details={"reason": "type"})
    if not text.strip():
        raise QueryValidationError("Query is empty", details={"reason": "empty"})
    if dialect in _SQL_DIALECTS:
        validate_sql(text, dialect, tenant_schema=tenant_schema)
    elif dialect is Dialect.CLICKHOUSE:
        validate_clickhouse(text)
    elif dialect is Dialect.ELASTICSEARCH:
        validate_elasticsearch(text)
    else:  # pragma: no cover - Dialect is a closed set
        raise ValueError(f"unsupported dialect {dialect!r}")
