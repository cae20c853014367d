"""Staff accounts: creation, password sign-in and bearer tokens."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from backend.identity.security import (
    hash_password,
    new_token,
    token_digest,
    verify_password,
)
from backend.models import Staff, StaffToken
from schedules.models import Site

# Verified against when the email is unknown, so the response time does not reveal which accounts exist.
_DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1hLGmt2dHdC0Y8cBnv6xK8m3pX9JkQ0yQf2m8Qm0tqk"


def normalize_email(email: str) -> str:
    """The form every staff email is stored and looked up in."""
    return email.strip().lower()


def create_staff(session: Session, *, email: str, password: str, role: str, site: Site | None) -> Staff:
    """Create a staff account (the caller checks the password policy first)."""
    staff = Staff(
        email=normalize_email(email),
        password_hash=hash_password(password),
        role=role,
        site_id=site.id if site else None,
    )
    session.add(staff)
    session.flush()
    return staff


def authenticate_staff(session: Session, *, email: str, password: str) -> Staff | None:
    """The active staff member with this email and password, else None (same cost either way)."""
    staff = session.exec(select(Staff).where(Staff.email == normalize_email(email))).first()
    valid = verify_password(staff.password_hash if staff else _DUMMY_HASH, password)
    return staff if staff is not None and valid and staff.active else None


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


def staff_from_token(session: Session, token: str, *, now: datetime) -> tuple[Staff | None, str]:
    """The active staff member behind a token, or (None, reason)."""
    # One round trip for token and account: every staff API request pays for this look-up.
    found = session.exec(
        select(StaffToken, Staff)
        .join(Staff, Staff.id == StaffToken.staff_id)
        .where(StaffToken.token_hash == token_digest(token))
    ).first()
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
