"""Declared query parameters (CONTRACT section 6).

A query may declare typed parameters. ``parse_declarations`` checks the declarations when a
query is created or updated; ``coerce_params`` checks the values of one execution before
anything is enqueued, so a wrong value is a 400 ``ValidationError`` naming the parameter and
never a failed execution.

The result of ``coerce_params`` is stored in Redis, so it stays JSON-serializable:

* ``integer`` -> ``int``;
* ``number`` -> ``int`` or ``float`` as given, or the caller's string when it was a string
  (``"0.10"`` stays ``"0.10"``: exact, no binary float on the way). The renderer reads such a
  string as a ``Decimal``. A ``Decimal`` passed from Python becomes its string form;
* ``boolean`` -> ``bool``; ``date`` / ``datetime`` -> the caller's ISO 8601 string, checked
  (the format is kept, so ``"2024-01-31 10:00:00"`` still suits ClickHouse);
* ``enum`` / ``identifier`` -> the matching allowed value; ``list`` -> a ``list`` of items.

Undeclared parameters pass through unchanged: the template decides how they may be used
(text inside quotes, numbers outside). Any string, declared or not and at any depth, must be
valid text (no unpaired surrogate, which JSON's "\ud800" can carry and UTF-8 cannot encode):
it is refused here rather than failing when the execution is stored.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from collections.abc import Mapping
from typing import Any

from shared.errors import ValidationError
from shared.templating import param_name_error, parse_number_text


class ParamType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    LIST = "list"
    IDENTIFIER = "identifier"


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter. ``values`` are the allowed values of an ``enum`` or the allowed
    names of an ``identifier`` (or of the items of a ``list`` of either); ``default`` is
    already coerced (a list default is a tuple, so the spec stays hashable)."""

    name: str
    type: ParamType
    required: bool = False
    default: Any = None
    values: tuple | None = None
    item_type: ParamType | None = None

    def item_spec(self) -> ParamSpec:
        """The spec every item of a ``list`` parameter is checked against."""
        assert self.item_type is not None
        return ParamSpec(name=self.name, type=self.item_type, values=self.values)

    def to_dict(self) -> dict[str, Any]:
        """The declaration as the API accepts and returns it."""
        data: dict[str, Any] = {"name": self.name, "type": str(self.type), "required": self.required}
        if self.default is not None:
            data["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        if self.values is not None:
            data["values"] = list(self.values)
        if self.item_type is not None:
            data["item_type"] = str(self.item_type)
        return data


_FIELDS = frozenset({"name", "type", "required", "default", "values", "item_type"})
_WITH_VALUES = frozenset({ParamType.ENUM, ParamType.IDENTIFIER})
_MAX_VALUES = 1000
_MAX_IDENTIFIER_CHARS = 255
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,30}")
# Integers beyond any database's range only cost memory and JSON time (and from 4300 digits
# Python cannot even print them); numbers keep to the same 100 characters as number text.
_MAX_INTEGER = 10**100
_MAX_DEPTH = 32
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Python's fromisoformat alone also takes "20240131" or week dates; the API promises
# YYYY-MM-DD[(T| )HH:MM[:SS[.ffffff]]][Z|+HH:MM].
_DATETIME_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)


class _Invalid(Exception):
    """A value does not match its declaration (the message is safe to show)."""


def parse_declarations(raw: list[dict] | None) -> dict[str, ParamSpec]:
    """Check the ``parameters`` of a query; return the specs by name, in declaration order."""
    if raw is None:
        return {}
    if not isinstance(raw, (list, tuple)):
        raise ValidationError(
            "Invalid parameter declarations",
            details={"parameters": ["Must be a list of parameter declarations"]},
        )
    errors: dict[str, list[str]] = {}
    specs: dict[str, ParamSpec] = {}
    for index, item in enumerate(raw):
        prefix = f"parameters.{index}"
        if not isinstance(item, Mapping):
            errors[prefix] = ["Must be an object"]
            continue
        item_errors: dict[str, str] = {}
        spec = _parse_declaration(item, item_errors)
        if spec is not None and spec.name in specs:
            item_errors["name"] = f"Duplicate parameter name '{spec.name}'"
        for field, message in item_errors.items():
            errors[f"{prefix}.{field}"] = [message]
        if spec is not None and not item_errors:
            specs[spec.name] = spec
    if errors:
        raise ValidationError("Invalid parameter declarations", details=errors)
    return specs


def _parse_declaration(item: Mapping[str, Any], errors: dict[str, str]) -> ParamSpec | None:
    for field in item:
        if field not in _FIELDS:
            errors[str(field)] = "Unknown field"

    name = item.get("name")
    name_error = param_name_error(name)
    if name_error is not None:
        errors["name"] = name_error

    type_ = _param_type(item.get("type"), errors, "type")
    item_type = None
    if item.get("item_type") is not None:
        if type_ is not ParamType.LIST:
            errors["item_type"] = "Only a list parameter has an item_type"
        else:
            item_type = _param_type(item.get("item_type"), errors, "item_type")
            if item_type is ParamType.LIST:
                errors["item_type"] = "A list cannot contain lists"
                item_type = None
    elif type_ is ParamType.LIST:
        errors["item_type"] = "A list parameter needs an item_type"

    required = item.get("required", False)
    if not isinstance(required, bool):
        errors["required"] = "Must be true or false"

    value_type = item_type if type_ is ParamType.LIST else type_
    values = _parse_values(item.get("values"), value_type, errors)

    if errors or type_ is None:
        return None
    spec = ParamSpec(name=name, type=type_, required=required, values=values, item_type=item_type)
    default = item.get("default")
    if default is None:
        return spec
    try:
        coerced = _coerce(spec, default)
    except _Invalid as exc:
        errors["default"] = str(exc)
        return None
    if isinstance(coerced, list):
        coerced = tuple(coerced)
    return ParamSpec(
        name=name, type=type_, required=required, default=coerced, values=values, item_type=item_type
    )


def _param_type(raw: Any, errors: dict[str, str], field: str) -> ParamType | None:
    try:
        return ParamType(raw)
    except ValueError:
        errors[field] = "Must be one of: " + ", ".join(t.value for t in ParamType)
        return None


def _parse_values(raw: Any, value_type: ParamType | None, errors: dict[str, str]) -> tuple | None:
    if value_type not in _WITH_VALUES:
        if raw is not None:
            errors["values"] = "Only enum and identifier parameters (or lists of them) have values"
        return None
    if not isinstance(raw, (list, tuple)) or not raw:
        errors["values"] = f"An {value_type} parameter needs a non-empty list of values"
        return None
    if len(raw) > _MAX_VALUES:
        errors["values"] = f"At most {_MAX_VALUES} values"
        return None
    seen: set[tuple[type, Any]] = set()
    for value in raw:
        if value_type is ParamType.IDENTIFIER:
            if not isinstance(value, str) or not value or "\x00" in value:
                errors["values"] = "Identifiers must be non-empty strings"
                return None
            if len(value) > _MAX_IDENTIFIER_CHARS:
                errors["values"] = f"Identifiers have at most {_MAX_IDENTIFIER_CHARS} characters"
                return None
        elif not _is_enum_value(value):
            errors["values"] = "Enum values must be strings, numbers or booleans"
            return None
        key = (type(value), value)
        if key in seen:
            errors["values"] = "Values must be unique"
            return None
        seen.add(key)
    return tuple(raw)


def _is_enum_value(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and _text_error(value, 0) is None
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):  # the API reads JSON numbers with a fraction as Decimal
        return value.is_finite()
    return isinstance(value, (bool, int))


def coerce_params(params: Mapping[str, Any] | None, declarations: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Check parameter values against their declarations; return the values to enqueue.

    A declared parameter given as ``null`` counts as not given. Raises ``ValidationError``
    with ``details={"params.<name>": [...]}`` for every bad value.
    """
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ValidationError("Invalid parameters", details={"params": ["Must be an object"]})
    declarations = declarations or {}
    errors: dict[str, list[str]] = {}
    result: dict[str, Any] = {}
    for name, value in params.items():
        name_error = param_name_error(name)
        if name_error is not None:
            errors[f"params.{name}"] = [name_error]
            continue
        text_error = _text_error(value, 0)
        if text_error is not None:
            errors[f"params.{name}"] = [text_error]
            continue
        spec = declarations.get(name)
        if spec is None:
            result[name] = value
        elif value is not None:
            try:
                result[name] = _coerce(spec, value)
            except _Invalid as exc:
                errors[f"params.{name}"] = [str(exc)]
    for name, spec in declarations.items():
        if name in result or f"params.{name}" in errors:
            continue
        if spec.default is not None:
            result[name] = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        elif spec.required:
            errors[f"params.{name}"] = ["Missing required parameter"]
    if errors:
        field, messages = next(iter(errors.items()))
        raise ValidationError(
            f"Invalid parameter '{field.removeprefix('params.')}': {messages[0]}", details=errors
        )
    return result


def _text_error(value: Any, depth: int) -> str | None:
    """Why a parameter value holds text that cannot be sent anywhere, or None."""
    if depth > _MAX_DEPTH:
        return "Nested too deeply"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "Must be valid text (no unpaired surrogate)"
        return None
    if isinstance(value, Mapping):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        return None
    for item in items:
        error = _text_error(item, depth + 1)
        if error is not None:
            return error
    return None


def _coerce(spec: ParamSpec, value: Any) -> Any:
    kind = spec.type
    if kind is ParamType.TEXT:
        if not isinstance(value, str):
            raise _Invalid("Must be a string")
        text_error = _text_error(value, 0)
        if text_error is not None:
            raise _Invalid(text_error)
        if "\x00" in value:
            raise _Invalid("Must not contain NUL characters")
        return str(value)
    if kind is ParamType.INTEGER:
        return _coerce_integer(value)
    if kind is ParamType.NUMBER:
        return _coerce_number(value)
    if kind is ParamType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise _Invalid("Must be true or false")
    if kind is ParamType.DATE:
        return _coerce_date(value)
    if kind is ParamType.DATETIME:
        return _coerce_datetime(value)
    if kind is ParamType.ENUM:
        return _coerce_enum(spec, value)
    if kind is ParamType.IDENTIFIER:
        if isinstance(value, str) and value in (spec.values or ()):
            return str(value)
        raise _Invalid("Must be one of: " + _shown(spec.values))
    if kind is ParamType.LIST:
        if not isinstance(value, (list, tuple)):
            raise _Invalid("Must be a list")
        item_spec = spec.item_spec()
        items = []
        for position, item in enumerate(value):
            if item is None:
                raise _Invalid(f"Item {position}: must not be null")
            try:
                items.append(_coerce(item_spec, item))
            except _Invalid as exc:
                raise _Invalid(f"Item {position}: {exc}") from None
        return items
    raise _Invalid("Unsupported parameter type")


def _coerce_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise _Invalid("Must be an integer")
    if isinstance(value, int):
        result = int(value)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        result = int(value)
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        if value.adjusted() >= 100:  # int() of Decimal("1E+999999") would build a huge int
            raise _Invalid("Must be an integer of at most 100 digits")
        result = int(value)
    elif isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        result = int(value)
    else:
        raise _Invalid("Must be an integer")
    if abs(result) >= _MAX_INTEGER:
        raise _Invalid("Must be an integer of at most 100 digits")
    return result


def _coerce_number(value: Any) -> int | float | str:
    if isinstance(value, bool):
        raise _Invalid("Must be a number")
    if isinstance(value, int):
        if abs(value) >= _MAX_INTEGER:
            raise _Invalid("Must be a number of at most 100 digits")
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise _Invalid("Must be a finite number")
    if isinstance(value, Decimal):
        if value.is_finite() and len(str(value)) <= 100:
            return str(value)
        raise _Invalid("Must be a finite number of at most 100 characters")
    if isinstance(value, str) and parse_number_text(value) is not None:
        return str(value)
    raise _Invalid("Must be a number")


def _coerce_date(value: Any) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return str(value)
    raise _Invalid("Must be a date (YYYY-MM-DD)")


def _coerce_datetime(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and _DATETIME_TEXT.fullmatch(value):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return str(value)
    raise _Invalid("Must be a date-time (ISO 8601, e.g. 2024-01-31T10:00:00Z)")


def _coerce_enum(spec: ParamSpec, value: Any) -> Any:
    for allowed in spec.values or ():
        if type(value) is type(allowed) and value == allowed:
            return allowed
        # 1.5 may be a float on one side and a Decimal on the other (the API parses JSON with
        # Decimals, the stored declaration comes back as floats): numbers compare by value.
        if _is_number(value) and _is_number(allowed) and _same_number(value, allowed):
            return allowed
        # Query strings carry "10" for an enum of numbers; compare the canonical text.
        if isinstance(value, str) and not isinstance(allowed, str) and value == _enum_text(allowed):
            return allowed
    raise _Invalid("Must be one of: " + _shown(spec.values))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _same_number(a: int | float | Decimal, b: int | float | Decimal) -> bool:
    def exact(x: int | float | Decimal) -> Decimal:
        return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)

    try:
        return exact(a) == exact(b)
    except (ValueError, ArithmeticError):
        return False


def _enum_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _shown(values: tuple | None, limit: int = 10) -> str:
    shown = [_enum_text(v) for v in (values or ())[:limit]]
    more = len(values or ()) - limit
    return ", ".join(shown) + (f" (and {more} more)" if more > 0 else "")
