"""Who is calling: staff bearer tokens, roles, and site scoping of participants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps

from flask import current_app, g, request
from flask_smorest import abort
from sqlmodel import Session, select

from backend.models import Role, Staff, StaffToken
from backend.security import hash_password, new_token, token_digest
from schedules.changes import Actor
from schedules.models import Participant, Site


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a staff member (role, site) or a participant (app)."""

    kind: str  # staff | participant
    id: int
    role: str = ""
    site_id: int | None = None

    @property
    def actor(self) -> Actor:
        """The audit actor for changes this caller makes."""
        if self.kind == "participant":
            return Actor("app", f"participant:{self.id}")
        return Actor("staff", f"staff:{self.id}")

    @property
    def masked(self) -> bool:
        """True for the outcome assessor: never sees arm or dosing."""
        return self.role == Role.ASSESSOR.value

    def can_see_site(self, site_id: int) -> bool:
        """Admins see every site; other staff only their own."""
        return self.role == Role.ADMIN.value or self.site_id == site_id


def create_staff(session: Session, *, email: str, password: str, role: str, site: Site | None) -> Staff:
    """Create a staff account (the caller checks the password policy first)."""
    staff = Staff(email=email.strip().lower(), password_hash=hash_password(password), role=role, site_id=site.id if site else None)
    session.add(staff)
    session.flush()
    return staff


def issue_staff_token(session: Session, *, staff: Staff, now: datetime, ttl: timedelta, label: str = "") -> tuple[str, StaffToken]:
    """A new random bearer token for staff; only its hash is stored."""
    token = new_token()
    row = StaffToken(staff_id=staff.id, token_hash=token_digest(token), created_at=now, expires_at=now + ttl, label=label)
    session.add(row)
    session.flush()
    return token, row


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def staff_from_token(session: Session, token: str, *, now: datetime) -> tuple[Staff | None, str]:
    """The active staff member behind a token, or (None, reason)."""
    # One round trip for token and account: every staff API request pays for this look-up.
    found = session.exec(select(StaffToken, Staff).join(Staff, Staff.id == StaffToken.staff_id)
                         .where(StaffToken.token_hash == token_digest(token))).first()
    if found is None:
        return None, "unknown token"
    row, staff = found
    if row.revoked_at is not None:
        return None, "token has been revoked"
    if row.expires_at <= now:
        return None, "token has expired; request a new one"
    if not staff.active:
        return None, "account is disabled"
    return staff, ""


def current_principal() -> Principal:
    """The authenticated caller of this request, or 401 with the reason."""
    if "principal" in g:
        return g.principal
    from backend.db import get_session
    from schedules.dbtypes import utcnow

    token = _bearer()
    if token is None:
        abort(401, message="missing bearer token: send 'Authorization: Bearer <token>'")
    session = get_session()
    now = utcnow()
    resolver = current_app.extensions.get("participant_token_resolver")
    if resolver is not None:
        principal = resolver(session, token, now)
        if principal is not None:
            g.principal = principal
            return principal
    staff, reason = staff_from_token(session, token, now=now)
    if staff is None:
        abort(401, message=reason)
    g.principal = Principal("staff", staff.id, staff.role, staff.site_id)
    return g.principal


def require_staff(*roles: str):
    """Decorator: the caller must be staff, in one of `roles` when given (403 otherwise)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_principal()
            if principal.kind != "staff":
                abort(403, message="this endpoint is for study staff")
            if roles and principal.role not in roles:
                abort(403, message=f"your role ({principal.role}) may not do this")
            return view(*args, **kwargs)

        return wrapper

    return decorate


def visible_participant(session: Session, principal: Principal, participant_id: int) -> Participant:
    """The participant if the caller may see them; 404 otherwise (nothing revealed)."""
    participant = session.get(Participant, participant_id)
    if participant is None:
        abort(404, message="no such participant")
    if principal.kind == "participant":
        if principal.id != participant.id:
            abort(404, message="no such participant")
    elif not principal.can_see_site(participant.site_id):
        abort(404, message="no such participant")
    return participant


NOT_MASKED = (Role.ADMIN.value, Role.INVESTIGATOR.value, Role.NURSE.value)
