"""The crash rule as a nurse sees it: a reminder stuck twice by crashed senders is given up on, never silently."""

from datetime import timedelta

from sqlmodel import select

from backend.runtime.jobs import run_job
from notifications.crash_rule import recover_stuck
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


def _callback(client, outbox_id, status, sid="SM" + "c" * 32):
    from tests.sms_helpers import post_signed

    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32}
    return post_signed(client, f"/sms/status?outbox={outbox_id}", params)


def test_a_status_callback_for_a_send_the_crash_left_unrecorded_stops_the_re_send(
    app, client, session, clock, twilio, database
):
    _planned(app, session, clock)
    _crash_while_sending(database, clock)  # Twilio took it; the dispatcher died before writing the SID
    row = _reminder(database)
    assert _callback(client, row.id, "delivered").status_code == 204

    run_job(app, "dispatch_outbox")

    row = _reminder(database)
    assert (row.status, row.provider_status, row.provider_sid) == ("delivered", "delivered", "SM" + "c" * 32)
    assert twilio.requests_seen() == 0 and row.recoveries == 0  # not sent a second time


def test_a_message_given_up_on_that_arrived_after_all_resolves_its_contact_problem(
    app, client, session, clock, twilio, database
):
    _planned(app, session, clock)
    _crash_while_sending(database, clock)
    with database.session() as s:
        recover_stuck(s, now=utcnow(), stale_after=STALE - timedelta(seconds=1))
    _crash_while_sending(database, clock)
    run_job(app, "dispatch_outbox")
    row = _reminder(database)
    [alert] = _contact_problems(database)
    assert row.status == OutboxStatus.FAILED.value and alert.state == "open"

    assert _callback(client, row.id, "sent").status_code == 204  # it reached Twilio: no longer failed, still open
    assert _reminder(database).status == "sent" and _contact_problems(database)[0].state == "open"
    assert _callback(client, row.id, "delivered").status_code == 204

    row = _reminder(database)
    [alert] = _contact_problems(database)
    assert (row.status, row.last_error) == ("delivered", "")
    assert alert.state == "resolved" and "delivered" in alert.resolution_note


def test_a_callback_naming_a_row_that_has_another_sid_changes_nothing(app, client, session, clock, twilio, database):
    _planned(app, session, clock)
    run_job(app, "dispatch_outbox")
    row = _reminder(database)
    assert _callback(client, row.id, "undelivered", sid="SM" + "d" * 32).status_code == 204
    after = _reminder(database)
    assert (after.status, after.provider_sid) == (row.status, row.provider_sid)
