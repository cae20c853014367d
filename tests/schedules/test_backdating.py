"""Back-dated enrollment: the limit in local days; past doses wait for a nurse instead of opening alerts."""

from __future__ import annotations

import dataclasses
from datetime import date, time, timedelta
from zoneinfo import available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import func, select

from schedules.adherence import adherence_of
from schedules.backdating import check_first_dose_date
from schedules.calendar import is_valid_zone, local_wall_to_utc, to_local
from schedules.changes import Actor
from schedules.doses import report_dose
from schedules.errors import InvalidInput
from schedules.missed import flag_missed_doses
from schedules.models import Alert, Participant
from schedules.protocol import load_protocol_file, protocol_from_dict
from schedules.queries import doses_of
from tests.conftest import utc
from tests.factories import PROTOCOL_FILE, ROOT, make_participant

PROTOCOL = load_protocol_file(PROTOCOL_FILE)
NURSE = Actor("staff", "staff:nurse@example.org")
# 10:00 on 8 March in Shanghai: a 1 March start is exactly 7 days back. The doses of 1, 3 and 5 March
# have closed (12:00 the next day); 7 March's window is still open until 12:00 today.
ENROLLED = utc("2026-03-08T02:00Z")


def test_a_first_dose_eight_days_back_is_refused_with_a_sentence_and_nothing_is_written(session):
    with pytest.raises(InvalidInput) as refused:
        make_participant(session, first_dose=date(2026, 3, 1), now=utc("2026-03-09T02:00Z"))
    assert refused.value.field == "first_dose_date"
    assert refused.value.message == (
        "the first dose date 2026-03-01 is 8 days before the participant's today (2026-03-09 in Asia/Shanghai); "
        "this study accepts a first dose at most 7 days in the past"
    )
    assert session.exec(select(func.count()).select_from(Participant)).one() == 0


def test_nine_months_back_opens_no_63_alerts_it_is_refused(session):
    with pytest.raises(InvalidInput, match="275 days before"):
        make_participant(session, first_dose=date(2026, 3, 1), now=utc("2026-12-01T02:00Z"))


def test_doses_closed_before_enrollment_open_no_alert_whenever_the_job_runs(session):
    participant = make_participant(session, first_dose=date(2026, 3, 1), now=ENROLLED)
    doses = doses_of(session, participant.id)
    before = [d for d in doses if d.window_closes_at <= ENROLLED]
    assert [d.local_date.day for d in before] == [1, 3, 5]
    runs = [
        ENROLLED,
        ENROLLED + timedelta(minutes=1),
        utc("2026-03-08T04:01Z"),  # 7 March's window closes: that one was ours to remind, so it is missed
        utc("2026-03-20T00:00Z"),
        utc("2026-06-30T00:00Z"),  # after the last dose
    ]
    for now in runs:
        flag_missed_doses(session, now=now)
        alerted = set(session.exec(select(Alert.ref_id).where(Alert.participant_id == participant.id)).all())
        assert not alerted & {d.id for d in before}, now
        assert {d.state for d in before} == {"scheduled"}, now
    missed = [d for d in doses if d.state == "missed"]
    assert missed[0].local_date == date(2026, 3, 7) and len(missed) == len(doses) - 3


def test_adherence_leaves_out_doses_waiting_for_entry_and_counts_them_once_a_nurse_records_them(session):
    participant = make_participant(session, first_dose=date(2026, 3, 1), now=ENROLLED)
    after_close = utc("2026-03-08T04:01Z")
    flag_missed_doses(session, now=after_close)
    doses = doses_of(session, participant.id)
    figures = adherence_of(doses, now=after_close, enrolled_at=participant.enrolled_at)
    # Only 7 March is due: the three from before enrollment are neither due nor missed yet.
    assert (figures.counted, figures.taken, figures.awaiting_entry) == (1, 0, 3)

    first, second, third = doses[:3]
    entered = utc("2026-03-08T05:00Z")
    # Taken at 20:30 on 1 March (Shanghai), inside its window: on time, though entered a week later.
    report_dose(session, dose=first, taken=True, actor=NURSE, now=entered, taken_at=utc("2026-03-01T12:30Z"))
    report_dose(session, dose=second, taken=True, actor=NURSE, now=entered)  # no time known: late
    report_dose(session, dose=third, taken=False, actor=NURSE, now=entered)
    assert [first.state, second.state, third.state] == ["taken", "taken_late", "skipped"]
    # 7 March was missed (no report by its close); taken at 21:00 that day, as the nurse now enters: on time,
    # judged like every dose by when it was taken, not when it was reported.
    seventh = doses[3]
    report_dose(session, dose=seventh, taken=True, actor=NURSE, now=entered, taken_at=utc("2026-03-07T13:00Z"))
    assert seventh.state == "taken"

    figures = adherence_of(doses, now=entered, enrolled_at=participant.enrolled_at)
    assert (figures.counted, figures.taken, figures.on_time, figures.awaiting_entry) == (4, 3, 2, 0)
    assert session.exec(select(func.count()).select_from(Alert)).one() == 1  # 7 March's only, now resolved


# --- the limit, in the participant's local days ------------------------------------------------------

# Every zone a participant may live in: UTC+14 to UTC-12, half- and quarter-hour offsets, DST at midnight.
ZONES = sorted(z for z in available_timezones() if is_valid_zone(z))


@given(
    zone=st.sampled_from(ZONES),
    today=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
    limit=st.integers(0, 30),
)
def test_the_limit_is_exactly_max_backdate_days_of_the_participants_local_calendar(zone, today, limit):
    protocol = dataclasses.replace(
        PROTOCOL, enrollment=dataclasses.replace(PROTOCOL.enrollment, max_backdate_days=limit)
    )
    # The first and the last instant of `today` on the participant's wall clock (a midnight in a DST gap
    # moves forward, still on that day).
    starts = local_wall_to_utc(today, time(0), zone)
    ends = local_wall_to_utc(today + timedelta(days=1), time(0), zone) - timedelta(microseconds=1)
    for now in (starts, ends):
        assert to_local(now, zone).date() == today
        oldest = today - timedelta(days=limit)
        assert check_first_dose_date(protocol, oldest, zone=zone, now=now) == oldest
        with pytest.raises(InvalidInput) as refused:
            check_first_dose_date(protocol, oldest - timedelta(days=1), zone=zone, now=now)
        assert refused.value.field == "first_dose_date" and f"at most {limit} day" in refused.value.message


# --- the protocol setting ----------------------------------------------------------------------------


def test_max_backdate_days_is_read_and_defaults_to_seven_for_files_without_it():
    assert PROTOCOL.enrollment.max_backdate_days == 7
    assert load_protocol_file(ROOT / "protocols" / "NCT04062019.toml").enrollment.max_backdate_days == 7
    older = PROTOCOL.to_dict()
    del older["enrollment"]  # a protocol stored before the setting existed
    assert protocol_from_dict(older).enrollment.max_backdate_days == 7
    with pytest.raises(Exception, match="enrollment.max_backdate_days"):
        protocol_from_dict({**older, "enrollment": {"max_backdate_days": -1}})
