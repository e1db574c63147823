"""The single table from errors to HTTP, and the one handler that renders every error.

Every error leaves the API in the envelope of CONTRACT section 4: never an HTML page,
never a stack trace, never a secret.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from shared import errors

logger = logging.getLogger(__name__)

HTTP_STATUS: dict[str, int] = {
    errors.ValidationError.code: 400,
    errors.QueryValidationError.code: 400,
    errors.SecretResolutionError.code: 400,
    errors.QueryExecutionError.code: 400,
    errors.AuthenticationError.code: 401,
    errors.NotFoundError.code: 404,
    errors.ConflictError.code: 409,
    errors.RateLimitedError.code: 429,
    errors.ConnectorError.code: 502,
    errors.QueryTimeoutError.code: 504,
    errors.ServiceUnavailableError.code: 503,
    errors.QueryCancelledError.code: 409,
    errors.InternalError.code: 500,
}

# Werkzeug's HTTP errors that can reach a client, as (code, message).
_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("ValidationError", "Invalid request"),
    401: ("AuthenticationError", "Authentication required"),
    404: ("NotFound", "Not found"),
    405: ("MethodNotAllowed", "Method not allowed"),
    413: ("ValidationError", "Request body too large"),
    415: ("ValidationError", "Unsupported media type: send application/json"),
    500: ("InternalError", "An internal error occurred"),
}


def status_of(code: str) -> int:
    return HTTP_STATUS.get(code, 500)


def error_body(code: str, message: str, details: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "code": code, "message": message}
    if details:
        field_errors = {k: v for k, v in details.items() if isinstance(v, list)}
        if field_errors:
            body["errors"] = field_errors
        other = {k: v for k, v in details.items() if not isinstance(v, list)}
        if other:
            body["details"] = other
    body.update(extra)
    return body


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(errors.AnalyticsError)
    def handle_analytics_error(exc: errors.AnalyticsError):
        response = jsonify(error_body(exc.code, exc.message, exc.details))
        response.status_code = status_of(exc.code)
        if isinstance(exc, errors.RateLimitedError):
            response.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, errors.AuthenticationError):
            response.headers["WWW-Authenticate"] = "Bearer"  # RFC 7235: a 401 names its scheme
        return response

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException):
        status = exc.code or 500
        if status == 422:
            # flask-smorest/webargs report schema errors as 422; the contract says 400.
            messages = (getattr(exc, "data", None) or {}).get("messages", {})
            return _json(400, error_body("ValidationError", "Invalid request", _flatten(messages)))
        if status == 400 and (getattr(exc, "data", None) or {}).get("messages"):
            messages = exc.data["messages"]
            return _json(400, error_body("ValidationError", "Invalid request", _flatten(messages)))
        code, message = _HTTP_ERRORS.get(status, ("InternalError" if status >= 500 else "HTTPError", exc.name))
        if status == 413:
            message = f"Request body too large (limit {app.config.get('MAX_CONTENT_LENGTH')} bytes)"
        response = _json(status, error_body(code, message))
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        logger.exception("Unhandled error")
        return _json(500, error_body("InternalError", "An internal error occurred"))


def _json(status: int, body: dict[str, Any]):
    response = jsonify(body)
    response.status_code = status
    return response


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn webargs' ``{"json": {"value": {"host": [...]}}}`` into ``{"value.host": [...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if not prefix and key in ("json", "query", "querystring", "form", "headers", "view_args", "path"):
                out.update(_flatten(value, prefix))
                continue
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                out[name] = value
            else:
                out.update(_flatten(value, name))
    elif isinstance(messages, list):
        out[prefix or "_schema"] = [str(m) for m in messages]
    else:
        out[prefix or "_schema"] = [str(messages)]
    return out
