"""Reminders over simulated weeks, through the scheduler's jobs, the real Twilio SDK and the stand-in:
one reminder per dose day at the chosen local time, nudges out of quiet hours, DST-proof, never stale."""

from datetime import date, datetime, timedelta, timezone

from sqlmodel import select

from backend.models import AuditEntry
from notifications.models import OutboundMessage, OutboxStatus, Purpose
from schedules.models import Dose
from tests.conftest import utc
from tests.factories import make_participant
from tests.sms_helpers import (
    DOSE_REMINDERS,
    PHONE,
    fresh,
    inbound_params,
    post_signed,
    received,
    reply_text,
    run_all_jobs,
    run_jobs_across,
    standin,
    twilio,
)  # noqa: F401 (fixtures)

HOUR = timedelta(hours=1)


def _dates(items):
    return sorted(at.date() for at, _ in items)


def test_two_weeks_in_shanghai_one_reminder_per_dose_day_and_nudges_only_when_unconfirmed(
    app, client, session, clock, twilio, database
):
    clock.move_to(utc("2026-02-28T00:00Z"))
    make_participant(session, time_zone="Asia/Shanghai", reminder_time="20:00", first_dose=date(2026, 3, 1))
    session.commit()
    confirm_on = {date(2026, 3, 1), date(2026, 3, 5), date(2026, 3, 9), date(2026, 3, 13)}
    replies = []

    def confirm_after_reminder(now):
        # 21:00 local on a day we chose to confirm: the participant answers the reminder with "1".
        if now.hour == 13 and now.date() in confirm_on:
            replies.append(reply_text(post_signed(client, "/sms/inbound", inbound_params("1"))))

    run_jobs_across(
        app, clock, utc("2026-02-28T00:00Z"), utc("2026-03-15T06:00Z"), HOUR, at_each=confirm_after_reminder
    )

    dose_days = [date(2026, 3, d) for d in (1, 3, 5, 7, 9, 11, 13)]
    reminders = received(twilio, database, DOSE_REMINDERS)
    assert [at for at, _ in reminders] == [
        datetime(d.year, d.month, d.day, 12, 0, tzinfo=timezone.utc) for d in dose_days
    ]
    to_participant = [m for m in twilio.messages if m["To"] == PHONE]
    assert len({row.ref_id for _, row in reminders}) == len(dose_days)  # one per dose, never two

    # Unconfirmed: 20:00 + 3 h = 23:00 is quiet, so the nudge waits for 08:00 local = 00:00Z next day.
    nudges = received(twilio, database, Purpose.DOSE_NUDGE.value)
    unconfirmed = [d for d in dose_days if d not in confirm_on]
    assert [at for at, _ in nudges] == [
        datetime(d.year, d.month, d.day, tzinfo=timezone.utc) + timedelta(days=1) for d in unconfirmed
    ]
    # ... and, arriving the next morning, they speak of yesterday's injection, on its own date.
    assert [row.body for _, row in nudges] == [
        f"再次提醒：我们还没有收到您昨天（{d.isoformat()}）的注射回复。已注射请回复 1，未注射请回复 2。"
        for d in unconfirmed
    ]

    # Weekly VAS prompts at the same chosen time: on 1 March in the reminder itself (one SMS asks both), on
    # 8 March (no dose) alone; nothing else went to the participant (on-call nurses get digests).
    vas = received(twilio, database, Purpose.VAS_PROMPT.value)
    assert [at for at, _ in vas] == [utc("2026-03-08T12:00Z")]
    assert [at for at, _ in received(twilio, database, Purpose.DOSE_AND_VAS.value)] == [utc("2026-03-01T12:00Z")]
    assert len(to_participant) == len(reminders) + len(nudges) + len(vas)
    assert {row.purpose for _, row in received(twilio, database)} - {
        "dose_reminder",
        "dose_and_vas",
        "dose_nudge",
        "vas_prompt",
    } == {"digest"}
    assert all("谢谢" in reply for reply in replies) and len(replies) == len(confirm_on)

    with fresh(database) as s:
        doses = {d.local_date: d.state for d in s.exec(select(Dose)).all()}
    assert {d: doses[d] for d in dose_days} == {d: ("taken" if d in confirm_on else "missed") for d in dose_days}


def test_new_york_reminder_stays_at_20_local_across_the_march_dst_change(app, session, clock, twilio, database):
    # US DST starts 2026-03-08 02:00 local: 20:00 EST is 01:00Z, 20:00 EDT is 00:00Z.
    clock.move_to(utc("2026-03-03T00:00Z"))
    make_participant(
        session,
        time_zone="America/New_York",
        language="en",
        reminder_time="20:00",
        first_dose=date(2026, 3, 4),
        now=utc("2026-03-03T00:00Z"),
    )
    session.commit()

    run_jobs_across(app, clock, utc("2026-03-04T22:00Z"), utc("2026-03-13T03:00Z"), HOUR)

    reminders = [at for at, _ in received(twilio, database, DOSE_REMINDERS)]
    assert reminders == [
        utc("2026-03-05T01:00Z"),
        utc("2026-03-07T01:00Z"),  # 4 and 6 March, EST
        utc("2026-03-09T00:00Z"),
        utc("2026-03-11T00:00Z"),
        utc("2026-03-13T00:00Z"),
    ]  # 8, 10, 12 March, EDT
    # Nudges: 23:00 local is quiet, so 08:00 local the next morning, again following the zone's offset.
    nudges = [at for at, _ in received(twilio, database, Purpose.DOSE_NUDGE.value)]
    assert nudges == [
        utc("2026-03-05T13:00Z"),
        utc("2026-03-07T13:00Z"),
        utc("2026-03-09T12:00Z"),
        utc("2026-03-11T12:00Z"),
    ]


def test_reminder_found_more_than_two_hours_late_is_expired_audited_and_never_sent(
    app, session, clock, twilio, database
):
    clock.move_to(utc("2026-03-01T06:00Z"))
    make_participant(session, first_dose=date(2026, 3, 1), now=utc("2026-03-01T06:00Z"))
    session.commit()
    run_all_jobs(app)  # planned for 12:00Z; then the sender goes down for the evening
    with fresh(database) as s:
        reminder = s.exec(select(OutboundMessage).where(OutboundMessage.purpose.in_(DOSE_REMINDERS))).one()
    assert reminder.status == OutboxStatus.PLANNED.value and reminder.due_at == utc("2026-03-01T12:00Z")

    clock.move_to(utc("2026-03-01T14:01Z"))  # 2 h 1 min after 20:00 local
    run_all_jobs(app)

    assert [row.purpose for _, row in received(twilio, database) if row.participant_id] == []
    with fresh(database) as s:
        row = s.get(OutboundMessage, reminder.id)
        audit = s.exec(
            select(AuditEntry).where(
                AuditEntry.entity == "outboundmessage",
                AuditEntry.entity_id == str(reminder.id),
                AuditEntry.field == "status",
            )
        ).all()
    assert row.status == OutboxStatus.EXPIRED.value and row.sent_at is None
    assert [(a.old_value, a.new_value, a.source) for a in audit] == [("planned", "expired", "job")]
    assert "late" in audit[0].reason

    # Later runs never revive it, and the rest of the evening goes on as planned (the 23:00 nudge moves to 08:00).
    run_jobs_across(app, clock, utc("2026-03-01T15:00Z"), utc("2026-03-02T01:00Z"), HOUR)
    assert [row.purpose for _, row in received(twilio, database) if row.participant_id] == [Purpose.DOSE_NUDGE.value]


def test_reminder_still_failing_at_the_stale_limit_expires_instead_of_arriving_late(
    app, session, clock, twilio, database
):
    clock.move_to(utc("2026-03-01T11:00Z"))
    make_participant(session, first_dose=date(2026, 3, 1), now=utc("2026-03-01T11:00Z"))
    session.commit()
    twilio.fail_next(status=503, count=1000)  # Twilio (or our route to it) is down all evening

    run_jobs_across(app, clock, utc("2026-03-01T12:00Z"), utc("2026-03-01T14:30Z"), timedelta(minutes=5))

    twilio.reset()  # back up
    run_jobs_across(app, clock, utc("2026-03-01T14:35Z"), utc("2026-03-01T15:00Z"), timedelta(minutes=5))
    assert [row.purpose for _, row in received(twilio, database) if row.participant_id] == []
    with fresh(database) as s:
        row = s.exec(select(OutboundMessage).where(OutboundMessage.purpose.in_(DOSE_REMINDERS))).one()
    assert row.status == OutboxStatus.EXPIRED.value
    assert row.attempts >= 2 and row.last_error_code is None and "503" in row.last_error


def test_a_late_reminder_never_arrives_in_quiet_hours(app, session, clock, twilio, database):
    # Chosen time 21:00 Shanghai (13:00Z): a retry may go until 22:00 local, not until 23:00.
    clock.move_to(utc("2026-03-03T10:00Z"))
    make_participant(session, reminder_time="21:00", first_dose=date(2026, 3, 1), now=utc("2026-02-27T00:00Z"))
    session.commit()
    run_all_jobs(app)
    twilio.fail_next(status=503, count=1000)

    def twilio_back(now):
        if now == utc("2026-03-03T14:05Z"):
            twilio.reset()

    run_jobs_across(
        app, clock, utc("2026-03-03T13:00Z"), utc("2026-03-03T15:00Z"), timedelta(minutes=5), at_each=twilio_back
    )

    assert [row.purpose for _, row in received(twilio, database) if row.participant_id] == []
    with fresh(database) as s:
        reminder = s.exec(
            select(OutboundMessage).where(
                OutboundMessage.purpose.in_(DOSE_REMINDERS),
                OutboundMessage.due_at == utc("2026-03-03T13:00Z"),
            )
        ).one()
    assert reminder.not_after == utc("2026-03-03T14:00Z") and reminder.status == OutboxStatus.EXPIRED.value
    # Its nudge (00:00 local is quiet) goes at 08:00 local, as usual.
    run_jobs_across(app, clock, utc("2026-03-03T23:00Z"), utc("2026-03-04T01:00Z"), HOUR)
    assert [(at, row.purpose) for at, row in received(twilio, database) if row.participant_id] == [
        (utc("2026-03-04T00:00Z"), Purpose.DOSE_NUDGE.value)
    ]
