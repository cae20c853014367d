"""Staff accounts: creation, password sign-in (with the timed lockout) and bearer tokens."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlmodel import Session, select

from backend.identity import lockout
from backend.identity.app_tokens import Refused
from backend.identity.security import (
    hash_password,
    new_token,
    token_digest,
    verify_password,
)
from backend.models import Staff, StaffToken
from schedules.changes import SYSTEM, Actor, acting
from schedules.errors import InvalidInput, TooManyAttempts
from schedules.models import Site
from schedules.protocol import SUPPORTED_LANGUAGES

# The label of the token behind a nurse-page session: sign-out revokes it, so a copied cookie stops working.
PAGE_SESSION = "page"

# Verified against when the email is unknown, so the response time does not reveal which accounts exist.
_DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1hLGmt2dHdC0Y8cBnv6xK8m3pX9JkQ0yQf2m8Qm0tqk"


def normalize_email(email: str) -> str:
    """The form every staff email is stored and looked up in."""
    return email.strip().lower()


def create_staff(
    session: Session,
    *,
    email: str,
    password: str,
    role: str,
    site: Site | None,
    actor: Actor = SYSTEM,
    reason: str = "staff account created",
    language: str | None = None,
) -> Staff:
    """Create a staff account, attributed to `actor` with `reason` (the caller checks the password policy first).
    Without a language the account reads its site's."""
    staff = Staff(
        email=normalize_email(email),
        password_hash=hash_password(password),
        role=role,
        site_id=site.id if site else None,
        language=_checked_language(language),
    )
    with acting(session, actor, reason):
        session.add(staff)
    return staff


def authenticate_staff(session: Session, *, email: str, password: str) -> Staff | None:
    """The active staff member with this email and password, else None (same cost either way)."""
    staff = session.exec(select(Staff).where(Staff.email == normalize_email(email))).first()
    valid = verify_password(staff.password_hash if staff else _DUMMY_HASH, password)
    return staff if staff is not None and valid and staff.active else None


class SignInLocked(TooManyAttempts):
    """Too many wrong passwords for this email: every sign-in is refused, right password or not, until `until`."""

    def __init__(self, until: datetime, *, now: datetime):
        seconds = max(1, math.ceil((until - now).total_seconds()))
        minutes = math.ceil(seconds / 60)
        super().__init__(
            f"too many wrong passwords for this account: sign-in is locked for {minutes} more "
            f"minute{'s' if minutes != 1 else ''}, whatever the password; try again then",
            retry_after=seconds,
        )
        self.until = until
        self.minutes = minutes


def sign_in_staff(
    session: Session, *, email: str, password: str, now: datetime, policy: lockout.LockoutPolicy
) -> Staff:
    """The active staff member with this email and password.

    SignInLocked while the email is locked (the password is not even checked); Refused on a wrong
    password, whose consequence counts the failure and must be written although the sign-in fails."""
    key = token_digest(normalize_email(email))
    until = lockout.locked_until(session, key, now=now)
    if until is not None:
        raise SignInLocked(until, now=now)
    staff = authenticate_staff(session, email=email, password=password)
    if staff is None:
        raise Refused(
            "wrong email or password",
            consequence=lambda s: lockout.record_failure(s, key, now=now, policy=policy),
        )
    lockout.clear_failures(session, key)
    return staff


def issue_staff_token(
    session: Session, *, staff: Staff, now: datetime, ttl: timedelta, label: str = ""
) -> tuple[str, StaffToken]:
    """A new random bearer token for staff; only its hash is stored."""
    token = new_token()
    row = StaffToken(
        staff_id=staff.id, token_hash=token_digest(token), created_at=now, expires_at=now + ttl, label=label
    )
    session.add(row)
    session.flush()
    return token, row


def revoke_staff_token(session: Session, *, token: str, now: datetime) -> bool:
    """Revoke a bearer token; False when it is unknown."""
    row = session.exec(select(StaffToken).where(StaffToken.token_hash == token_digest(token))).first()
    if row is None:
        return False
    row.revoked_at = now
    session.add(row)
    return True


def staff_from_token(
    session: Session, token: str, *, now: datetime, page_session: bool = False
) -> tuple[Staff | None, str]:
    """The active staff member behind a token, or (None, reason).

    A nurse-page session is a token of its own kind (label PAGE_SESSION, kept in the signed cookie): it
    opens pages only, and an API token opens no page."""
    # One round trip for token and account: every staff API request pays for this look-up.
    found = session.exec(
        select(StaffToken, Staff)
        .join(Staff, Staff.id == StaffToken.staff_id)
        .where(StaffToken.token_hash == token_digest(token))
    ).first()
    if found is None:
        return None, "unknown token"
    row, staff = found
    if (row.label == PAGE_SESSION) != page_session:
        return None, "unknown token"
    if row.revoked_at is not None:
        return None, "token has been revoked"
    if row.expires_at <= now:
        return None, "token has expired; request a new one"
    if not staff.active:
        return None, "account is disabled"
    return staff, ""


def _checked_language(language: str | None) -> str | None:
    if language is not None and language not in SUPPORTED_LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(SUPPORTED_LANGUAGES)}", field="language")
    return language


def set_staff_language(session: Session, *, staff: Staff, language: str, actor: Actor) -> Staff:
    """The language the staff member's pages are shown in from now on (audited like every account change)."""
    chosen = _checked_language(language)
    if staff.language != chosen:
        with acting(session, actor, f"pages in {chosen}"):
            staff.language = chosen
            session.add(staff)
    return staff


def staff_language(staff: Staff, site: Site | None) -> str:
    """The language of a staff member's pages: their own choice, else their site's, else English."""
    return staff.language or (site.language if site else None) or "en"
