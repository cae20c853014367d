"""The crash rule as a nurse sees it: a reminder stuck twice by crashed senders is given up on, never silently."""

from datetime import timedelta

from sqlmodel import select

from backend.runtime.jobs import run_job
from notifications.dispatch import claim_due
from notifications.models import OutboundMessage, OutboxStatus, Purpose
from schedules.dbtypes import utcnow
from schedules.models import Alert, AlertKind
from tests.notifications.test_dispatch_retries import DUE, _planned, _reminder
from tests.sms_helpers import fresh, standin, twilio  # noqa: F401 (fixtures)

STALE = timedelta(seconds=301)  # past SENDING_STALE_AFTER_SECONDS (300)


def _crash_while_sending(database, clock):
    """A dispatcher claims the reminder and dies before recording anything."""
    with database.session() as s:
        ids = claim_due(s, now=utcnow(), limit=10, worker="dispatch-dead")
    assert ids
    clock.move_to(utcnow() + STALE)


def _contact_problems(database):
    with fresh(database) as s:
        return s.exec(select(Alert).where(Alert.kind == AlertKind.CONTACT_PROBLEM.value)).all()


def test_first_crash_puts_the_reminder_back_and_it_is_sent(app, session, clock, twilio, database):
    _planned(app, session, clock)
    _crash_while_sending(database, clock)

    run_job(app, "dispatch_outbox")

    row = _reminder(database)
    assert row.status == OutboxStatus.SENT.value and row.recoveries == 1
    assert len(twilio.messages) == 1 and not _contact_problems(database)


def test_a_second_crash_gives_up_and_opens_a_contact_problem_saying_it_may_not_have_arrived(
    app, session, clock, twilio, database
):
    _planned(app, session, clock)
    _crash_while_sending(database, clock)
    with database.session() as s:  # recovered once, then claimed and lost again
        from notifications.crash_rule import recover_stuck

        assert recover_stuck(s, now=utcnow(), stale_after=STALE - timedelta(seconds=1)) >= 1
    _crash_while_sending(database, clock)

    run_job(app, "dispatch_outbox")

    row = _reminder(database)
    assert row.status == OutboxStatus.FAILED.value and "second dispatcher crash" in row.last_error
    assert twilio.requests_seen() == 0  # never re-sent a second time
    (alert,) = [a for a in _contact_problems(database) if a.ref_id == row.id]
    assert "may not have arrived" in alert.summary and alert.state == "open"
    with fresh(database) as s:
        others = s.exec(select(OutboundMessage).where(OutboundMessage.purpose != Purpose.DOSE_REMINDER.value)).all()
    assert all(o.status != OutboxStatus.SENDING.value for o in others)
