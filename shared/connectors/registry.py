"""An explicit registry of connectors: driver -> "module:Class", imported on first use so a
driver package is loaded only in the processes that run that driver."""
from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from typing import Any

from shared.connectors.base import Connector
from shared.dialects import Driver
from shared.errors import SecretResolutionError

CONNECTORS: dict[Driver, str] = {
    Driver.INTERNAL: "shared.connectors.internal:InternalConnector",
    Driver.POSTGRES: "shared.connectors.postgres:PostgresConnector",
    Driver.MYSQL: "shared.connectors.mysql:MySQLConnector",
    Driver.REDSHIFT: "shared.connectors.redshift:RedshiftConnector",
    Driver.ELASTICSEARCH: "shared.connectors.elasticsearch:ElasticsearchConnector",
    Driver.CLICKHOUSE: "shared.connectors.clickhouse:ClickHouseConnector",
}


def is_supported(driver: str) -> bool:
    try:
        return Driver(driver) in CONNECTORS
    except ValueError:
        return False


def connector_class(driver: Driver | str) -> type[Connector]:
    if not is_supported(driver):
        raise SecretResolutionError("Driver not supported")
    module_name, _, class_name = CONNECTORS[Driver(driver)].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


class ConnectorCache:
    """Connectors of one worker process, one per (driver, secret fingerprint), so that the
    pools they hold are reused across executions of the same secret."""

    def __init__(self, max_size: int = 64):
        self._items: dict[tuple[str, str], Connector] = {}
        self._lock = threading.Lock()
        self._max_size = max_size

    def get(self, driver: Driver | str, fingerprint: str, config: Mapping[str, Any]) -> Connector:
        key = (str(driver), fingerprint)
        with self._lock:
            connector = self._items.get(key)
            if connector is None:
                if len(self._items) >= self._max_size:
                    _, oldest = self._items.popitem()
                    oldest.close()
                connector = connector_class(driver)(config)
                self._items[key] = connector
            return connector

    def close_all(self) -> None:
        with self._lock:
            for connector in self._items.values():
                connector.close()
            self._items.clear()
