"""Dispatch outcomes through the real Twilio SDK and the stand-in: retries, back-off, permanent refusals."""

from datetime import date, timedelta

from sqlmodel import select

from backend.config import replace_settings
from backend.runtime.jobs import run_job
from notifications.models import OutboundMessage, OutboxStatus, Purpose
from schedules.dbtypes import utcnow
from schedules.models import Alert, AlertKind
from tests.conftest import utc
from tests.factories import make_participant
from tests.sms_helpers import fresh, received, standin, twilio  # noqa: F401 (fixtures)

DUE = utc("2026-03-03T12:00Z")  # dose 2 (3 March, 20:00 Shanghai): no VAS prompt that day


def _reminder(database):
    with fresh(database) as s:
        return s.exec(
            select(OutboundMessage).where(
                OutboundMessage.purpose == Purpose.DOSE_REMINDER.value, OutboundMessage.due_at == DUE
            )
        ).one()


def _planned(app, session, clock):
    clock.move_to(DUE - timedelta(hours=2))
    make_participant(session, first_dose=date(2026, 3, 1), now=DUE - timedelta(days=5))
    session.commit()
    run_job(app, "plan_messages")
    clock.move_to(DUE)


def _reminders_received(twilio, database):
    return [at for at, row in received(twilio, database, Purpose.DOSE_REMINDER.value)]


def test_500_then_200_is_sent_once_with_two_attempts(app, session, clock, twilio, database):
    _planned(app, session, clock)
    twilio.fail_next(status=500)

    first = run_job(app, "dispatch_outbox")
    row = _reminder(database)
    assert "retrying 1" in first
    assert row.status == OutboxStatus.PLANNED.value and row.attempts == 1 and "HTTP 500" in row.last_error
    assert row.next_attempt_at > DUE
    run_job(app, "dispatch_outbox")  # not due again yet
    assert twilio.requests_seen() == 1

    clock.move_to(row.next_attempt_at)
    run_job(app, "dispatch_outbox")

    row = _reminder(database)
    assert row.status == OutboxStatus.SENT.value and row.attempts == 2 and row.provider_sid.startswith("SM")
    assert _reminders_received(twilio, database) == [row.next_attempt_at]
    assert twilio.requests_seen() == 2
    run_job(app, "dispatch_outbox")
    assert len(twilio.messages) == 1


def test_429_with_retry_after_waits_that_long(app, session, clock, twilio, database):
    _planned(app, session, clock)
    twilio.fail_next(status=429, code=20429, message="Too Many Requests", retry_after=120)

    run_job(app, "dispatch_outbox")

    row = _reminder(database)
    assert row.status == OutboxStatus.PLANNED.value and row.next_attempt_at == DUE + timedelta(seconds=120)
    clock.move_to(DUE + timedelta(seconds=119))
    run_job(app, "dispatch_outbox")
    assert twilio.requests_seen() == 1
    clock.move_to(DUE + timedelta(seconds=120))
    run_job(app, "dispatch_outbox")
    assert _reminders_received(twilio, database) == [DUE + timedelta(seconds=120)]
    assert _reminder(database).attempts == 2


def test_429_without_retry_after_backs_off_exponentially(app, session, clock, twilio, database):
    _planned(app, session, clock)
    twilio.fail_next(status=429, code=20429, count=3)

    delays = []
    for _ in range(3):
        run_job(app, "dispatch_outbox")
        row = _reminder(database)
        delays.append((row.next_attempt_at - utcnow()).total_seconds())
        clock.move_to(row.next_attempt_at)
    run_job(app, "dispatch_outbox")

    assert delays == [5, 10, 20]
    assert _reminder(database).status == OutboxStatus.SENT.value and len(twilio.messages) == 1


def test_permanent_refusal_is_recorded_once_with_its_code_and_a_contact_problem(app, session, clock, twilio, database):
    _planned(app, session, clock)
    twilio.fail_next(status=400, code=21211, message="Invalid 'To' Phone Number")

    summary = run_job(app, "dispatch_outbox")
    clock.move_to(DUE + timedelta(minutes=30))
    run_job(app, "dispatch_outbox")

    row = _reminder(database)
    assert "failed 1" in summary
    assert row.status == OutboxStatus.FAILED.value and row.attempts == 1 and row.last_error_code == 21211
    assert twilio.requests_seen() == 1
    with fresh(database) as s:
        [alert] = s.exec(select(Alert)).all()
    assert (alert.kind, alert.priority) == (AlertKind.CONTACT_PROBLEM.value, "high")


def test_sends_carry_the_status_callback_url_and_validity_period(app, session, clock, twilio, database, standin):
    from backend.extensions import set_sender
    from notifications.senders import build_sender

    replace_settings(
        app.config,
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_FROM_NUMBER="+15005550006",
        TWILIO_API_BASE_URL=standin.url,
    )
    set_sender(app, build_sender(app.config))  # what `flask dispatch` builds from its settings
    _planned(app, session, clock)

    run_job(app, "dispatch_outbox")

    [message] = twilio.messages
    assert message["StatusCallback"] == f"https://trial.example.org/sms/status?outbox={_reminder(database).id}"
    assert message["ValidityPeriod"] == "7200"


def test_a_sender_bug_fails_that_message_only_and_the_rest_of_the_batch_is_recorded(
    app, session, clock, twilio, database
):
    from backend.extensions import get_sender, set_sender

    inner = get_sender(app)

    class Flaky:
        name = "twilio"

        def send(self, *, to, body, status_callback=None):
            if body.startswith("提醒"):
                raise RuntimeError("SDK surprise")
            return inner.send(to=to, body=body, status_callback=status_callback)

    set_sender(app, Flaky())
    _planned(app, session, clock)
    replace_settings(app.config, DIGEST_WHEN_EMPTY=True)  # a digest even with no alert open
    run_job(app, "send_daily_digest")  # the nurses' digest shares the batch with the reminder

    summary = run_job(app, "dispatch_outbox")

    row = _reminder(database)
    assert row.status == OutboxStatus.FAILED.value and row.attempts == 1 and "RuntimeError" in row.last_error
    with fresh(database) as s:
        statuses = {r.purpose: r.status for r in s.exec(select(OutboundMessage)).all()}
    assert statuses == {"dose_reminder": "failed", "dose_nudge": "planned", "digest": "sent"}
    assert summary.startswith("claimed 2, sent 1") and "failed 1" in summary
    assert [r.purpose for _, r in received(twilio, database)] == ["digest"]


def test_timeouts_are_ambiguous_so_they_count_against_max_attempts_even_before_the_deadline(
    app, session, clock, twilio, database
):
    from backend.extensions import set_sender
    from tests.sms_helpers import twilio_sender

    replace_settings(app.config, DISPATCH_MAX_ATTEMPTS=2)
    set_sender(app, twilio_sender(twilio, timeout_seconds=0.3))
    _planned(app, session, clock)
    twilio.hang_next(1.0, count=2)  # Twilio takes each create but answers too late

    run_job(app, "dispatch_outbox")
    clock.move_to(_reminder(database).next_attempt_at)
    run_job(app, "dispatch_outbox")
    clock.move_to(DUE + timedelta(minutes=30))
    run_job(app, "dispatch_outbox")

    row = _reminder(database)
    assert row.status == OutboxStatus.FAILED.value and row.attempts == 2 and "did not answer" in row.last_error
    assert twilio.requests_seen() == 2  # each ambiguous try may have reached the phone: at most max_attempts copies
    with fresh(database) as s:
        [alert] = s.exec(select(Alert)).all()
    assert alert.kind == AlertKind.CONTACT_PROBLEM.value and "no answer from the provider" in alert.summary


def test_a_broken_send_rate_cap_claims_nothing_so_the_reminder_waits_unharmed_for_the_next_run(
    app, session, clock, twilio, database
):
    from backend.runtime.jobs import dispatcher

    class BrokenCap:
        def take(self, most):
            raise ConnectionError("rate store unreachable")

    _planned(app, session, clock)
    worker = dispatcher(app)
    worker.limiter = BrokenCap()
    with app.app_context():
        report = worker.run(until_idle=True)

    row = _reminder(database)
    assert (report.claimed, report.sent, report.failed) == (0, 0, 0)
    # Tokens come before the claim: the row was never taken, so no attempt and no crash-rule exposure.
    assert row.status == OutboxStatus.PLANNED.value and row.attempts == 0
    assert twilio.requests_seen() == 0
    assert not session.exec(select(Alert).where(Alert.kind == AlertKind.CONTACT_PROBLEM.value)).all()

    run_job(app, "dispatch_outbox")  # the cap works again
    assert _reminder(database).status == OutboxStatus.SENT.value and len(twilio.messages) == 1
