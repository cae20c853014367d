"""Participant app sign-in: one-time activation codes, rotating refresh tokens, short-lived access tokens.

A code is `selector + verifier` (12 Crockford base32 characters shown as XXXX-XXXX-XXXX): the
selector finds the row, the verifier is checked against a hash, so wrong guesses count against
that one code and burn it after MAX_CODE_ATTEMPTS. A device session is one token family: every
refresh rotates the refresh token; presenting a rotated one again means it was copied, so the
whole family is revoked (RFC 9700 §4.14.2). Tokens are 256-bit random and stored as SHA-256.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backend.identity.models import ActivationCode, AppToken, DeviceSession
from backend.identity.principal import Principal, participant_actor
from backend.identity.security import new_token, same_digest, token_digest
from notifications.models import OutboundMessage, Purpose
from notifications.templates import render
from schedules.changes import Actor, acting
from schedules.errors import SignInRefused
from schedules.models import Participant, ParticipantStatus

CODE_TTL = timedelta(hours=72)
ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)
MAX_CODE_ATTEMPTS = 5
ACCESS_PREFIX, REFRESH_PREFIX = "tca_", "tcr_"
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
SELECTOR_LEN, VERIFIER_LEN = 4, 8
_CROCKFORD_FOLD = str.maketrans({"O": "0", "I": "1", "L": "1"})


class Refused(SignInRefused):
    """A sign-in or refresh the server refuses; `consequence` must be written even though the request fails."""

    def __init__(
        self, message: str, *, no_longer_allowed: bool = False, consequence: Callable[[Session], None] | None = None
    ):
        super().__init__(message, no_longer_allowed=no_longer_allowed)
        self.consequence = consequence


@dataclass(frozen=True)
class TokenPair:
    """What the app receives on activation and on each refresh (plaintext, shown once)."""

    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    device_session_id: int
    participant_id: int


def _random_chars(n: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(n))


def normalize_code(raw: str) -> str | None:
    """The 12 significant characters of a typed code (case, spaces, dashes and O/I/L mix-ups forgiven), or None."""
    text = "".join(ch for ch in (raw or "").upper() if ch not in " -\t").translate(_CROCKFORD_FOLD)
    if len(text) != SELECTOR_LEN + VERIFIER_LEN or any(ch not in CODE_ALPHABET for ch in text):
        return None
    return text


def format_code(code: str) -> str:
    """XXXX-XXXX-XXXX: easier to read aloud and type."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def create_activation_code(
    session: Session, *, participant: Participant, actor: Actor, now: datetime, ttl: timedelta = CODE_TTL
) -> tuple[str, ActivationCode]:
    """A new one-time code for the participant (shown once); any unused older code stops working."""
    if participant.status == ParticipantStatus.WITHDRAWN.value:
        from schedules.errors import Conflict

        raise Conflict("participant is withdrawn; the app cannot be activated", field="status")
    with acting(session, actor, "activation code issued"):
        _revoke_open_codes(session, participant_id=participant.id, now=now, reason="replaced by a newer code")
        for _ in range(20):
            selector, verifier = _random_chars(SELECTOR_LEN), _random_chars(VERIFIER_LEN)
            if session.exec(select(ActivationCode.id).where(ActivationCode.selector == selector)).first() is not None:
                continue
            row = ActivationCode(
                participant_id=participant.id,
                selector=selector,
                code_hash=token_digest(selector + verifier),
                created_at=now,
                created_by=actor.label,
                expires_at=now + ttl,
            )
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:
                continue  # the same selector was taken meanwhile
            return format_code(selector + verifier), row
    raise RuntimeError("could not find a free activation-code selector")


def queue_activation_sms(
    session: Session, *, participant: Participant, code: str, row: ActivationCode, now: datetime
) -> OutboundMessage:
    """Put the code in the outbox for the participant's own phone (dispatch decrypts it)."""
    hours = max(1, round((row.expires_at - now).total_seconds() / 3600))
    message = OutboundMessage(
        participant_id=participant.id,
        site_id=participant.site_id,
        purpose=Purpose.ACTIVATION.value,
        ref_type="activation_code",
        ref_id=row.id,
        dedupe_key=f"activation:code:{row.id}",
        language=participant.language,
        body=render("activation_code", participant.language, code=code, hours=hours),
        priority=1,
        due_at=now,
        next_attempt_at=now,
        not_after=row.expires_at,
    )
    session.add(message)
    row.sent_by_sms = True
    session.add(row)
    session.flush()
    return message


def _revoke_open_codes(session: Session, *, participant_id: int, now: datetime, reason: str) -> int:
    rows = session.exec(
        select(ActivationCode).where(
            ActivationCode.participant_id == participant_id,
            ActivationCode.used_at.is_(None),
            ActivationCode.revoked_at.is_(None),
            ActivationCode.expires_at > now,
        )
    ).all()
    for row in rows:
        row.revoked_at, row.revoked_reason = now, reason
        session.add(row)
    session.flush()
    return len(rows)


def _record_failed_attempt(code_id: int, now: datetime) -> Callable[[Session], None]:
    def write(session: Session) -> None:
        row = session.get(ActivationCode, code_id)
        if row is None:
            return
        row.failed_attempts += 1
        if row.failed_attempts >= MAX_CODE_ATTEMPTS and row.revoked_at is None and row.used_at is None:
            with acting(session, Actor("system", "activation"), "too many wrong attempts"):
                row.revoked_at, row.revoked_reason = now, "too many wrong attempts"
        session.add(row)

    return write


def activate(session: Session, *, code: str, device_name: str, now: datetime) -> TokenPair:
    """Exchange a valid code for a new device session and its first token pair; Refused otherwise."""
    normalized = normalize_code(code)
    invalid = "activation code is not valid; check it, or ask the study team for a new one"
    if normalized is None:
        raise Refused(invalid)
    selector, verifier = normalized[:SELECTOR_LEN], normalized[SELECTOR_LEN:]
    # FOR UPDATE (PostgreSQL): of two concurrent exchanges of one code, the second sees it used.
    row = session.exec(select(ActivationCode).where(ActivationCode.selector == selector).with_for_update()).first()
    if row is None:
        raise Refused(invalid)
    if not same_digest(row.code_hash, token_digest(selector + verifier)):
        raise Refused(invalid, consequence=_record_failed_attempt(row.id, now))
    if row.used_at is not None:
        raise Refused("activation code has already been used; ask the study team for a new one")
    if row.revoked_at is not None:
        raise Refused(f"activation code no longer works ({row.revoked_reason}); ask the study team for a new one")
    if row.expires_at <= now:
        raise Refused("activation code has expired; ask the study team for a new one")
    participant = session.get(Participant, row.participant_id)
    if participant is None or participant.status == ParticipantStatus.WITHDRAWN.value:
        raise Refused("this participant is no longer taking part; the app cannot be activated", no_longer_allowed=True)
    with acting(session, participant_actor(participant.id), "app activated"):
        row.used_at = now
        session.add(row)
    return start_device_session(
        session, participant=participant, device_name=device_name, now=now, activation_code_id=row.id
    )


# --- tokens -----------------------------------------------------------------------------------------
def start_device_session(
    session: Session,
    *,
    participant: Participant,
    device_name: str,
    now: datetime,
    activation_code_id: int | None = None,
) -> TokenPair:
    """A new signed-in device for the participant and its first token pair (activation, and tests)."""
    with acting(session, participant_actor(participant.id), "app activated"):
        device = DeviceSession(
            participant_id=participant.id,
            activation_code_id=activation_code_id,
            device_name=device_name.strip()[:80],
            created_at=now,
            last_used_at=now,
        )
        session.add(device)
    return _issue_pair(session, device=device, now=now)


def _issue_pair(session: Session, *, device: DeviceSession, now: datetime) -> TokenPair:
    access, refresh = ACCESS_PREFIX + new_token(), REFRESH_PREFIX + new_token()
    session.add(
        AppToken(
            device_session_id=device.id,
            kind="access",
            token_hash=token_digest(access),
            issued_at=now,
            expires_at=now + ACCESS_TTL,
        )
    )
    session.add(
        AppToken(
            device_session_id=device.id,
            kind="refresh",
            token_hash=token_digest(refresh),
            issued_at=now,
            expires_at=now + REFRESH_TTL,
        )
    )
    session.flush()
    return TokenPair(access, now + ACCESS_TTL, refresh, now + REFRESH_TTL, device.id, device.participant_id)


def _revoke_family(device_id: int, now: datetime, reason: str) -> Callable[[Session], None]:
    def write(session: Session) -> None:
        device = session.get(DeviceSession, device_id)
        if device is not None:
            revoke_device(session, device=device, reason=reason, now=now, actor=Actor("system", "token-reuse"))

    return write


def refresh(session: Session, *, refresh_token: str, now: datetime) -> TokenPair:
    """Rotate: the presented refresh token is spent and a new pair issued; reuse of a spent one revokes the device."""
    row = session.exec(
        select(AppToken).where(AppToken.token_hash == token_digest(refresh_token or ""), AppToken.kind == "refresh")
    ).first()
    if row is None:
        raise Refused("refresh token is not valid; activate the app again")
    device = session.get(DeviceSession, row.device_session_id)
    if device is None or device.revoked_at is not None:
        raise Refused("this device has been signed out; activate the app again")
    if row.rotated_at is not None:
        raise Refused(
            "refresh token was already used, so it may have been copied: "
            "this device is signed out; activate the app again",
            consequence=_revoke_family(device.id, now, "refresh token reused"),
        )
    if row.expires_at <= now:
        raise Refused("refresh token has expired; activate the app again")
    participant = session.get(Participant, device.participant_id)
    if participant is None or participant.status == ParticipantStatus.WITHDRAWN.value:
        raise Refused("this participant is no longer taking part; the app is signed out", no_longer_allowed=True)
    # Conditional update: of two concurrent refreshes with one token, exactly one wins.
    spent = session.execute(
        update(AppToken).where(AppToken.id == row.id, AppToken.rotated_at.is_(None)).values(rotated_at=now),
        execution_options={"synchronize_session": False},
    )
    if spent.rowcount != 1:
        raise Refused(
            "refresh token was already used, so it may have been copied: "
            "this device is signed out; activate the app again",
            consequence=_revoke_family(device.id, now, "refresh token reused"),
        )
    device.last_used_at = now
    session.add(device)
    return _issue_pair(session, device=device, now=now)


def revoke_device(session: Session, *, device: DeviceSession, reason: str, now: datetime, actor: Actor) -> bool:
    """Sign one device out: every token of its family stops working at once. False if it already was."""
    if device.revoked_at is not None:
        return False
    with acting(session, actor, reason):
        device.revoked_at, device.revoked_reason = now, reason[:120]
        session.add(device)
    return True


def revoke_participant_devices(
    session: Session, *, participant_id: int, reason: str, now: datetime, actor: Actor
) -> tuple[int, int]:
    """Sign every device of a participant out and withdraw unused codes; returns (devices, codes)."""
    devices = session.exec(
        select(DeviceSession).where(DeviceSession.participant_id == participant_id, DeviceSession.revoked_at.is_(None))
    ).all()
    count = sum(revoke_device(session, device=d, reason=reason, now=now, actor=actor) for d in devices)
    with acting(session, actor, reason):
        codes = _revoke_open_codes(session, participant_id=participant_id, now=now, reason="devices revoked by staff")
    return count, codes


def devices_of(session: Session, participant_id: int) -> list[DeviceSession]:
    """A participant's device sessions, newest first."""
    return list(
        session.exec(
            select(DeviceSession)
            .where(DeviceSession.participant_id == participant_id)
            .order_by(DeviceSession.created_at.desc(), DeviceSession.id.desc())
        ).all()
    )


def device_of_access_token(session: Session, token: str) -> DeviceSession | None:
    """The device session an access token belongs to (for sign-out)."""
    row = session.exec(
        select(AppToken).where(AppToken.token_hash == token_digest(token), AppToken.kind == "access")
    ).first()
    return session.get(DeviceSession, row.device_session_id) if row else None


def purge_expired_tokens(session: Session, *, now: datetime, keep: timedelta = timedelta(days=1)) -> int:
    """Delete token rows expired for longer than `keep` (a spent refresh token is useless once expired)."""
    rows = session.exec(select(AppToken).where(AppToken.expires_at < now - keep)).all()
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)


class AppTokenError(Exception):
    """An app token that is recognised but not usable (expired, signed out); the message says what to do."""


def resolve_participant_token(session: Session, token: str, now: datetime) -> Principal | None:
    """The participant behind an app access token; None for tokens that are not the app's; AppTokenError if unusable."""
    if token.startswith(REFRESH_PREFIX):
        raise AppTokenError(
            "this is a refresh token: send the access token, or get a new one at POST /api/v1/app/token/refresh"
        )
    if not token.startswith(ACCESS_PREFIX):
        return None
    row = session.exec(
        select(AppToken).where(AppToken.token_hash == token_digest(token), AppToken.kind == "access")
    ).first()
    if row is None:
        raise AppTokenError("access token is not valid; refresh it or activate the app again")
    device = session.get(DeviceSession, row.device_session_id)
    if device is None or device.revoked_at is not None:
        raise AppTokenError("this device has been signed out; activate the app again")
    if row.expires_at <= now:
        raise AppTokenError("access token has expired; refresh it")
    participant = session.get(Participant, device.participant_id)
    if participant is None:
        raise AppTokenError("access token is not valid; activate the app again")
    return Principal("participant", participant.id, role="participant", site_id=None)
