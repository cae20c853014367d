"""Who is calling an API request: bearer tokens (staff or app) resolved once, role checks, scoped look-ups."""

from __future__ import annotations

from functools import wraps

from flask import g, request
from flask_smorest import abort

from backend.db import get_session
from backend.identity import scope
from backend.identity.app_tokens import AppTokenError, resolve_participant_token
from backend.identity.principal import Principal
from backend.identity.staff import staff_from_token
from schedules.dbtypes import utcnow
from schedules.models import Participant


def bearer_token() -> str | None:
    """The bearer token of this request, if any."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def current_principal() -> Principal:
    """The authenticated caller of this request, or 401 with the reason."""
    if "principal" in g:
        return g.principal
    token = bearer_token()
    if token is None:
        abort(401, message="missing bearer token: send 'Authorization: Bearer <token>'")
    session = get_session()
    now = utcnow()
    try:
        principal = resolve_participant_token(session, token, now)
    except AppTokenError as exc:
        abort(401, message=str(exc))
    if principal is None:
        staff, reason = staff_from_token(session, token, now=now)
        if staff is None:
            abort(401, message=reason)
        principal = Principal("staff", staff.id, staff.role, staff.site_id)
    g.principal = principal
    return principal


def require_staff(*roles: str, refusal: str = ""):
    """Decorator: the caller must be staff, in one of `roles` when given (403 otherwise, before the body is read)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_principal()
            if principal.kind != "staff":
                abort(403, message="this endpoint is for study staff")
            if roles and principal.role not in roles:
                abort(403, message=(refusal or "your role ({role}) may not do this").format(role=principal.role))
            return view(*args, **kwargs)

        return wrapper

    return decorate


def visible_participant(participant_id: int, principal: Principal | None = None) -> Participant:
    """The participant if the caller may see them; 404 otherwise (nothing revealed)."""
    participant = scope.visible_participant(get_session(), principal or current_principal(), participant_id)
    if participant is None:
        abort(404, message="no such participant")
    return participant
