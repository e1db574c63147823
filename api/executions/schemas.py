from __future__ import annotations

import math
from decimal import Decimal

from marshmallow import Schema, fields, validate


class WholeNumber(fields.Integer):
    """An integer that may come as text ("500", from a query string) but is never cut down:
    marshmallow's non-strict Integer would silently take 5.5 as 5."""

    def _validated(self, value):
        if isinstance(value, float):
            whole = math.isfinite(value) and value.is_integer()
        elif isinstance(value, Decimal):  # JSON numbers arrive as Decimal (use_decimal)
            whole = value.is_finite() and value == value.to_integral_value()
        else:
            whole = True
        if not whole:
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class ExecuteSchema(Schema):
    params = fields.Dict(keys=fields.String(), load_default=dict)
    wait = fields.Float(allow_none=True, validate=validate.Range(min=0), metadata={"description": "seconds; 0 returns at once"})
    max_rows = WholeNumber(allow_none=True, validate=validate.Range(min=1))


class ExecuteArgsSchema(Schema):
    """``?wait=`` and ``?max_rows=`` on the execute URL, for clients that put them there;
    the body's values win."""

    wait = fields.Float(validate=validate.Range(min=0), metadata={"description": "seconds; 0 returns at once"})
    max_rows = WholeNumber(validate=validate.Range(min=1))


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
