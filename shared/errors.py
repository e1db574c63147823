"""The one error hierarchy of the project.

Every error has a stable ``code`` (what clients branch on), a ``message`` that is safe to
show (no secrets, no driver internals beyond what the user wrote) and optional ``details``
(field-level messages or a position). The API maps codes to HTTP statuses in exactly one
table (``api/errors.py``); the worker stores ``code`` and ``message`` with the execution.
"""
from __future__ import annotations

from typing import Any


class AnalyticsError(Exception):
    code = "InternalError"
    default_message = "An internal error occurred"

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ValidationError(AnalyticsError):
    """A request field is missing, of the wrong type or out of range."""

    code = "ValidationError"
    default_message = "Invalid request"


class QueryValidationError(AnalyticsError):
    """The template does not render, the query does not parse, or it is not a plain read."""

    code = "QueryValidationError"
    default_message = "Query is not valid"


class SecretResolutionError(AnalyticsError):
    """Secret, secret type, datasource or tenant schema cannot be resolved."""

    code = "SecretResolutionError"
    default_message = "Secret not found"


class QueryExecutionError(AnalyticsError):
    """The database rejected or failed the query at run time."""

    code = "QueryExecutionError"
    default_message = "Query failed"


class AuthenticationError(AnalyticsError):
    code = "AuthenticationError"
    default_message = "Authentication required"


class NotFoundError(AnalyticsError):
    code = "NotFound"
    default_message = "Not found"


class ConflictError(AnalyticsError):
    code = "Conflict"
    default_message = "Conflict"


class RateLimitedError(AnalyticsError):
    code = "RateLimited"
    default_message = "Too many executions in progress"

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ConnectorError(AnalyticsError):
    """The data source cannot be reached or refuses the credentials."""

    code = "ConnectorError"
    default_message = "Could not connect to the data source"


class QueryTimeoutError(AnalyticsError):
    """The query ran past its time limit and was stopped at the database."""

    code = "QueryTimeoutError"
    default_message = "Query exceeded its time limit and was stopped"


class QueryCancelledError(AnalyticsError):
    """The execution was cancelled by a caller (never an HTTP error: a terminal state)."""

    code = "QueryCancelled"
    default_message = "Query was cancelled"


class WorkerLostError(AnalyticsError):
    """The worker running the execution died too many times. To clients this is an internal
    error (CONTRACT section 4: every 500 is ``InternalError``); the logs say which."""

    code = "InternalError"
    default_message = "The worker running this query stopped unexpectedly"


class ServiceUnavailableError(AnalyticsError):
    """A dependency of the service itself (the broker) is down; retrying later helps."""

    code = "ServiceUnavailable"
    default_message = "The execution queue is unavailable, try again shortly"


class InternalError(AnalyticsError):
    code = "InternalError"
    default_message = "An internal error occurred"
