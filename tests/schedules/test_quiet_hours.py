"""A reminder time in the protocol's quiet hours (22:00-08:00 in NCT04237987): the rule the nurse page warns by."""

from __future__ import annotations

from dataclasses import replace
from datetime import time

from hypothesis import given
from hypothesis import strategies as st

from schedules.planning import reminder_in_quiet_hours
from schedules.protocol import load_protocol_file
from tests.factories import PROTOCOL_FILE

PROTOCOL = load_protocol_file(PROTOCOL_FILE)


def test_the_edges_of_quiet_hours():
    assert reminder_in_quiet_hours(PROTOCOL, time(22, 0))
    assert reminder_in_quiet_hours(PROTOCOL, time(0, 0))
    assert reminder_in_quiet_hours(PROTOCOL, time(7, 59))
    assert not reminder_in_quiet_hours(PROTOCOL, time(8, 0))
    assert not reminder_in_quiet_hours(PROTOCOL, time(21, 59))


@given(st.times().map(lambda t: t.replace(second=0, microsecond=0)))
def test_quiet_hours_across_midnight_are_the_late_evening_and_early_morning(t):
    assert reminder_in_quiet_hours(PROTOCOL, t) == (t >= time(22, 0) or t < time(8, 0))


@given(st.times().map(lambda t: t.replace(second=0, microsecond=0)))
def test_quiet_hours_within_one_day(t):
    daytime = replace(PROTOCOL, reminders=replace(PROTOCOL.reminders, quiet_start=time(13, 0), quiet_end=time(14, 0)))
    assert reminder_in_quiet_hours(daytime, t) == (time(13, 0) <= t < time(14, 0))
