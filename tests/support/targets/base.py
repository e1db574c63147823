"""What the connector contract suite needs from each driver's test target."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.connectors.base import ColumnType, Connector
from shared.dialects import Driver


@dataclass
class ConnectorTarget:
    driver: Driver
    make: Callable[[dict[str, Any]], Connector]  # build a connector from a config
    config: dict[str, Any]  # a working config (what a decrypted secret would hold)
    bad_credentials: dict[str, Any]  # reachable server, wrong password
    unreachable: dict[str, Any]  # nothing listens there (e.g. 127.0.0.1, a closed port)
    typed_query: str  # exactly one row
    expected: dict[str, tuple[ColumnType, Any]]  # column -> (type, JSON value via shared.results.json_value)
    rows_query: Callable[[int], str]  # a query returning exactly n rows
    slow_query: str  # runs for minutes unless stopped
    write_query: str | None = None  # a write the database itself must refuse (validation bypassed)
    write_check: Callable[[], Any] | None = None  # state that must be equal before and after write_query
    is_running: Callable[[str], bool] | None = None  # does the server still run a query of this key/marker?
    supports_cancel: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
