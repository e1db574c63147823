"""JSON that keeps decimals exact (a NUMERIC(38,10) value must round-trip)."""
from __future__ import annotations

import re
from typing import Any

import simplejson
from flask.json.provider import DefaultJSONProvider

_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class DecimalJSONProvider(DefaultJSONProvider):
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.pop("sort_keys", None)
        text = simplejson.dumps(obj, use_decimal=True, ensure_ascii=False, **kwargs)
        if _LONE_SURROGATE.search(text):
            # Half a surrogate pair (a client's "\ud800" echoed in an error, a data source's
            # JSON) has no UTF-8 form: escape the document rather than fail the response.
            text = simplejson.dumps(obj, use_decimal=True, ensure_ascii=True, **kwargs)
        return text

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return simplejson.loads(s, use_decimal=True, object_pairs_hook=_no_duplicate_keys, **kwargs)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A body with the same key twice is ambiguous; refuse it rather than silently keep one.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"Duplicate key in JSON object: {key!r}")
        out[key] = value
    return out
