"""Outbox housekeeping: messages past their last useful moment are expired (audited), never sent late or cancelled.

The crash rule for rows left in 'sending' lives in notifications.crash_rule.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from notifications.models import OutboundMessage as O
from notifications.models import OutboxStatus
from schedules.changes import Actor, acting

TOO_LATE = "too late to be useful: the sender was behind"
EXPIRY_ACTOR = Actor("job", "expire_stale_messages")


def is_stale(row: O, *, now: datetime) -> bool:
    """True once a message's last useful moment has passed: it is expired, never sent late (nor cancelled)."""
    return row.not_after is not None and row.not_after < now


def expire(session: Session, rows: list[O], *, now: datetime) -> None:
    """Mark these planned messages expired, with the reason in the audit trail."""
    with acting(session, EXPIRY_ACTOR, TOO_LATE):
        for row in rows:
            row.status, row.status_updated_at = OutboxStatus.EXPIRED.value, now
            session.add(row)


def expire_stale(session: Session, *, now: datetime) -> int:
    """Planned messages past their last useful moment become expired (audited), never sent late."""
    rows = session.exec(
        select(O).where(O.status == OutboxStatus.PLANNED.value, O.not_after.is_not(None), O.not_after < now)
    ).all()
    expire(session, list(rows), now=now)
    return len(rows)
