"""Consent changes: opting out cancels planned messages and tells nurses once; opting back in allows messages again."""

from datetime import date, timedelta

from sqlmodel import select

from notifications.consent import mark_opted_in, mark_opted_out
from notifications.models import OutboundMessage, OutboxStatus
from notifications.planning import sync_participant_messages
from schedules.changes import Actor
from schedules.models import Alert, AlertKind
from tests.conftest import utc
from tests.factories import make_participant

NOW = utc("2026-03-03T10:00Z")
ACTOR = Actor("sms", "test")


def _planned(session):
    return session.exec(select(OutboundMessage).where(OutboundMessage.status == OutboxStatus.PLANNED.value)).all()


def test_opting_out_cancels_planned_messages_and_opens_one_alert_and_opting_in_allows_messages_again(session):
    participant = make_participant(session, first_dose=date(2026, 3, 1), now=NOW - timedelta(days=5))
    sync_participant_messages(session, participant=participant, now=NOW)
    assert _planned(session)

    mark_opted_out(session, participant=participant, now=NOW, actor=ACTOR, why="participant sent STOP")
    mark_opted_out(
        session, participant=participant, now=NOW + timedelta(minutes=1), actor=ACTOR, why="21610"
    )  # same news
    assert participant.opted_out and participant.opted_out_at == NOW
    assert not _planned(session)
    assert len(session.exec(select(Alert).where(Alert.kind == AlertKind.OPTED_OUT.value)).all()) == 1

    mark_opted_in(
        session, participant=participant, now=NOW + timedelta(minutes=2), actor=ACTOR, why="participant sent START"
    )
    assert not participant.opted_out and participant.opted_out_at is None
    mark_opted_in(
        session, participant=participant, now=NOW + timedelta(minutes=3), actor=ACTOR, why="START again"
    )  # no change
    assert not participant.opted_out


def test_opting_back_in_resolves_the_opted_out_alert_with_the_reason(session):
    participant = make_participant(session, first_dose=date(2026, 3, 1), now=NOW - timedelta(days=5))
    mark_opted_out(session, participant=participant, now=NOW, actor=ACTOR, why="participant sent STOP")
    mark_opted_in(
        session, participant=participant, now=NOW + timedelta(hours=1), actor=ACTOR, why="participant sent START"
    )
    [alert] = session.exec(select(Alert).where(Alert.kind == AlertKind.OPTED_OUT.value)).all()
    assert alert.state == "resolved" and alert.resolved_at == NOW + timedelta(hours=1)
    assert alert.resolution_note == "opted back in to SMS: participant sent START"
