"""A flask-smorest Blueprint whose JSON bodies keep decimals exact and refuse duplicate keys."""
from __future__ import annotations

from typing import Any, NoReturn

import flask
import flask_smorest
import simplejson
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from api.json import _no_duplicate_keys
from shared.errors import ValidationError


class Parser(FlaskParser):
    DEFAULT_UNKNOWN_BY_LOCATION = {"json": None, "query": None, "querystring": None, "path": None}

    def _raw_load_json(self, req: flask.Request) -> Any:
        # A bad body is reported here, not raised as JSONDecodeError: webargs takes a
        # JSONDecodeError without a document for "no body" and would silently ignore it.
        raw = req.get_data(cache=True)
        if not raw.strip():
            return core.missing
        if not is_json_request(req):
            # A body that is not declared as JSON is refused rather than ignored.
            _malformed("Body must be JSON (Content-Type: application/json)")
        try:
            data = simplejson.loads(raw.decode("utf-8"), use_decimal=True, object_pairs_hook=_no_duplicate_keys)
            nul = _find_nul(data)
        except (ValueError, UnicodeDecodeError) as exc:
            _malformed(str(exc).split(":")[0][:200])
        except RecursionError:
            _malformed("JSON nested too deeply")
        if nul is not None:
            # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
            raise ValidationError("Invalid request", details={nul or "json": ["Must not contain NUL characters."]})
        return data


def _find_nul(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) holding a NUL character, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        if "\x00" in str(key):
            return where
        found = _find_nul(item, where)
        if found is not None:
            return found
    return None


def _malformed(message: str) -> NoReturn:
    raise ValidationError("Malformed JSON body", details={"json": [message]})


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()
