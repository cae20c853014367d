"""Delivery-status callbacks: statuses only move forward; undelivered reminders become contact problems."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from notifications.crash_rule import GAVE_UP
from notifications.delivery_alerts import delivery_failed, delivery_recovered
from notifications.models import (
    STATUS_RANK,
    OutboundMessage,
    OutboxStatus,
    Purpose,
    StatusCallback,
)
from schedules.bulk import in_values
from schedules.changes import Actor, acting, record_changes
from schedules.models import Participant

ACTOR = Actor("job", "twilio_status_callback")
# What the callback table can hold; a longer, unknown status is kept cut to it (and applies nothing).
STATUS_LENGTH = StatusCallback.__table__.c.status.type.length
RACE_MARGIN = timedelta(seconds=60)  # clock skew between web and dispatch hosts
_OUR_STATUS = {
    "delivered": OutboxStatus.DELIVERED.value,
    "partially_delivered": OutboxStatus.DELIVERED.value,
    "read": OutboxStatus.DELIVERED.value,
    "undelivered": OutboxStatus.UNDELIVERED.value,
    "failed": OutboxStatus.FAILED.value,
    "canceled": OutboxStatus.FAILED.value,
}
_NOT_ARRIVED = ("undelivered", "failed", "canceled")
_ARRIVED = ("partially_delivered", "delivered", "read")


def apply_status_callback(
    session: Session,
    *,
    message_sid: str,
    status: str,
    error_code: int | None,
    now: datetime,
    outbox_id: int | None = None,
) -> bool:
    """Record a callback and move the message forward if it is news; returns True if it changed anything.
    Repeated or out-of-order callbacks ('sent' after 'delivered') change nothing. A callback for a
    SID not yet in the outbox names its row (`outbox_id`, from the callback URL): the provider has the
    message, so the row takes the SID (see _adopt). Without one it is kept unapplied and replayed by
    replay_early_callbacks when the send is recorded."""
    status = (status or "").strip().lower()
    callback = StatusCallback(
        message_sid=message_sid, status=status[:STATUS_LENGTH], error_code=error_code, received_at=now
    )
    session.add(callback)
    row = _by_sid(session, message_sid)
    if row is None and outbox_id is not None:
        row = _adopt(session, outbox_id=outbox_id, message_sid=message_sid, now=now)
    if row is None:
        return False
    callback.applied = _apply(session, row, status=status, error_code=error_code, now=now)
    return callback.applied


def _adopt(session: Session, *, outbox_id: int, message_sid: str, now: datetime) -> OutboundMessage | None:
    """The provider has this row's message, but the outbox never recorded its SID: the dispatcher has not
    written it yet, crashed before it could (the row waits for a re-send), or the crash rule gave up on it.
    Record it as sent with that SID, so it is not sent again and its statuses apply (an arrival then resolves
    the contact problem of a row given up); returns the row. One conditional UPDATE, so a racing record of
    the same send wins or loses cleanly (then the SID lookup finds it)."""
    row = session.get(OutboundMessage, outbox_id)
    if row is None or row.provider_sid is not None:
        return _by_sid(session, message_sid)
    given_up = row.status == OutboxStatus.FAILED.value and row.last_error == GAVE_UP
    if row.status not in (OutboxStatus.SENDING.value, OutboxStatus.PLANNED.value) and not given_up:
        return None
    before = {"status": row.status, "provider_sid": None, "sent_at": row.sent_at, "last_error": row.last_error}
    after = {"status": OutboxStatus.SENT.value, "provider_sid": message_sid, "sent_at": row.sent_at or now}
    after["last_error"] = "" if given_up else row.last_error
    adopted = session.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.id == row.id, OutboundMessage.provider_sid.is_(None), OutboundMessage.status == row.status
        )
        .values(**after, claimed_by="", status_updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(row)
    if not adopted:
        return _by_sid(session, message_sid)
    with acting(session, ACTOR, "Twilio's status callback names this message: the provider has it"):
        record_changes(
            session,
            OutboundMessage,
            updated=[(row.id, {f: (before[f], after[f]) for f in after if before[f] != after[f]})],
        )
    return row


def _by_sid(session: Session, message_sid: str) -> OutboundMessage | None:
    return session.exec(select(OutboundMessage).where(OutboundMessage.provider_sid == message_sid)).first()


def replay_early_callbacks(session: Session, *, rows: list[OutboundMessage], now: datetime) -> int:
    """Apply callbacks that arrived before their message's send was recorded, in arrival order."""
    by_sid = {row.provider_sid: row for row in rows if row.provider_sid}
    if not by_sid:
        return 0
    early = session.exec(
        select(StatusCallback)
        .where(StatusCallback.message_sid.in_(list(by_sid)), StatusCallback.applied == False)  # noqa: E712
        .order_by(StatusCallback.id)
    ).all()
    for callback in early:
        callback.applied = _apply(
            session, by_sid[callback.message_sid], status=callback.status, error_code=callback.error_code, now=now
        )
        session.add(callback)
    return len(early)


def replay_raced_callbacks(session: Session, *, now: datetime, within: timedelta = timedelta(hours=24)) -> int:
    """Apply callbacks that arrived while their send was being recorded (so neither side saw the other).
    Only callbacks received before the send was recorded qualify: a later unapplied one was
    matched on arrival and refused as out of order, and must stay refused."""
    pairs = session.exec(
        select(StatusCallback, OutboundMessage)
        .join(OutboundMessage, OutboundMessage.provider_sid == StatusCallback.message_sid)
        .where(
            StatusCallback.applied.is_(False),
            StatusCallback.received_at >= now - within,
            OutboundMessage.sent_at.is_not(None),
        )
        .order_by(StatusCallback.id)
    ).all()
    replayed = 0
    for callback, row in pairs:
        if callback.received_at <= row.sent_at + RACE_MARGIN:
            callback.applied = _apply(session, row, status=callback.status, error_code=callback.error_code, now=now)
            session.add(callback)
            replayed += callback.applied
    return replayed


def _claim_move(session: Session, row: OutboundMessage, *, status: str, now: datetime) -> bool:
    """Move the row's provider status up in one conditional UPDATE, so callbacks racing for one message
    cannot both pass the rank check: the later one waits for the row lock, then no longer matches."""
    rank = STATUS_RANK[status]
    not_lower = [name for name, other in STATUS_RANK.items() if other >= rank]
    moved = session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == row.id, OutboundMessage.provider_status.not_in(not_lower))
        .values(provider_status=status, status_updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return moved == 1


def _apply(session: Session, row: OutboundMessage, *, status: str, error_code: int | None, now: datetime) -> bool:
    if status not in STATUS_RANK or STATUS_RANK[status] <= STATUS_RANK.get(row.provider_status, 0):
        return False
    previous = row.provider_status
    if not _claim_move(session, row, status=status, now=now):
        session.refresh(row)
        return False
    # The UPDATE wrote these two (no reload needed); the attributes below go through the ORM, so the audit sees them.
    set_committed_value(row, "provider_status", status)
    set_committed_value(row, "status_updated_at", now)
    if error_code:
        row.last_error_code = error_code
    if status in _OUR_STATUS:
        row.status = _OUR_STATUS[status]
    session.add(row)
    if status in _ARRIVED:
        if previous in _NOT_ARRIVED:  # the final state decides: it arrived after all, so its error goes
            row.last_error_code = None
        session.flush()
        # Its own contact problem (undelivered first, or given up by the crash rule) and earlier messages' go.
        delivery_recovered(session, message=row, now=now, actor=ACTOR)
    if status in _NOT_ARRIVED and row.participant_id:
        participant = session.get(Participant, row.participant_id)
        delivery_failed(
            session,
            message=row,
            participant=participant,
            error_code=error_code,
            now=now,
            actor=ACTOR,
            summary=f"{row.purpose.replace('_', ' ')} {status}" + (f" (error {error_code})" if error_code else ""),
            unsubscribed_why="carrier reports the number unsubscribed (21610)",
        )
    return True


def undelivered_dose_ids(session: Session, dose_ids: list[int]) -> set[int]:
    """Doses whose reminders all failed to arrive (none delivered or merely sent): a contact problem.
    The ids as one array parameter, looked up through ix_outbox_ref (the outbox keeps every message sent)."""
    rows = session.exec(
        select(OutboundMessage.ref_id, OutboundMessage.status).where(
            OutboundMessage.ref_type == "dose",
            in_values(session, OutboundMessage.ref_id, dose_ids),
            OutboundMessage.purpose.in_(
                [Purpose.DOSE_REMINDER.value, Purpose.DOSE_NUDGE.value, Purpose.DOSE_AND_VAS.value]
            ),
        )
    ).all()
    reached, failed = set(), set()
    for dose_id, status in rows:
        if status in (OutboxStatus.UNDELIVERED.value, OutboxStatus.FAILED.value):
            failed.add(dose_id)
        elif status in (OutboxStatus.SENT.value, OutboxStatus.DELIVERED.value):
            reached.add(dose_id)
    return failed - reached
