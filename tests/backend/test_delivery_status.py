"""Delivery statuses follow the message's real fate: forward only even when callbacks race, every
Twilio status applied, and a message that arrives after all takes its contact problem with it."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import select

from backend.app import create_app
from backend.db import get_database
from backend.operations.delivery import record_delivery_status
from notifications.models import OutboundMessage, Purpose
from schedules.dbtypes import utcnow
from schedules.models import Alert, AlertKind
from tests.backend.test_webhooks_sms import _reminder_sent, _status
from tests.conftest import fresh_database_url, migrate_database
from tests.conftest import test_settings as settings_for
from tests.factories import make_sent_messages
from tests.sms_helpers import DOSE_REMINDERS, fresh, received, standin, twilio  # noqa: F401 (fixtures)

MESSAGES = 30
RACERS = 4


def _sent_reminder(app, session, clock, twilio, database) -> OutboundMessage:
    _reminder_sent(app, session, clock)
    [(_, row)] = received(twilio, database, DOSE_REMINDERS)
    return row


def test_undelivered_then_read_ends_delivered_and_resolves_the_contact_problem(
    app, client, session, clock, twilio, database
):
    row = _sent_reminder(app, session, clock, twilio, database)
    assert _status(client, row.provider_sid, "undelivered", 30003).status_code == 204
    assert _status(client, row.provider_sid, "read").status_code == 204
    with fresh(database) as s:
        after = s.get(OutboundMessage, row.id)
        [alert] = s.exec(select(Alert).where(Alert.kind == AlertKind.CONTACT_PROBLEM.value)).all()
    assert (after.status, after.provider_status, after.last_error_code) == ("delivered", "read", None)
    assert alert.state == "resolved" and "delivered" in alert.resolution_note


@pytest.mark.parametrize(
    "twilio_status, ours, contact_problem",
    [("partially_delivered", "delivered", False), ("canceled", "failed", True), ("scheduled", "sent", False)],
)
def test_every_documented_status_is_applied(
    app, client, session, clock, twilio, database, twilio_status, ours, contact_problem
):
    row = _sent_reminder(app, session, clock, twilio, database)
    assert _status(client, row.provider_sid, twilio_status).status_code == 204
    with fresh(database) as s:
        after = s.get(OutboundMessage, row.id)
        alerts = s.exec(select(Alert).where(Alert.kind == AlertKind.CONTACT_PROBLEM.value)).all()
    assert after.status == ours and bool(alerts) is contact_problem
    if twilio_status != "scheduled":  # 'scheduled' ranks with 'queued': no news after the send
        assert after.provider_status == twilio_status


@pytest.fixture
def committed_messages(tmp_path):
    """An app on its own migrated database with MESSAGES sent messages, committed (racing needs real commits)."""
    with fresh_database_url(tmp_path) as url:
        migrate_database(url, tmp_path)
        app = create_app(settings_for(url, INSTANCE_DIR=str(tmp_path)))
        with get_database(app).session() as session:
            sids = make_sent_messages(session, MESSAGES, now=utcnow())
        yield app, sids
        get_database(app).engine.dispose()


def _race(app, sid: str, statuses: tuple[str, ...]) -> None:
    """Apply these callbacks for one message at the same moment, each in its own transaction."""
    barrier = threading.Barrier(len(statuses))
    failures = []

    def deliver(status: str) -> None:
        try:
            barrier.wait()
            with get_database(app).session() as session:
                record_delivery_status(session, message_sid=sid, status=status, error_code=None, now=utcnow())
        except Exception as exc:  # reported below: a racing thread must not fail silently
            failures.append(exc)

    threads = [threading.Thread(target=deliver, args=(status,)) for status in statuses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []


def test_racing_callbacks_never_move_a_message_backwards(committed_messages):
    app, sids = committed_messages
    for sid in sids:
        _race(app, sid, ("delivered",) + ("sent",) * (RACERS - 1))
    for sid in sids:
        _race(app, sid, ("undelivered", "sent"))
    with get_database(app).session() as session:
        rows = session.exec(select(OutboundMessage).where(OutboundMessage.provider_sid.in_(sids))).all()
    assert sorted({(row.status, row.provider_status) for row in rows}) == [("delivered", "delivered")]
    assert len(rows) == MESSAGES


def test_a_later_message_delivered_resolves_an_earlier_messages_contact_problem(
    app, client, session, clock, twilio, database
):
    from backend.runtime.jobs import run_job
    from tests.conftest import utc

    first = _sent_reminder(app, session, clock, twilio, database)
    assert _status(client, first.provider_sid, "undelivered", 30003).status_code == 204
    clock.move_to(utc("2026-03-03T12:00Z"))  # the next dose's reminder goes out and arrives
    run_job(app, "plan_messages")
    run_job(app, "dispatch_outbox")
    later = [row for _, row in received(twilio, database, DOSE_REMINDERS) if row.id != first.id][-1]
    assert _status(client, later.provider_sid, "delivered").status_code == 204

    with fresh(database) as s:
        [alert] = s.exec(select(Alert).where(Alert.kind == AlertKind.CONTACT_PROBLEM.value)).all()
        earlier = s.get(OutboundMessage, first.id)
    assert earlier.status == "undelivered"  # its own fate stands
    assert alert.state == "resolved" and alert.resolution_note == "a later message (dose reminder) was delivered"
