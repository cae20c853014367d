"""SMS consent changes: opting out stops every message (nurses are told); opting back in re-plans them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from notifications.planning import sync_participant_messages
from schedules.alerts import open_alert, resolve_by_events
from schedules.changes import Actor, acting
from schedules.models import AlertKind, Participant


def mark_opted_out(session: Session, *, participant: Participant, now: datetime, actor: Actor, why: str) -> None:
    """Stop every message to the participant and tell nurses (they stay in the trial)."""
    if not participant.opted_out:
        with acting(session, actor, why):
            participant.opted_out, participant.opted_out_at = True, now
            session.add(participant)
        # One alert per opt-out (a repeated STOP or a later 21610 is the same news); a STOP after START is new.
        open_alert(
            session,
            participant=participant,
            site_id=participant.site_id,
            kind=AlertKind.OPTED_OUT.value,
            dedupe_key=f"opted_out:participant:{participant.id}:{now.isoformat(timespec='seconds')}",
            now=now,
            actor=actor,
            ref_type="participant",
            ref_id=participant.id,
            summary=f"opted out of SMS: {why}",
        )
    sync_participant_messages(session, participant=participant, now=now)


def mark_opted_in(session: Session, *, participant: Participant, now: datetime, actor: Actor, why: str) -> None:
    """Allow messages to the participant again and plan what is due; nothing changes if they never opted out."""
    if not participant.opted_out:
        return
    with acting(session, actor, why):
        participant.opted_out, participant.opted_out_at = False, None
        session.add(participant)
    resolve_by_events(
        session,
        participant_id=participant.id,
        kind=AlertKind.OPTED_OUT.value,
        note=f"opted back in to SMS: {why}",
        actor=actor,
        now=now,
    )
    sync_participant_messages(session, participant=participant, now=now)
