"""Dose reminders and nudges name the dose's own date as seen on the day they arrive: "today" on the dose day,
"yesterday" the morning after, the bare date otherwise; and none is sent once that day is over."""

from dataclasses import replace
from datetime import date, time, timedelta
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.models import Purpose
from notifications.planning import wanted_for_dose
from schedules.calendar import to_local
from schedules.planning import time_dose
from schedules.protocol import load_protocol_file
from tests.conftest import utc
from tests.factories import make_participant
from tests.sms_helpers import received, run_jobs_across, standin, twilio  # noqa: F401 (fixtures)

PROTOCOL = load_protocol_file(Path(__file__).resolve().parents[2] / "protocols" / "NCT04237987.toml")
ZONES = [
    "Asia/Shanghai",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # a half-hour DST shift
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
    "America/Santiago",  # DST changes at midnight
    "Asia/Kolkata",
    "UTC",
]
# The words each template uses for the dose's date (en), by what the day of sending is to the dose day.
TODAY = ("today's injection",)
YESTERDAY = ("yesterday's injection",)
DATED = ("your injection for",)


def _words(body: str) -> str:
    for name, words in (("today", TODAY), ("yesterday", YESTERDAY), ("dated", DATED)):
        if any(w in body for w in words):
            return name
    raise AssertionError(f"no day word in {body!r}")


def _expected(dose_day: date, sent_day: date, *, nudge: bool) -> str:
    days = (sent_day - dose_day).days
    if days == 0:
        return "today"
    return "yesterday" if days == 1 and nudge else "dated"


hhmm = st.builds(time, st.integers(0, 23), st.sampled_from([0, 1, 15, 30, 45, 59]))


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)),
    at=hhmm,
    nudge_after=st.integers(0, 36 * 60),
    quiet=st.tuples(hhmm, hhmm),
    closes_day_offset=st.integers(1, 3),
)
def test_the_day_word_matches_the_local_day_of_every_moment_the_message_may_be_sent(
    zone, day, at, nudge_after, quiet, closes_day_offset
):
    protocol = replace(
        PROTOCOL,
        reminders=replace(
            PROTOCOL.reminders, nudge_after_minutes=nudge_after, quiet_start=quiet[0], quiet_end=quiet[1]
        ),
        dose_window=replace(PROTOCOL.dose_window, closes_day_offset=closes_day_offset),
    )
    planned = time_dose(protocol, day, zone=zone, reminder_time=at)
    dose = SimpleNamespace(id=7, local_date=day, due_at=planned.due_at, window_closes_at=planned.window_closes_at)
    participant = SimpleNamespace(time_zone=zone, language="en")

    for message in wanted_for_dose(dose, participant, protocol, site_phone="+86 10 0000 0000"):
        sent_day = to_local(message.due_at, zone).date()
        nudge = message.purpose == Purpose.DOSE_NUDGE.value
        assert _words(message.body) == _expected(day, sent_day, nudge=nudge), (message.purpose, message.body)
        assert day.isoformat() in message.body
        # Sent any time up to its last useful moment, it still arrives on that local day.
        last = to_local(message.not_after - timedelta(microseconds=1), zone).date()
        assert message.due_at <= message.not_after and last == sent_day, (message.due_at, message.not_after)


def test_a_next_morning_nudge_in_new_york_speaks_of_yesterdays_injection(app, session, clock, twilio, database):
    # 20:00 on 4 March (EST) is the reminder; 23:00 is quiet, so the nudge goes at 08:00 on 5 March.
    clock.move_to(utc("2026-03-03T00:00Z"))
    make_participant(
        session, time_zone="America/New_York", language="en", first_dose=date(2026, 3, 4), now=utc("2026-03-03T00:00Z")
    )
    session.commit()
    run_jobs_across(app, clock, utc("2026-03-04T22:00Z"), utc("2026-03-05T14:00Z"), timedelta(hours=1))

    [(at, nudge)] = received(twilio, database, Purpose.DOSE_NUDGE.value)
    assert at == utc("2026-03-05T13:00Z")
    assert nudge.body == (
        "Reminder: we have not heard about yesterday's injection (2026-03-04). "
        "Reply 1 if done, 2 if you could not take it."
    )


def test_a_reminder_chosen_late_in_the_evening_is_not_sent_after_midnight(app, session, clock, twilio, database):
    # 23:30 Shanghai (in quiet hours, chosen by the participant): a reminder delayed past midnight would say
    # "today" of yesterday, so its last useful moment is 00:00, not the usual two hours.
    clock.move_to(utc("2026-03-02T10:00Z"))
    make_participant(session, reminder_time="23:30", first_dose=date(2026, 3, 1), now=utc("2026-02-27T00:00Z"))
    session.commit()
    twilio.fail_next(status=503, count=1000)

    def twilio_back(now):
        if now == utc("2026-03-03T16:05Z"):  # 00:05 on 4 March in Shanghai
            twilio.reset()

    run_jobs_across(
        app, clock, utc("2026-03-03T15:00Z"), utc("2026-03-03T17:00Z"), timedelta(minutes=5), at_each=twilio_back
    )
    assert [row.purpose for _, row in received(twilio, database) if row.participant_id] == []
