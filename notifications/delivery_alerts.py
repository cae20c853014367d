"""A message that did not reach its participant: an unsubscribed number opts out, else a contact problem for nurses."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from notifications.consent import mark_opted_out
from notifications.models import OutboundMessage
from notifications.provider_errors import is_invalid_number, is_unsubscribed
from schedules.alerts import open_alert
from schedules.changes import Actor
from schedules.models import HIGH, NORMAL, AlertKind, Participant


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
    # Keyed by the message: a failed send and its later 'undelivered' callback are one problem, not two.
    open_alert(
        session,
        participant=participant,
        site_id=participant.site_id,
        kind=AlertKind.CONTACT_PROBLEM.value,
        dedupe_key=f"contact_problem:outbox:{message.id}",
        now=now,
        actor=actor,
        ref_type="outbox",
        ref_id=message.id,
        priority=HIGH if is_invalid_number(error_code) else NORMAL,
        summary=summary,
    )
