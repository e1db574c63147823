"""The secret types every tenant is seeded with, declared once as field tables.

One declaration drives the JSON schema shown by ``GET /secrets/types/``, the check of a
value on create/update (with defaults applied) and what responses show (field names only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, fields
from marshmallow import ValidationError as MarshmallowValidationError

from shared.dialects import Driver
from shared.errors import ValidationError

_JSON_TYPES = {"string": fields.String, "integer": fields.Integer, "boolean": fields.Boolean, "object": fields.Dict}


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # JSON schema type: string | integer | boolean | object
    required: bool = False
    default: Any = None
    description: str = ""


@dataclass(frozen=True)
class SecretTypeSpec:
    slug: str
    name: str
    driver: Driver | None
    fields: tuple[Field, ...] | None  # None: any JSON value

    def json_schema(self) -> dict[str, Any]:
        if self.fields is None:
            return {"description": "Any JSON value, for {{ secret.<key> }} references"}
        properties: dict[str, Any] = {}
        for f in self.fields:
            prop: dict[str, Any] = {"type": f.type}
            if f.default is not None:
                prop["default"] = f.default
            if f.description:
                prop["description"] = f.description
            if f.type == "integer" and f.name.endswith("port"):
                prop.update(minimum=1, maximum=65535)
            properties[f.name] = prop
        return {
            "type": "object",
            "properties": properties,
            "required": [f.name for f in self.fields if f.required],
            "additionalProperties": False,
        }


_CONNECTION = (
    Field("host", "string", required=True),
    Field("user", "string", required=True),
    Field("password", "string", default=""),
    Field("database", "string", required=True),
)

SEED_TYPES: tuple[SecretTypeSpec, ...] = (
    SecretTypeSpec(
        "analytics-postgres",
        "PostgreSQL",
        Driver.POSTGRES,
        _CONNECTION
        + (
            Field("port", "integer", default=5432),
            Field("sslmode", "string", default="prefer", description="libpq sslmode"),
            Field("connect_timeout", "integer", default=10, description="seconds"),
        ),
    ),
    SecretTypeSpec(
        "analytics-mysql",
        "MySQL",
        Driver.MYSQL,
        _CONNECTION
        + (
            Field("port", "integer", default=3306),
            Field("ssl", "boolean", default=False),
            Field("connect_timeout", "integer", default=10, description="seconds"),
        ),
    ),
    SecretTypeSpec(
        "analytics-redshift",
        "Amazon Redshift",
        Driver.REDSHIFT,
        _CONNECTION
        + (
            Field("port", "integer", default=5439),
            Field("ssl", "boolean", default=True),
            Field("connect_timeout", "integer", default=10, description="seconds"),
        ),
    ),
    SecretTypeSpec(
        "analytics-elasticsearch",
        "Elasticsearch",
        Driver.ELASTICSEARCH,
        (
            Field("host", "string", required=True),
            Field("port", "integer", default=9200),
            Field("scheme", "string", default="https", description="http or https"),
            Field("index", "string", required=True, description="index name or pattern searched"),
            Field("username", "string"),
            Field("password", "string"),
            Field("api_key", "string"),
            Field("headers", "object", description="extra HTTP headers (custom auth)"),
            Field("verify_certs", "boolean", default=True),
            Field("max_result_rows", "integer", default=10000),
        ),
    ),
    SecretTypeSpec(
        "analytics-clickhouse",
        "ClickHouse",
        Driver.CLICKHOUSE,
        (
            Field("host", "string", required=True),
            Field("port", "integer", description="default 8443 when secure, 8123 otherwise"),
            Field("username", "string", default="default"),
            Field("password", "string", default=""),
            Field("database", "string", default="default"),
            Field("secure", "boolean", default=True),
            Field("verify", "boolean", default=True),
        ),
    ),
    SecretTypeSpec("generic", "Generic value", None, None),
)


def check_secret_value(json_schema: dict[str, Any], value: Any) -> Any:
    """Check ``value`` against a stored type schema; return it with defaults applied.

    Raises ValidationError with field errors keyed ``value.<field>``.
    """
    if json_schema.get("type") != "object":
        return value  # generic: any JSON value
    if not isinstance(value, dict):
        raise ValidationError("Invalid secret value", details={"value": ["Must be an object."]})
    schema = _marshmallow_schema(json_schema)
    try:
        loaded = schema.load(value)
    except MarshmallowValidationError as exc:
        errors = {f"value.{name}": msgs for name, msgs in exc.normalized_messages().items()}
        raise ValidationError("Invalid secret value", details=errors) from None
    for name, prop in json_schema.get("properties", {}).items():
        if name not in loaded and "default" in prop:
            loaded[name] = prop["default"]
    return loaded


def _not_blank(value: str) -> None:
    # marshmallow 4 ignores a validator's return value: it must raise.
    if not value.strip():
        raise MarshmallowValidationError("Must not be empty.")


def _marshmallow_schema(json_schema: dict[str, Any]) -> Schema:
    required = set(json_schema.get("required", []))
    declared: dict[str, fields.Field] = {}
    for name, prop in json_schema.get("properties", {}).items():
        field_cls = _JSON_TYPES.get(prop.get("type"), fields.Raw)
        kwargs: dict[str, Any] = {"required": name in required}
        if field_cls is fields.Integer:
            kwargs["strict"] = True
        if name in required and field_cls is fields.String:
            kwargs["validate"] = _not_blank
        if "minimum" in prop:
            from marshmallow.validate import Range

            kwargs["validate"] = Range(min=prop["minimum"], max=prop.get("maximum"))
        declared[name] = field_cls(**kwargs)
    unknown = EXCLUDE if json_schema.get("additionalProperties", True) else RAISE
    return Schema.from_dict(declared)(unknown=unknown)
