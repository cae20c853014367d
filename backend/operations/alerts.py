"""Work the nurse queue: acknowledge an alert (someone is on it), resolve it (with what was done)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from schedules import alerts as domain
from schedules.changes import Actor
from schedules.models import Alert


def acknowledge_alert(
    session: Session, *, alert: Alert, actor: Actor, now: datetime, reason: str = "acknowledged"
) -> Alert:
    """Mark an open alert as being worked on; who and when are recorded. For a suspected-serious alert this ends
    the chase: the chase job pages only alerts nobody has acknowledged."""
    return domain.acknowledge(session, alert=alert, actor=actor, now=now, reason=reason)


def resolve_alert(session: Session, *, alert: Alert, note: str, actor: Actor, now: datetime) -> Alert:
    """Close an alert with a note saying what was done."""
    return domain.resolve(session, alert=alert, note=note, actor=actor, now=now)
