"""Who is calling an API request: bearer tokens (staff or app) resolved once, each operation's declared
access checked before its input is read, scoped look-ups."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g, request
from flask_smorest import abort

from backend.config import settings_of
from backend.db import get_database, get_session
from backend.identity import scope
from backend.identity.app_tokens import AppTokenError, Refused, resolve_participant_token
from backend.identity.lockout import LockoutPolicy
from backend.identity.principal import Principal
from backend.identity.staff import staff_from_token
from backend.web.errors import status_of
from schedules.dbtypes import utcnow
from schedules.models import Participant

API_PREFIX = "/api/v1/"
MASKED_REFUSAL = "the masked outcome assessor may not use this operation"
_ACCESS = "__access__"


@dataclass(frozen=True)
class Access:
    """Who may call an operation: `public`, `any` signed-in caller, `staff` (in `roles` if given) or `participant`.
    The masked outcome assessor only where `masked_safe`: the operation answers them the same for every arm."""

    callers: str
    roles: tuple[str, ...] = ()
    refusal: str = ""
    masked_safe: bool = False


def _declare(access: Access):
    def decorate(view):
        # functools.wraps copies __dict__, so the mark reaches the outermost wrapper wherever it is stacked.
        setattr(view, _ACCESS, access)
        return view

    return decorate


def require_staff(*roles: str, refusal: str = "", masked_safe: bool = False):
    """Declare: the caller must be staff, in one of `roles` when given (403 otherwise, before the body is read).
    The masked assessor is refused unless the operation declares itself `masked_safe` (see backend.web.masking)."""
    return _declare(Access("staff", tuple(roles), refusal, masked_safe))


def require_participant(view):
    """Declare: the caller must be a participant signed in through the app (staff get 403)."""
    refusal = "this endpoint is for the participant app; staff use /api/v1/participants"
    return _declare(Access("participant", refusal=refusal))(view)


def signed_in(view):
    """Declare: any signed-in caller, staff or a participant's app (shared reference data)."""
    return _declare(Access("any"))(view)


def public(view):
    """Declare: no sign-in needed (sign-in itself, the calendar feed at its secret address)."""
    return _declare(Access("public"))(view)


def declared_access(endpoint: str | None, method: str) -> Access | None:
    """The access an API operation declares, or None when it declares none."""
    view = current_app.view_functions.get(endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return getattr(view, _ACCESS, None)
    handler = getattr(view_class, method.lower(), None)
    if handler is None and method == "HEAD":
        handler = getattr(view_class, "get", None)
    return getattr(handler, _ACCESS, None)


def authorize_request() -> None:
    """Before any view (and so before its body or query is parsed): 401/403 unless the declared access allows.

    An operation that declares nothing is refused: a new route is closed until someone says who may call it."""
    if request.url_rule is None or not request.path.startswith(API_PREFIX) or request.method == "OPTIONS":
        return  # 404/405 follow; OPTIONS is answered by Flask and runs no view
    access = declared_access(request.endpoint, request.method)
    if access is None:
        abort(403, message="this operation declares no access rule")
    if access.callers == "public":
        return
    principal = current_principal()
    if access.callers == "participant" and principal.kind != "participant":
        abort(403, message=access.refusal)
    if access.callers == "staff":
        if principal.kind != "staff":
            abort(403, message="this endpoint is for study staff")
        if access.roles and principal.role not in access.roles:
            abort(403, message=(access.refusal or "your role ({role}) may not do this").format(role=principal.role))
        if principal.masked and not access.masked_safe:
            # Closed by default: a new operation must say it answers the assessor the same for every arm.
            abort(403, message=MASKED_REFUSAL)


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


def lockout_policy() -> LockoutPolicy:
    """The staff sign-in lockout of these settings (the same for pages and API)."""
    settings = settings_of(current_app)
    return LockoutPolicy(attempts=settings.STAFF_LOCKOUT_ATTEMPTS, minutes=settings.STAFF_LOCKOUT_MINUTES)


def keep_consequence(exc: Refused) -> None:
    """Write what must outlive a refused sign-in (a counted failure, a revoked family) in its own transaction,
    after the request's own work is rolled back (SQLite has one writer)."""
    get_session().rollback()
    if exc.consequence is not None:
        with get_database().session() as session:
            exc.consequence(session)


def refuse_sign_in(exc: Refused):
    """Answer a refused API sign-in (401 or 403), its consequence written."""
    keep_consequence(exc)
    abort(status_of(exc), message=exc.message)


def visible_participant(participant_id: int, principal: Principal | None = None) -> Participant:
    """The participant if the caller may see them; 404 otherwise (nothing revealed)."""
    participant = scope.visible_participant(get_session(), principal or current_principal(), participant_id)
    if participant is None:
        abort(404, message="no such participant")
    return participant
