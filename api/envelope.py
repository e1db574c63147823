"""Success envelopes (CONTRACT section 4) and the marshmallow schemas that document them."""
from __future__ import annotations

from functools import cache
from typing import Any

from marshmallow import Schema, fields, pre_load

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# A page past the end is simply empty; a larger number would overflow the database's OFFSET.
MAX_PAGE = 2**31 - 1


def ok(data: Any, message: str = "Success") -> dict[str, Any]:
    return {"status": "success", "message": message, "data": data}


def ok_list(items: list[Any], total: int) -> dict[str, Any]:
    return {"status": "success", "message": "Data retrieved successfully", "data": items, "total": total}


@cache
def envelope(schema: type[Schema], many: bool = False) -> type[Schema]:
    """An envelope schema around ``schema`` (one object, or a list with ``total``)."""
    attrs: dict[str, Any] = {
        "status": fields.String(),
        "message": fields.String(),
        "data": fields.Nested(schema, many=many),
    }
    if many:
        attrs["total"] = fields.Integer()
    name = f"{schema.__name__.removesuffix('Schema')}{'List' if many else ''}EnvelopeSchema"
    return type(name, (Schema,), attrs)


class PageArgsSchema(Schema):
    page = fields.Integer(load_default=1)
    page_size = fields.Integer(load_default=DEFAULT_PAGE_SIZE)

    @pre_load
    def clamp(self, data, **kwargs):
        # Limits above their maximum are clamped, not refused (CONTRACT section 4).
        data = dict(data)
        for name, low, high in (("page", 1, MAX_PAGE), ("page_size", 1, MAX_PAGE_SIZE)):
            raw = data.get(name)
            if raw in (None, ""):
                data.pop(name, None)
                continue
            try:
                value = int(raw)
            except (TypeError, ValueError):
                continue  # let the field report it
            value = max(low, value)
            data[name] = min(high, value)
        return data


def paginate(query_items: list[Any], page: int, page_size: int) -> list[Any]:
    start = (page - 1) * page_size
    return query_items[start : start + page_size]
