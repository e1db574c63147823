"""A flask-smorest Blueprint whose JSON bodies keep decimals exact and refuse duplicate keys."""
from __future__ import annotations

import re
from typing import Any, NoReturn

import flask
import flask_smorest
import simplejson
from webargs import core
from werkzeug.exceptions import RequestEntityTooLarge
from webargs.flaskparser import FlaskParser, is_json_request

from api.json import _no_duplicate_keys
from shared.errors import ValidationError


class Parser(FlaskParser):
    DEFAULT_UNKNOWN_BY_LOCATION = {"json": None, "query": None, "querystring": None, "path": None}

    def _raw_load_json(self, req: flask.Request) -> Any:
        # A bad body is reported here, not raised as JSONDecodeError: webargs takes a
        # JSONDecodeError without a document for "no body" and would silently ignore it.
        raw = req.get_data(cache=True)
        _refuse_cut_body(req, raw)
        if not raw.strip():
            return core.missing
        if not is_json_request(req):
            # A body that is not declared as JSON is refused rather than ignored.
            _malformed("Body must be JSON (Content-Type: application/json)")
        try:
            data = simplejson.loads(raw.decode("utf-8"), use_decimal=True, object_pairs_hook=_no_duplicate_keys)
            bad = _find_bad_text(data)
        except (ValueError, UnicodeDecodeError) as exc:
            _malformed(str(exc).split(":")[0][:200])
        except RecursionError:
            _malformed("JSON nested too deeply")
        if bad is not None:
            # PostgreSQL text cannot hold these: refuse them here rather than fail in the database.
            where, problem = bad
            raise ValidationError("Invalid request", details={where or "json": [problem]})
        return data


def _refuse_cut_body(req: flask.Request, raw: bytes) -> None:
    """A body without Content-Length (chunked) is read up to MAX_CONTENT_LENGTH and then simply
    ends, as if that were all of it; if more follows, it is too large (413), not cut short
    into a different (or malformed) document."""
    limit = req.max_content_length
    if req.content_length is None and limit is not None and len(raw) >= limit:
        if req.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()


# JSON may spell half of a UTF-16 surrogate pair ("\ud800"); such a string has no UTF-8 form.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "Must not contain NUL characters."
    if _LONE_SURROGATE.search(text):
        return "Must be valid Unicode (no lone surrogates)."
    return None


def _find_bad_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """The dotted path of the first string (or key) that cannot be stored as text, and why."""
    if isinstance(value, str):
        problem = _text_problem(value)
        return (path, problem) if problem else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        problem = _text_problem(str(key))
        if problem:
            return where, problem
        found = _find_bad_text(item, where)
        if found is not None:
            return found
    return None


def _malformed(message: str) -> NoReturn:
    raise ValidationError("Malformed JSON body", details={"json": [message]})


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()
