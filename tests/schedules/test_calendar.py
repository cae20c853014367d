"""Examples of the schedule maths that the product's acceptance criteria name."""

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from schedules.calendar import (
    add_months,
    dose_dates,
    dose_window,
    in_quiet_hours,
    is_valid_zone,
    local_wall_to_utc,
    next_allowed_send,
    to_local,
    treatment_end,
)

UTC = timezone.utc
QUIET = {"quiet_start": time(22, 0), "quiet_end": time(8, 0)}
TRIAL_WINDOW = {"opens_at": time(0, 0), "closes_at": time(12, 0), "closes_day_offset": 1}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def offset_changes(zone: str, year: int) -> list[date]:
    """Days on which the zone's UTC offset at local midnight differs from the next day's."""
    tz = ZoneInfo(zone)
    day, changes = date(year, 1, 1), []
    while day.year == year:
        today = datetime.combine(day, time(), tzinfo=tz).utcoffset()
        tomorrow = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).utcoffset()
        if today != tomorrow:
            changes.append(day)
        day += timedelta(days=1)
    return changes


# --- every-other-day schedule -------------------------------------------------------------


def test_march_start_gives_46_doses_ending_30_may():
    dates = dose_dates(date(2026, 3, 1), interval_days=2, months=3)
    assert len(dates) == 46
    assert dates[0] == date(2026, 3, 1)
    assert dates[-1] == date(2026, 5, 30)


def test_january_start_gives_45_doses_ending_30_march():
    dates = dose_dates(date(2026, 1, 1), interval_days=2, months=3)
    assert len(dates) == 45
    assert dates[-1] == date(2026, 3, 30)


def test_treatment_end_is_exclusive_and_three_calendar_months_on():
    assert treatment_end(date(2026, 3, 1), months=3) == date(2026, 6, 1)
    assert date(2026, 6, 1) not in dose_dates(date(2026, 3, 1), interval_days=1, months=3)


def test_first_reminder_in_shanghai_at_20_00_is_noon_utc():
    first = dose_dates(date(2026, 3, 1), interval_days=2, months=3)[0]
    assert local_wall_to_utc(first, time(20, 0), "Asia/Shanghai") == utc(2026, 3, 1, 12, 0)


def test_resume_restarts_every_other_day_from_resume_date_with_same_end():
    dates = dose_dates(date(2026, 3, 1), interval_days=2, months=3, start=date(2026, 3, 15))
    assert dates[0] == date(2026, 3, 15)
    assert dates[-1] == date(2026, 5, 30)
    assert len(dates) == 39
    assert all(later - earlier == timedelta(days=2) for earlier, later in zip(dates, dates[1:]))


def test_resume_on_an_off_day_shifts_the_cadence_to_that_day():
    dates = dose_dates(date(2026, 3, 1), interval_days=2, months=3, start=date(2026, 3, 16))
    assert dates[:3] == [date(2026, 3, 16), date(2026, 3, 18), date(2026, 3, 20)]
    assert dates[-1] == date(2026, 5, 31)


def test_resume_at_or_after_end_gives_no_doses():
    assert dose_dates(date(2026, 3, 1), interval_days=2, months=3, start=date(2026, 6, 1)) == []


def test_explicit_end_overrides_protocol_length():
    dates = dose_dates(date(2026, 3, 1), interval_days=2, months=3, end=date(2026, 3, 7))
    assert dates == [date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 5)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval_days": 0, "months": 3},
        {"interval_days": 2, "months": 0},
        {"interval_days": 2, "months": 3, "start": date(2026, 2, 27)},
    ],
)
def test_nonsense_schedules_are_refused(kwargs):
    with pytest.raises(ValueError):
        dose_dates(date(2026, 3, 1), **kwargs)


def test_a_datetime_is_not_accepted_as_a_dose_date():
    with pytest.raises(TypeError):
        dose_dates(datetime(2026, 3, 1, 20, 0), interval_days=2, months=3)


# --- calendar months ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 1, 31), 2, date(2026, 3, 31)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2026, 5, 15), 0, date(2026, 5, 15)),
    ],
)
def test_add_months_keeps_the_day_or_clamps_to_month_end(start, months, expected):
    assert add_months(start, months) == expected


def test_treatment_starting_31_january_for_one_month_ends_on_last_day_of_february():
    assert treatment_end(date(2026, 1, 31), months=1) == date(2026, 2, 28)
    assert treatment_end(date(2028, 1, 31), months=1) == date(2028, 2, 29)


# --- local wall clock to UTC ------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 6), utc(2026, 3, 6, 7, 30)),  # EST
        (date(2026, 3, 8), utc(2026, 3, 8, 7, 30)),  # 02:30 does not exist: 03:30 EDT
        (date(2026, 3, 10), utc(2026, 3, 10, 6, 30)),  # EDT
    ],
)
def test_new_york_02_30_across_spring_forward(day, expected):
    assert local_wall_to_utc(day, time(2, 30), "America/New_York") == expected


def test_nonexistent_new_york_time_reads_back_as_03_30_edt():
    local = to_local(local_wall_to_utc(date(2026, 3, 8), time(2, 30), "America/New_York"), "America/New_York")
    assert (local.hour, local.minute) == (3, 30)
    assert local.utcoffset() == timedelta(hours=-4)


def test_london_ambiguous_fall_back_time_takes_first_occurrence():
    assert local_wall_to_utc(date(2026, 10, 25), time(1, 30), "Europe/London") == utc(2026, 10, 25, 0, 30)


def test_lord_howe_nonexistent_time_moves_forward_by_its_30_minute_gap():
    tz = ZoneInfo("Australia/Lord_Howe")
    changes = offset_changes("Australia/Lord_Howe", 2026)
    # Learned from zoneinfo, not assumed: first Sunday of April (back) and of October (forward).
    assert changes == [date(2026, 4, 5), date(2026, 10, 4)]
    spring_day = changes[1]
    before = datetime.combine(spring_day, time(), tzinfo=tz).utcoffset()
    after = datetime.combine(spring_day + timedelta(days=1), time(), tzinfo=tz).utcoffset()
    assert after - before == timedelta(minutes=30)

    instant = local_wall_to_utc(spring_day, time(2, 15), "Australia/Lord_Howe")
    local = to_local(instant, "Australia/Lord_Howe")
    assert (local.date(), local.hour, local.minute) == (spring_day, 2, 45)
    assert instant == utc(2026, 10, 3, 15, 45)


def test_lord_howe_ambiguous_time_takes_first_occurrence():
    instant = local_wall_to_utc(date(2026, 4, 5), time(1, 45), "Australia/Lord_Howe")
    assert instant == utc(2026, 4, 4, 14, 45)  # 01:45 at +11:00, not 01:45 at +10:30
    assert to_local(instant, "Australia/Lord_Howe").utcoffset() == timedelta(hours=11)


def test_reminder_time_stays_at_20_00_local_across_dst():
    instants = [
        local_wall_to_utc(day, time(20, 0), "Europe/London")
        for day in dose_dates(date(2026, 3, 25), interval_days=2, months=1)
    ]
    assert {to_local(i, "Europe/London").time() for i in instants} == {time(20, 0)}
    assert instants[0] == utc(2026, 3, 25, 20, 0)
    assert instants[-1] == utc(2026, 4, 24, 19, 0)


def test_wall_time_with_its_own_tzinfo_is_refused():
    with pytest.raises(ValueError):
        local_wall_to_utc(date(2026, 3, 1), time(20, 0, tzinfo=UTC), "Asia/Shanghai")


def test_to_local_refuses_naive_datetimes():
    with pytest.raises(ValueError):
        to_local(datetime(2026, 3, 1, 12, 0), "Asia/Shanghai")


def test_unknown_zone_is_refused_rather_than_guessed():
    with pytest.raises(ValueError):
        local_wall_to_utc(date(2026, 3, 1), time(20, 0), "UTC+8")


# --- dose window ------------------------------------------------------------------------


def test_trial_window_runs_from_local_midnight_to_noon_next_day():
    opens, closes = dose_window(date(2026, 3, 1), "Asia/Shanghai", **TRIAL_WINDOW)
    assert opens == utc(2026, 2, 28, 16, 0)
    assert closes == utc(2026, 3, 2, 4, 0)
    assert closes - opens == timedelta(hours=36)


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("America/New_York", date(2026, 3, 8), 35),
        ("America/New_York", date(2026, 11, 1), 37),
        ("America/New_York", date(2026, 3, 7), 35),  # window ends on the spring-forward day
        ("Europe/London", date(2026, 10, 25), 37),
        ("Australia/Lord_Howe", date(2026, 10, 4), 35.5),
        ("Australia/Lord_Howe", date(2026, 4, 5), 36.5),
        ("Asia/Shanghai", date(2026, 3, 8), 36),
    ],
)
def test_window_length_follows_the_local_clock_on_dst_days(zone, day, hours):
    opens, closes = dose_window(day, zone, **TRIAL_WINDOW)
    assert closes - opens == timedelta(hours=hours)
    assert to_local(opens, zone).time() == time(0, 0)
    assert to_local(closes, zone).time() == time(12, 0)


def test_window_that_would_close_before_it_opens_is_refused():
    with pytest.raises(ValueError):
        dose_window(date(2026, 3, 1), "Asia/Shanghai", opens_at=time(12), closes_at=time(8), closes_day_offset=0)


# --- quiet hours ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (time(21, 59), False),
        (time(22, 0), True),
        (time(23, 59, 59), True),
        (time(0, 0), True),
        (time(7, 59), True),
        (time(8, 0), False),
        (time(12, 0), False),
    ],
)
def test_quiet_hours_across_midnight(local, quiet):
    assert in_quiet_hours(local, start=time(22, 0), end=time(8, 0)) is quiet


def test_quiet_hours_within_one_day():
    assert in_quiet_hours(time(13, 30), start=time(13, 0), end=time(15, 0))
    assert not in_quiet_hours(time(15, 0), start=time(13, 0), end=time(15, 0))
    assert not in_quiet_hours(time(12, 59), start=time(13, 0), end=time(15, 0))


def test_equal_start_and_end_means_no_quiet_hours():
    assert not any(in_quiet_hours(time(h, 0), start=time(22), end=time(22)) for h in range(24))


def test_send_outside_quiet_hours_goes_at_once():
    instant = utc(2026, 3, 1, 12, 0)  # 20:00 in Shanghai
    assert next_allowed_send(instant, "Asia/Shanghai", **QUIET) == instant


def test_nudge_late_in_the_evening_waits_for_08_00_next_morning():
    instant = utc(2026, 3, 1, 15, 0)  # 23:00 in Shanghai
    assert next_allowed_send(instant, "Asia/Shanghai", **QUIET) == utc(2026, 3, 2, 0, 0)


def test_nudge_after_midnight_waits_for_08_00_same_morning():
    instant = utc(2026, 3, 1, 18, 30)  # 02:30 on 2 March in Shanghai
    assert next_allowed_send(instant, "Asia/Shanghai", **QUIET) == utc(2026, 3, 2, 0, 0)


def test_quiet_hours_end_at_local_08_00_on_spring_forward_night():
    instant = utc(2026, 3, 8, 5, 0)  # 00:00 EST; the clocks jump an hour before 08:00
    assert next_allowed_send(instant, "America/New_York", **QUIET) == utc(2026, 3, 8, 12, 0)


def test_quiet_hours_end_at_local_08_00_on_fall_back_night():
    instant = utc(2026, 11, 1, 4, 0)  # 00:00 EDT; the clocks fall back an hour before 08:00
    assert next_allowed_send(instant, "America/New_York", **QUIET) == utc(2026, 11, 1, 13, 0)


def test_quiet_end_in_the_repeated_hour_is_never_earlier_than_the_request():
    # 01:10 GMT is the second 01:10 of the night; the first 01:30 (BST) has already passed.
    instant = utc(2026, 10, 25, 1, 10)
    sent = next_allowed_send(instant, "Europe/London", quiet_start=time(0, 0), quiet_end=time(1, 30))
    assert sent == utc(2026, 10, 25, 1, 30)


def test_next_allowed_send_refuses_naive_datetimes():
    with pytest.raises(ValueError):
        next_allowed_send(datetime(2026, 3, 1, 15, 0), "Asia/Shanghai", **QUIET)


# --- zone names -------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe", "UTC"])
def test_real_iana_zones_are_valid(zone):
    assert is_valid_zone(zone)


@pytest.mark.parametrize(
    "zone",
    [
        "",
        "garbage",
        "UTC+8",
        "GMT+8",
        "+08:00",
        "CST",
        "america/new_york",
        "Asia/Shanghai ",
        "America/New_York/",
        "/usr/share/zoneinfo/UTC",
        "../zoneinfo/UTC",
        "America/../UTC",
        "zone.tab",
        "localtime",
        "Factory",
        None,
        8,
    ],
)
def test_junk_zone_names_are_invalid(zone):
    assert is_valid_zone(zone) is False
