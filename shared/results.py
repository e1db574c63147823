"""From a connector's ResultSet to the JSON the API returns (CONTRACT section 7), with every
secret redacted before anything is stored."""
from __future__ import annotations

import base64
import datetime as dt
import json
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
    """Removes secret values from anything leaving the worker.

    Rendering only lets a secret reach the database whole (shared.templating, "secret use"),
    so what can come back is the value itself, as text or as a number, or quoted in an error
    message. Three layers, from exact to broad:

    * ``value``/``text`` (rows, JSON metadata): every occurrence of a secret, of its reversed,
      upper-, lower- and swapped-case forms, and of the forms it takes inside a query literal
      (quotes and backslashes escaped per dialect, JSON escapes) -- a row can hold query text
      (``current_query()``); a number equal to a numeric secret ("0042", "0x2A", "4_2" all
      read as 42 to a database's integer cast).
    * ``message`` (error messages, column names): the above, plus every run of at least
      FRAGMENT_LENGTH characters that also occurs in a long secret (FRAGMENT_SOURCE_LENGTH).
      Databases quote queries in errors and cut them short (MySQL's ``near '...'`` keeps 80
      characters), which leaves a piece of a long secret. Short secrets are quoted whole or
      not at all, and their pieces would be common words ("disable" is an sslmode).
    """

    def __init__(self, secrets: Iterable[str]):
        bases: set[str] = set()
        numbers: set[Decimal] = set()
        for secret in secrets:
            if not isinstance(secret, str) or len(secret) < MIN_REDACT_LENGTH:
                continue
            bases.update(_quoted_forms(secret))
            number = _number_of(secret)
            if number is not None:
                numbers.add(number)
        variants: set[str] = set()
        for base in bases:
            for form in (base, base[::-1]):
                variants.update({form, form.upper(), form.lower(), form.swapcase()})
        # Longest first so that a secret containing another is replaced whole.
        self._secrets = sorted((v for v in variants if len(v) >= MIN_REDACT_LENGTH), key=len, reverse=True)
        self._numbers = frozenset(numbers)
        self._fragments = frozenset(
            v[i : i + FRAGMENT_LENGTH]
            for v in self._secrets
            if len(v) >= FRAGMENT_SOURCE_LENGTH
            for i in range(len(v) - FRAGMENT_LENGTH + 1)
        )

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def message(self, value: str) -> str:
        """An error message or a column name: also every fragment of a secret."""
        value = self.text(value)
        if not self._fragments or len(value) < FRAGMENT_LENGTH:
            return value
        covered = [False] * len(value)
        for start in range(len(value) - FRAGMENT_LENGTH + 1):
            if value[start : start + FRAGMENT_LENGTH] in self._fragments:
                covered[start : start + FRAGMENT_LENGTH] = [True] * FRAGMENT_LENGTH
        if not any(covered):
            return value
        out: list[str] = []
        for position, char in enumerate(value):
            if not covered[position]:
                out.append(char)
            elif position == 0 or not covered[position - 1]:
                out.append(REDACTED)
        return "".join(out)

    def value(self, value: Any) -> Any:
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            return REDACTED if self._is_secret_number(value) else value
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.text(k): self.value(v) for k, v in value.items()}
        return value

    def messages(self, value: Any) -> Any:
        """``message`` applied through a JSON structure (error details)."""
        if isinstance(value, str):
            return self.message(value)
        if isinstance(value, list):
            return [self.messages(v) for v in value]
        if isinstance(value, dict):
            return {self.message(str(k)): self.messages(v) for k, v in value.items()}
        return self.value(value)

    def _is_secret_number(self, value: int | float | Decimal) -> bool:
        if not self._numbers:
            return False
        try:
            number = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
        except (ValueError, ArithmeticError):
            return False
        return number.is_finite() and number in self._numbers


# Pieces of long secrets removed from messages: at least this long, from secrets at least
# FRAGMENT_SOURCE_LENGTH long (shorter pieces, or pieces of short values, are common words).
FRAGMENT_LENGTH = 8
FRAGMENT_SOURCE_LENGTH = 16


def _quoted_forms(secret: str) -> set[str]:
    """The secret as it appears inside the literals of a rendered query (shared.templating
    escapes it per dialect), which is how a database error or query text quotes it."""
    return {
        secret,
        secret.replace("'", "''"),
        secret.replace("\\", "\\\\").replace("'", "''"),
        secret.replace("\\", "\\\\").replace("'", "\\'"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1],
    }


def _number_of(secret: str) -> Decimal | None:
    """The number a database could read from the secret: decimal, or integer with a 0x/0o/0b
    prefix or digit separators (PostgreSQL 16 integer input), surrounding spaces ignored."""
    text = secret.strip()
    if not text or len(text) > 100:
        return None
    try:
        return Decimal(int(text, 0))
    except ValueError:
        pass
    try:
        number = Decimal(text)
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


def result_payload(result: ResultSet, redactor: Redactor, *, duration_ms: int) -> dict[str, Any]:
    names = unique_names(redactor.message(c.name) for c in result.columns)
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
