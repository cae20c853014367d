"""The crash rule: what happens to a row a dispatcher left in 'sending' when it died.

A row left in 'sending' for longer than SENDING_STALE_AFTER_SECONDS is put back once
('recoveries' becomes 1) and may therefore reach the participant twice; found stuck a second time
it is marked failed, never re-sent, and the participant's nurses get a contact problem saying it
may not have arrived. A dispatcher claims a row only with its send-rate token in hand and for a
sending thread or the short queue in front of them (notifications.dispatch), so a row in 'sending'
is a provider call under way or about to be, never one waiting for the cap: duplicates are at
most one per call in flight at a crash, and re-sends never loop. README states the same rule.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, select

from notifications.delivery_alerts import delivery_failed
from notifications.models import OutboundMessage as O
from notifications.models import OutboxStatus
from schedules.changes import Actor, acting
from schedules.models import Participant

log = logging.getLogger("notifications.crash_rule")
RECOVERY_ACTOR = Actor("job", "recover_stuck_sending")
GAVE_UP = "outcome unknown after a second dispatcher crash; not re-sent"


def recover_stuck(session: Session, *, now: datetime, stale_after: timedelta) -> int:
    """Apply the crash rule to rows left in 'sending' (see module docstring)."""
    rows = session.exec(select(O).where(O.status == OutboxStatus.SENDING.value, O.claimed_at < now - stale_after)).all()
    given_up = []
    with acting(session, RECOVERY_ACTOR, "dispatcher stopped while sending"):
        for row in rows:
            if row.recoveries == 0:
                row.status, row.recoveries, row.next_attempt_at, row.claimed_by = OutboxStatus.PLANNED.value, 1, now, ""
            else:
                row.status, row.last_error, row.status_updated_at = OutboxStatus.FAILED.value, GAVE_UP, now
                given_up.append(row)
            session.add(row)
    for row in given_up:
        _tell_nurses(session, row, now=now)
    return len(rows)


def _tell_nurses(session: Session, row: O, *, now: datetime) -> None:
    """Giving up is never silent: the participant's nurses get a contact problem to check by phone."""
    participant = session.get(Participant, row.participant_id) if row.participant_id else None
    if participant is None:  # a staff SMS: the log is where its reader (an operator) looks
        log.warning("outbox row %s (%s) given up after a second dispatcher crash", row.id, row.purpose)
        return
    session.flush()
    delivery_failed(
        session,
        message=row,
        participant=participant,
        error_code=None,
        now=now,
        actor=RECOVERY_ACTOR,
        summary=f"{row.purpose.replace('_', ' ')} may not have arrived: the sender stopped twice while sending it",
        unsubscribed_why="",
    )
