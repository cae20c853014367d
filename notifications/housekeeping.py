"""Outbox housekeeping: expire messages too late to be useful, and apply the crash rule to rows left in 'sending'.

Crash rule (documented in README): a row a crashed dispatcher left in 'sending' for longer
than SENDING_STALE_AFTER_SECONDS is put back once ('recoveries' becomes 1) and may therefore
reach the participant twice; found stuck a second time it is marked failed, never re-sent.
So duplicates are at most one per message in flight at a crash, and re-sends never loop.
"""

from __future__ import annotations

from datetime import datetime, timedelta

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


def recover_stuck(session: Session, *, now: datetime, stale_after: timedelta) -> int:
    """Apply the crash rule to rows left in 'sending' (see module docstring)."""
    rows = session.exec(select(O).where(O.status == OutboxStatus.SENDING.value, O.claimed_at < now - stale_after)).all()
    with acting(session, Actor("job", "recover_stuck_sending"), "dispatcher stopped while sending"):
        for row in rows:
            if row.recoveries == 0:
                row.status, row.recoveries, row.next_attempt_at, row.claimed_by = OutboxStatus.PLANNED.value, 1, now, ""
            else:
                row.status, row.last_error = (
                    OutboxStatus.FAILED.value,
                    "outcome unknown after a second dispatcher crash; not re-sent",
                )
            session.add(row)
    return len(rows)
