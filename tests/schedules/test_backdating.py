"""Back-dated enrollment: the limit is counted in the participant's own local days."""

from __future__ import annotations

import dataclasses
from datetime import date, time, timedelta
from zoneinfo import available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import func, select

from schedules.backdating import check_first_dose_date
from schedules.calendar import is_valid_zone, local_wall_to_utc, to_local
from schedules.errors import InvalidInput
from schedules.models import Participant
from schedules.protocol import load_protocol_file, protocol_from_dict
from tests.conftest import utc
from tests.factories import PROTOCOL_FILE, ROOT, make_participant

PROTOCOL = load_protocol_file(PROTOCOL_FILE)


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
