from __future__ import annotations

from marshmallow import Schema, fields, validate


class SecretTypeSchema(Schema):
    slug = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    driver = fields.String(dump_only=True, allow_none=True)
    schema = fields.Dict(dump_only=True, metadata={"description": "JSON schema of the value"})


class SecretSchema(Schema):
    """A secret as responses show it: field names, never the value."""

    key = fields.String(dump_only=True)
    type_slug = fields.Function(lambda s: s.type.slug, dump_only=True)
    description = fields.String(dump_only=True)
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields", dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class SecretCreateSchema(Schema):
    key = fields.String(required=True, validate=validate.Length(min=1, max=100))
    type_slug = fields.String(required=True, validate=validate.Length(min=1, max=100))
    value = fields.Raw(required=True, allow_none=False)
    description = fields.String(load_default="", validate=validate.Length(max=2000))


class SecretUpdateSchema(Schema):
    type_slug = fields.String(validate=validate.Length(min=1, max=100))
    value = fields.Raw(allow_none=False)
    description = fields.String(validate=validate.Length(max=2000))
