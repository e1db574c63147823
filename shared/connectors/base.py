"""The interface every connector implements, and the one result shape they all return.

A connector is built once per secret (its decrypted config) in a worker process and reused:
it may pool connections, but it keeps no per-call state except the handle of each running
query, keyed by execution key, so that ``cancel`` can reach it from another thread.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from shared.dialects import Driver


class ColumnType(StrEnum):
    """The closed set of column types a result can report."""

    INTEGER = "integer"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    STRING = "string"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    INTERVAL = "interval"
    BINARY = "binary"
    JSON = "json"
    ARRAY = "array"
    UUID = "uuid"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType


@dataclass
class ResultSet:
    """Rows as tuples of raw driver values, in column order; ``shared.results`` makes them JSON."""

    columns: list[Column]
    rows: list[tuple[Any, ...]]
    truncated: bool = False
    elapsed_ms: float = 0.0
    # Extra structured output beside the rows (Elasticsearch aggregations); JSON-ready.
    extra: dict[str, Any] = field(default_factory=dict)


class Connector(ABC):
    """One data source, configured by a decrypted secret value."""

    driver: ClassVar[Driver]

    def __init__(self, config: Mapping[str, Any]):
        self.config = dict(config)
        self._running: dict[str, Any] = {}
        self._running_lock = threading.Lock()

    @abstractmethod
    def execute(self, rendered: str, *, max_rows: int, timeout: float, execution_key: str) -> ResultSet:
        """Run one validated read. Enforce read-only, ``timeout`` (seconds) and ``max_rows``
        in the driver; raise only ``shared.errors`` exceptions."""

    @abstractmethod
    def cancel(self, execution_key: str) -> bool:
        """Stop the running query of ``execution_key`` at the server, from another connection.
        Returns whether a running query was found."""

    @abstractmethod
    def test(self) -> None:
        """Open a connection and run a trivial read; raise ``ConnectorError`` on failure."""

    def close(self) -> None:
        """Release pooled connections."""

    # -- helpers for cancel: the handle of each running query, by execution key ------------

    @contextmanager
    def tracking(self, execution_key: str, handle: Any) -> Iterator[None]:
        with self._running_lock:
            self._running[execution_key] = handle
        try:
            yield
        finally:
            with self._running_lock:
                self._running.pop(execution_key, None)

    def running_handle(self, execution_key: str) -> Any | None:
        with self._running_lock:
            return self._running.get(execution_key)
