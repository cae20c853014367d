"""The participant app's access: activation codes, sign-in and refresh, devices, the calendar link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from backend.identity import app_tokens
from backend.identity.models import ActivationCode
from backend.identity.principal import participant_actor
from backend.identity.security import new_token, token_digest
from schedules.changes import Actor, acting
from schedules.errors import Conflict
from schedules.models import Participant
from schedules.participants import messaging_allowed


@dataclass(frozen=True)
class IssuedCode:
    """A new activation code (plaintext, shown once) and its row."""

    code: str
    row: ActivationCode


def issue_activation_code(
    session: Session, *, participant: Participant, send_sms: bool, actor: Actor, now: datetime
) -> IssuedCode:
    """Create a one-time activation code, and queue it to the participant's phone when asked."""
    if send_sms and not messaging_allowed(participant, now=now):
        raise Conflict(
            "this participant cannot be sent SMS (opted out, no consent, or no longer in the study)", field="send_sms"
        )
    code, row = app_tokens.create_activation_code(session, participant=participant, actor=actor, now=now)
    if send_sms:
        app_tokens.queue_activation_sms(session, participant=participant, code=code, row=row, now=now)
    return IssuedCode(code, row)


def activate_app(session: Session, *, code: str, device_name: str, now: datetime) -> app_tokens.TokenPair:
    """Exchange an activation code for a token pair (app_tokens.Refused when it does not sign anyone in)."""
    return app_tokens.activate(session, code=code, device_name=device_name, now=now)


def refresh_app_tokens(session: Session, *, refresh_token: str, now: datetime) -> app_tokens.TokenPair:
    """Rotate a refresh token into a new pair (a spent one signs the device out)."""
    return app_tokens.refresh(session, refresh_token=refresh_token, now=now)


def sign_out_device(session: Session, *, access_token: str, actor: Actor, now: datetime) -> bool:
    """Sign out the device behind an access token; False when there is none."""
    device = app_tokens.device_of_access_token(session, access_token)
    if device is None:
        return False
    return app_tokens.revoke_device(session, device=device, reason="signed out in the app", now=now, actor=actor)


def sign_out_all_devices(
    session: Session, *, participant: Participant, reason: str, actor: Actor, now: datetime
) -> tuple[int, int]:
    """Sign out every device of the participant and withdraw unused codes; returns (devices, codes)."""
    return app_tokens.revoke_participant_devices(
        session, participant_id=participant.id, reason=reason, now=now, actor=actor
    )


def create_calendar_link(session: Session, *, participant: Participant) -> str:
    """A new secret for the participant's dose calendar (shown once); an older one stops working."""
    secret = new_token()
    with acting(session, participant_actor(participant.id), "calendar link created in app"):
        participant.calendar_token_hash = token_digest(secret)
        session.add(participant)
    return secret


def remove_calendar_link(session: Session, *, participant: Participant) -> None:
    """Turn the participant's calendar address off."""
    if participant.calendar_token_hash:
        with acting(session, participant_actor(participant.id), "calendar link removed in app"):
            participant.calendar_token_hash = ""
            session.add(participant)
