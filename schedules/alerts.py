"""The nurse queue: opening alerts exactly once, acknowledging and resolving them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from schedules.changes import Actor, acting
from schedules.errors import Conflict, InvalidInput
from schedules.models import NORMAL, Alert, AlertState, Participant


def open_alert(
    session: Session,
    *,
    participant: Participant | None,
    site_id: int | None,
    kind: str,
    dedupe_key: str,
    summary: str,
    now: datetime,
    actor: Actor,
    priority: str = NORMAL,
    ref_type: str = "",
    ref_id: int | None = None,
    deadline_at: datetime | None = None,
) -> tuple[Alert, bool]:
    """Open an alert unless one with the same dedupe key exists; returns (alert, created). Without a site
    (site_id None) it is about the whole system and only admins see it."""
    existing = session.exec(select(Alert).where(Alert.dedupe_key == dedupe_key)).first()
    if existing is not None:
        return existing, False
    alert = Alert(
        participant_id=participant.id if participant else None,
        site_id=site_id,
        kind=kind,
        priority=priority,
        ref_type=ref_type,
        ref_id=ref_id,
        dedupe_key=dedupe_key,
        summary=summary,
        opened_at=now,
        deadline_at=deadline_at,
    )
    try:
        with session.begin_nested(), acting(session, actor, summary):
            session.add(alert)
    except IntegrityError:
        # Another process opened it between our check and insert: theirs stands.
        return session.exec(select(Alert).where(Alert.dedupe_key == dedupe_key)).one(), False
    return alert, True


def annotate(session: Session, *, alert: Alert, note: str, actor: Actor) -> Alert:
    """Append a note to an alert (e.g. 'reported late at ...')."""
    with acting(session, actor, note):
        alert.annotation = (alert.annotation + "\n" + note).strip()
        session.add(alert)
    return alert


def acknowledge(session: Session, *, alert: Alert, actor: Actor, now: datetime, reason: str = "acknowledged") -> Alert:
    """Mark an open alert as being worked on."""
    if alert.state != AlertState.OPEN.value:
        raise Conflict(f"alert is {alert.state}, not open", field="state")
    with acting(session, actor, reason):
        alert.state, alert.acknowledged_at, alert.acknowledged_by = AlertState.ACKNOWLEDGED.value, now, actor.label
        session.add(alert)
    return alert


def resolve(session: Session, *, alert: Alert, note: str, actor: Actor, now: datetime) -> Alert:
    """Close an alert with a note saying what was done."""
    if not note or not note.strip():
        raise InvalidInput("a note saying what was done is required", field="note")
    if alert.state == AlertState.RESOLVED.value:
        raise Conflict("alert is already resolved", field="state")
    with acting(session, actor, note.strip()):
        if alert.acknowledged_at is None:
            alert.acknowledged_at, alert.acknowledged_by = now, actor.label
        alert.state, alert.resolved_at, alert.resolved_by, alert.resolution_note = (
            AlertState.RESOLVED.value,
            now,
            actor.label,
            note.strip(),
        )
        session.add(alert)
    return alert


def resolve_by_events(
    session: Session,
    *,
    participant_id: int,
    kind: str,
    note: str,
    actor: Actor,
    now: datetime,
    dedupe_key: str | None = None,
) -> int:
    """Resolve the participant's unresolved alerts of `kind` (or the one with `dedupe_key`) because what they
    warned about is over, with `note` saying what happened (audited); returns how many."""
    query = select(Alert).where(
        Alert.participant_id == participant_id, Alert.kind == kind, Alert.state != AlertState.RESOLVED.value
    )
    if dedupe_key is not None:
        query = query.where(Alert.dedupe_key == dedupe_key)
    alerts = session.exec(query).all()
    for alert in alerts:
        resolve(session, alert=alert, note=note, actor=actor, now=now)
    return len(alerts)
