"""The one place domain errors become HTTP statuses, and the one error body every JSON answer uses."""

from __future__ import annotations

from http import HTTPStatus

from schedules.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    NotPermitted,
    SignInRefused,
    TooManyAttempts,
)

_STATUS = ((NotFound, 404), (Conflict, 409), (NotPermitted, 403), (InvalidInput, 422), (TooManyAttempts, 429))


def status_of(exc: DomainError) -> int:
    """The HTTP status that says what kind of refusal `exc` is."""
    if isinstance(exc, SignInRefused):
        return 403 if exc.no_longer_allowed else 401
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 422


def error_body(code: int, message: str, field: str = "") -> dict:
    """The one error shape every endpoint uses."""
    body = {"code": code, "status": HTTPStatus(code).phrase, "message": message}
    if field:
        body["errors"] = {"json": {field: [message]}}
    return body
