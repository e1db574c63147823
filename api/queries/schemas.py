from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.envelope import PageArgsSchema

_name = validate.Length(min=1, max=200)


def _effective_timeout(query) -> int:
    from api.context import services

    cap = services().settings.query_timeout
    return min(query.timeout_seconds or cap, cap)


class QuerySchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    slug = fields.String(dump_only=True)
    description = fields.String(dump_only=True)
    connection_type = fields.String(dump_only=True)
    secret_key = fields.String(dump_only=True, allow_none=True)
    driver = fields.String(dump_only=True)
    query_text = fields.String(dump_only=True)
    tags = fields.List(fields.String(), dump_only=True)
    # The effective limit: a query saved without one follows ANALYTICS_QUERY_TIMEOUT (and a
    # stored value never exceeds the current cap).
    timeout_seconds = fields.Function(_effective_timeout, dump_only=True)
    parameters = fields.List(fields.Dict(), dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class QueryWriteSchema(Schema):
    """Fields a client may set; on create ``name`` and ``query_text`` are required."""

    name = fields.String(validate=_name)
    slug = fields.String(validate=validate.Length(min=1, max=120))
    description = fields.String(validate=validate.Length(max=5000))
    connection_type = fields.String(validate=validate.OneOf(["external", "internal"]))
    secret_key = fields.String(allow_none=True, validate=validate.Length(max=100))
    query_text = fields.String(validate=validate.Length(min=1, max=100_000))
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=100)), validate=validate.Length(max=50))
    # strict: 1.5 or "30" is a wrong type, not silently 1 or 30.
    timeout_seconds = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1))
    parameters = fields.List(fields.Dict(), validate=validate.Length(max=100))


class QueryCreateSchema(QueryWriteSchema):
    name = fields.String(required=True, validate=_name)
    query_text = fields.String(required=True, validate=validate.Length(min=1, max=100_000))


class QueryListArgsSchema(PageArgsSchema):
    tag = fields.String()
    search = fields.String(validate=validate.Length(max=200))
