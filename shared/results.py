"""From a connector's ResultSet to the JSON the API returns (CONTRACT section 7), with every
secret redacted before anything is stored."""
from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import simplejson

from shared.connectors.base import ResultSet

REDACTED = "[REDACTED]"
# Secrets shorter than this are not redacted: replacing every "1" or "on" would destroy
# results and protect nothing.
MIN_REDACT_LENGTH = 4


def json_value(value: Any) -> Any:
    """A raw driver value as JSON: exact decimals, ISO dates, base64 bytes, nested arrays/maps."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN/Infinity are not JSON
    if isinstance(value, Decimal):
        return value if value.is_finite() else str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _iso_duration(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_value(v) for v in value]
    return str(value)


def _iso_duration(delta: dt.timedelta) -> str:
    sign = "-" if delta < dt.timedelta(0) else ""
    delta = abs(delta)
    seconds = delta.seconds + delta.microseconds / 1_000_000
    text = f"{sign}P{delta.days}DT{seconds:g}S" if delta.days else f"{sign}PT{seconds:g}S"
    return text


def unique_names(names: Iterable[str]) -> list[str]:
    """``id, id, id_2`` -> ``id, id_2, id_2_2``: duplicates get the first free ``_N`` suffix."""
    seen: set[str] = set()
    out = []
    for name in names:
        name = str(name) if name not in (None, "") else "column"
        candidate, n = name, 2
        while candidate in seen:
            candidate = f"{name}_{n}"
            n += 1
        seen.add(candidate)
        out.append(candidate)
    return out


class Redactor:
    """Removes secret strings (and their obvious transforms) from anything leaving the worker."""

    def __init__(self, secrets: Iterable[str]):
        variants: set[str] = set()
        for secret in secrets:
            if not isinstance(secret, str) or len(secret) < MIN_REDACT_LENGTH:
                continue
            variants.update({secret, secret[::-1], secret.upper(), secret.lower()})
        # Longest first so that a secret containing another is replaced whole.
        self._secrets = sorted(variants, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def value(self, value: Any) -> Any:
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.text(k): self.value(v) for k, v in value.items()}
        return value


def result_payload(result: ResultSet, redactor: Redactor, *, duration_ms: int) -> dict[str, Any]:
    names = unique_names(redactor.text(c.name) for c in result.columns)
    rows = [
        {name: redactor.value(json_value(v)) for name, v in zip(names, row, strict=False)} for row in result.rows
    ]
    payload: dict[str, Any] = {
        "columns": [{"name": name, "type": c.type.value} for name, c in zip(names, result.columns, strict=True)],
        "data": rows,
        "total": len(rows),
        "truncated": result.truncated,
        "duration_ms": duration_ms,
    }
    if result.extra:
        payload.update(redactor.value(json_value(result.extra)))
    return payload


def dumps(payload: Any) -> str:
    return simplejson.dumps(payload, use_decimal=True, ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> Any:
    return simplejson.loads(text, use_decimal=True)
