from __future__ import annotations

from marshmallow import Schema, fields, validate


class ExecuteSchema(Schema):
    params = fields.Dict(keys=fields.String(), load_default=dict)
    wait = fields.Float(allow_none=True, validate=validate.Range(min=0), metadata={"description": "seconds; 0 returns at once"})
    max_rows = fields.Integer(allow_none=True, validate=validate.Range(min=1))


class WaitArgsSchema(Schema):
    wait = fields.Float(validate=validate.Range(min=0))


class ColumnSchema(Schema):
    name = fields.String()
    type = fields.String()


class ExecutionResultSchema(Schema):
    """Documentation of an execution body: a result, a failure, or pending."""

    status = fields.String(metadata={"description": "success | error | pending"})
    message = fields.String()
    execution_key = fields.String()
    state = fields.String(metadata={"description": "queued | running | succeeded | failed | cancelled"})
    data = fields.List(fields.Dict())
    total = fields.Integer()
    columns = fields.List(fields.Nested(ColumnSchema))
    truncated = fields.Boolean()
    duration_ms = fields.Integer()
    code = fields.String()
    poll_url = fields.String()
