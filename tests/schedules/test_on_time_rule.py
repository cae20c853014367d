"""On time or late is judged by when a dose was taken, never by when it was reported: a property over real
dose windows (DST zones included) and over reports made at any later moment."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedules.changes import Actor
from schedules.doses import outcome, report_dose, taken_on_time
from schedules.planning import time_dose
from schedules.protocol import load_protocol_file
from schedules.queries import doses_of
from schedules.wallclock import parse_hhmm
from tests.factories import PROTOCOL_FILE, make_participant

PROTOCOL = load_protocol_file(PROTOCOL_FILE)
ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe"]
NURSE = Actor("staff", "staff:1")
MINUTES = st.integers(min_value=-2 * 24 * 60, max_value=4 * 24 * 60)


def _window(day: date, zone: str):
    planned = time_dose(PROTOCOL, day, zone=zone, reminder_time=parse_hhmm("20:00"))
    return planned.window_opens_at, planned.window_closes_at


@given(st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)), st.sampled_from(ZONES), MINUTES)
def test_a_taken_dose_is_on_time_exactly_when_taken_inside_its_window(day, zone, minutes):
    opens, closes = _window(day, zone)

    class Planned:
        window_opens_at, window_closes_at = opens, closes

    taken_at = opens + timedelta(minutes=minutes)
    expected = "taken" if opens <= taken_at < closes else "taken_late"
    assert taken_on_time(Planned, taken_at) == (expected == "taken")
    assert outcome(Planned, taken=True, taken_at=taken_at) == expected
    assert outcome(Planned, taken=False, taken_at=taken_at) == "skipped"


@pytest.fixture
def doses(session):
    """45 planned doses of one participant, reported one per example."""
    participant = make_participant(session, first_dose=date(2026, 3, 1), now=datetime(2026, 2, 27, tzinfo=timezone.utc))
    return iter(doses_of(session, participant.id))


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(taken_minutes=st.integers(min_value=0, max_value=36 * 60), report_delay=st.integers(min_value=0, max_value=5000))
def test_the_report_time_never_decides(session, doses, taken_minutes, report_delay):
    dose = next(doses)
    taken_at = dose.window_opens_at + timedelta(minutes=taken_minutes)
    reported = taken_at + timedelta(minutes=report_delay)
    report_dose(session, dose=dose, taken=True, actor=NURSE, now=reported, taken_at=taken_at)
    assert dose.state == ("taken" if taken_at < dose.window_closes_at else "taken_late")
    assert (dose.taken_at, dose.reported_at) == (taken_at, reported)


def test_without_a_taken_time_the_report_itself_is_when_it_was_taken(session, doses):
    first, second = itertools.islice(doses, 2)
    report_dose(session, dose=first, taken=True, actor=NURSE, now=first.window_closes_at - timedelta(minutes=1))
    report_dose(session, dose=second, taken=True, actor=NURSE, now=second.window_closes_at)
    assert (first.state, second.state) == ("taken", "taken_late")
