"""Closed sets shared by the API, the worker and the validators."""
from __future__ import annotations

from enum import StrEnum


class Driver(StrEnum):
    """A connector; also the suffix of its Celery queue."""

    INTERNAL = "internal"
    POSTGRES = "postgres"
    MYSQL = "mysql"
    REDSHIFT = "redshift"
    ELASTICSEARCH = "elasticsearch"
    CLICKHOUSE = "clickhouse"


class Dialect(StrEnum):
    """How a rendered query is validated and how template values are quoted."""

    POSTGRES = "postgres"
    INTERNAL = "internal"  # PostgreSQL plus the tenant-isolation rules
    MYSQL = "mysql"
    REDSHIFT = "redshift"
    CLICKHOUSE = "clickhouse"
    ELASTICSEARCH = "elasticsearch"


DIALECT_OF_DRIVER: dict[Driver, Dialect] = {
    Driver.INTERNAL: Dialect.INTERNAL,
    Driver.POSTGRES: Dialect.POSTGRES,
    Driver.MYSQL: Dialect.MYSQL,
    Driver.REDSHIFT: Dialect.REDSHIFT,
    Driver.ELASTICSEARCH: Dialect.ELASTICSEARCH,
    Driver.CLICKHOUSE: Dialect.CLICKHOUSE,
}
