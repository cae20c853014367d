"""Property tests of the schedule maths over DST zones, leap years and month ends."""

import math
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from schedules.calendar import (
    add_months,
    dose_dates,
    dose_window,
    in_quiet_hours,
    local_wall_to_utc,
    next_allowed_send,
    to_local,
)

UTC = timezone.utc
ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Shanghai"]
FIRST_YEAR, LAST_YEAR = 2023, 2030  # includes leap years 2024 and 2028


def _offset_change_days(zone: str) -> list[date]:
    """Days whose local midnight has a different UTC offset from the next day's (zoneinfo's own data)."""
    tz = ZoneInfo(zone)
    day, days = date(FIRST_YEAR, 1, 1), []
    offset = datetime.combine(day, time(), tzinfo=tz).utcoffset()
    while day.year <= LAST_YEAR:
        following = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).utcoffset()
        if following != offset:
            days.append(day)
        day, offset = day + timedelta(days=1), following
    return days


DST_DAYS = {zone: _offset_change_days(zone) for zone in ZONES}
ALL_DST_DAYS = sorted({d for days in DST_DAYS.values() for d in days})
MONTH_ENDS = [
    date(y, m + 1, 1) - timedelta(days=1) if m < 12 else date(y, 12, 31)
    for y in range(FIRST_YEAR, LAST_YEAR + 1)
    for m in range(1, 13)
]

any_day = st.dates(date(FIRST_YEAR, 1, 1), date(LAST_YEAR, 12, 31))
# Plain random dates almost never hit a DST change or 29 February; lean on those on purpose.
days = st.one_of(any_day, st.sampled_from(ALL_DST_DAYS), st.sampled_from(MONTH_ENDS))
# Transitions happen between 00:00 and 03:00 local in these zones.
wall_times = st.one_of(
    st.times(),
    st.builds(time, st.integers(0, 3), st.sampled_from([0, 1, 15, 29, 30, 31, 45, 59])),
)
minute_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


def _wall(dt: datetime) -> datetime:
    return dt.replace(tzinfo=None, fold=0)


def _resolutions(day: date, at: time, tz: ZoneInfo) -> tuple[list[datetime], timedelta]:
    """Independently of fold: every UTC instant that shows this wall time, and the day's offset change."""
    wall = datetime.combine(day, at)
    offsets = {datetime.combine(day + timedelta(days=k), time(12), tzinfo=tz).utcoffset() for k in (-1, 0, 1)}
    exact = sorted(
        instant for offset in offsets if _wall((instant := (wall - offset).replace(tzinfo=UTC)).astimezone(tz)) == wall
    )
    change = max(offsets) - min(offsets)
    return exact, change


@given(zone=st.sampled_from(ZONES), day=days, at=wall_times)
def test_wall_time_reads_back_or_moves_forward_by_the_gap(zone, day, at):
    tz = ZoneInfo(zone)
    instant = local_wall_to_utc(day, at, zone)
    assert instant.utcoffset() == timedelta(0)
    wall = datetime.combine(day, at)
    back = _wall(to_local(instant, zone))
    exact, change = _resolutions(day, at, tz)
    if exact:
        assert back == wall
        assert instant == exact[0]  # ambiguous: the first occurrence
    else:
        # Only a real gap may move the time, and then by exactly its length.
        assert change > timedelta(0)
        assert back == wall + change


dose_first = st.one_of(any_day, st.sampled_from(MONTH_ENDS))


@given(
    first=dose_first,
    interval=st.integers(1, 14),
    months=st.integers(1, 12),
    resume_after=st.one_of(st.none(), st.integers(0, 400)),
)
def test_dose_dates_are_evenly_spaced_and_strictly_before_end(first, interval, months, resume_after):
    start = None if resume_after is None else first + timedelta(days=resume_after)
    dates = dose_dates(first, interval_days=interval, months=months, start=start)
    begin = first if start is None else start
    end = add_months(first, months)
    expected = max(0, math.ceil((end - begin).days / interval))
    assert len(dates) == expected
    if dates:
        assert dates[0] == begin
        assert dates[-1] < end <= dates[-1] + timedelta(days=interval)
    assert all(d < end for d in dates)
    assert all(b - a == timedelta(days=interval) for a, b in zip(dates, dates[1:]))


WINDOW_HOURS = {
    "America/New_York": {35.0, 36.0, 37.0},
    "Europe/London": {35.0, 36.0, 37.0},
    "Australia/Lord_Howe": {35.5, 36.0, 36.5},
    "Asia/Shanghai": {36.0},
}


@given(zone=st.sampled_from(ZONES), day=days)
def test_trial_dose_window_is_36_hours_except_across_a_clock_change(zone, day):
    opens, closes = dose_window(day, zone, opens_at=time(0), closes_at=time(12), closes_day_offset=1)
    assert opens < closes
    hours = (closes - opens) / timedelta(hours=1)
    assert hours in WINDOW_HOURS[zone]
    # The scan books a change on the day it happens, so the window (midnight to noon next day)
    # can only see changes booked on its own day or the next.
    if not {day, day + timedelta(days=1)} & set(DST_DAYS[zone]):
        assert hours == 36.0
    # The window is pinned to the local clock, not to elapsed time.
    assert to_local(closes, zone).date() == day + timedelta(days=1)
    assert to_local(closes, zone).time() == time(12)


instants = st.datetimes(datetime(FIRST_YEAR, 1, 1), datetime(LAST_YEAR, 12, 31), timezones=st.just(UTC))
# Near-transition instants: the hours either side of each DST change day.
dst_instants = st.builds(
    lambda d, minutes: datetime.combine(d, time(), tzinfo=UTC) + timedelta(minutes=minutes),
    st.sampled_from(ALL_DST_DAYS),
    st.integers(-24 * 60, 48 * 60),
)
quiet_bounds = st.one_of(
    st.just((time(22), time(8))),
    st.tuples(minute_times, minute_times),
)


@settings(max_examples=300)
@given(zone=st.sampled_from(ZONES), instant=st.one_of(instants, dst_instants), quiet=quiet_bounds)
@example(zone="America/New_York", instant=datetime(2023, 3, 12, tzinfo=UTC), quiet=(time(2, 15), time(2)))
def test_next_allowed_send_is_never_quiet_and_never_early(zone, instant, quiet):
    start, end = quiet
    sent = next_allowed_send(instant, zone, quiet_start=start, quiet_end=end)
    local = to_local(sent, zone)
    assert sent >= instant
    assert not in_quiet_hours(local.time(), start=start, end=end)
    if not in_quiet_hours(to_local(instant, zone).time(), start=start, end=end):
        assert sent == instant
    else:
        # It waits for the next local end of quiet hours, moved forward only if that time is in a gap.
        exact, change = _resolutions(local.date(), end, ZoneInfo(zone))
        if exact:
            assert local.time() == end
        else:
            assert _wall(local) == datetime.combine(local.date(), end) + change
        # The next day's end of quiet hours at the latest; the one after when that day's fell in a DST gap that
        # carried the clock past the allowed minutes (quiet 02:15-02:00 on New York's spring-forward day).
        skipped = not _resolutions((local - timedelta(days=1)).date(), end, ZoneInfo(zone))[0]
        assert sent - instant < timedelta(hours=49 if skipped else 25)


@given(zone=st.sampled_from(ZONES), instant=st.one_of(instants, dst_instants))
def test_default_quiet_hours_release_at_08_00_local(zone, instant):
    sent = next_allowed_send(instant, zone, quiet_start=time(22), quiet_end=time(8))
    if sent != instant:
        assert to_local(sent, zone).time() == time(8)


month_days = st.one_of(st.dates(date(1900, 1, 1), date(2200, 12, 31)), st.sampled_from(MONTH_ENDS))


@given(d=month_days, months=st.integers(-1200, 1200))
def test_add_months_lands_in_the_right_month_on_the_same_or_last_day(d, months):
    result = add_months(d, months)
    assert (result.year * 12 + result.month) - (d.year * 12 + d.month) == months
    next_month_first = date(result.year + result.month // 12, result.month % 12 + 1, 1)
    last_day = (next_month_first - timedelta(days=1)).day
    assert result.day == min(d.day, last_day)


@given(a=month_days, b=month_days, months=st.integers(-1200, 1200))
def test_add_months_is_monotone_in_the_date(a, b, months):
    early, late = sorted((a, b))
    assert add_months(early, months) <= add_months(late, months)


@given(d=month_days, m1=st.integers(-1200, 1200), m2=st.integers(-1200, 1200))
def test_add_months_is_monotone_in_the_months(d, m1, m2):
    fewer, more = sorted((m1, m2))
    assert add_months(d, fewer) <= add_months(d, more)
