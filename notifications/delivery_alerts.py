"""A message that did not reach its participant: an unsubscribed number opts out, else a contact problem for nurses."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from notifications.consent import mark_opted_out
from notifications.models import OutboundMessage
from notifications.provider_errors import is_invalid_number, is_unsubscribed
from schedules.alerts import open_alert, resolve
from schedules.changes import Actor
from schedules.models import HIGH, NORMAL, Alert, AlertKind, AlertState, Participant


def contact_problem_key(message_id: int) -> str:
    """The one alert of a message that did not arrive: a failed send and its later 'undelivered' are one problem."""
    return f"contact_problem:outbox:{message_id}"


def delivery_failed(
    session: Session,
    *,
    message: OutboundMessage,
    participant: Participant,
    error_code: int | None,
    summary: str,
    unsubscribed_why: str,
    now: datetime,
    actor: Actor,
) -> None:
    """Act on a failed send or undelivered callback: opt the participant out on 21610, else open a contact problem."""
    if is_unsubscribed(error_code):
        mark_opted_out(session, participant=participant, now=now, actor=actor, why=unsubscribed_why)
        return
    open_alert(
        session,
        participant=participant,
        site_id=participant.site_id,
        kind=AlertKind.CONTACT_PROBLEM.value,
        dedupe_key=contact_problem_key(message.id),
        now=now,
        actor=actor,
        ref_type="outbox",
        ref_id=message.id,
        priority=HIGH if is_invalid_number(error_code) else NORMAL,
        summary=summary,
    )


def delivery_recovered(session: Session, *, message: OutboundMessage, now: datetime, actor: Actor) -> int:
    """A message reached the participant: their open contact problems are over, its own (it arrived after all)
    and earlier messages' (the number works). Each resolved with the reason (audited); returns how many."""
    if not message.participant_id:
        return 0
    alerts = session.exec(
        select(Alert).where(
            Alert.participant_id == message.participant_id,
            Alert.kind == AlertKind.CONTACT_PROBLEM.value,
            Alert.state != AlertState.RESOLVED.value,
        )
    ).all()
    for alert in alerts:
        own = alert.dedupe_key == contact_problem_key(message.id)
        note = (
            "a later status from the carrier says the message was delivered"
            if own
            else f"a later message ({message.purpose.replace('_', ' ')}) was delivered"
        )
        resolve(session, alert=alert, note=note, actor=actor, now=now)
    return len(alerts)
