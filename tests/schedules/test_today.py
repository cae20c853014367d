"""Today's dose as the dashboard tells it: the window that is open, else today's dose, else a miss of the last day."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from schedules.models import Dose, DoseState
from schedules.today import RECENT, TodayState, today_state

UTC = timezone.utc
# Doses every other day from 1 March in Beijing: the window runs from 00:00 local (16:00Z the day before)
# to 12:00 local the next day (04:00Z two days after the dose day's UTC midnight minus eight hours).
FIRST = date(2026, 3, 1)


def _dose(seq: int, state: str = DoseState.SCHEDULED.value) -> Dose:
    day = FIRST + timedelta(days=2 * (seq - 1))
    opens = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=8)
    return Dose(
        participant_id=1,
        seq=seq,
        local_date=day,
        due_at=opens + timedelta(hours=20),
        window_opens_at=opens,
        window_closes_at=opens + timedelta(hours=36),
        state=state,
    )


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_an_open_window_without_a_reply_is_waiting():
    doses = [_dose(1, "taken"), _dose(2), _dose(3)]
    state, dose = today_state(doses, now=_at("2026-03-03T12:00"), today=date(2026, 3, 3), has_regimen=True)
    assert (state, dose.seq) == (TodayState.WAITING, 2)


def test_the_morning_after_a_dose_day_still_shows_its_open_window():
    # 09:00 in Beijing on 4 March: dose 2 (3 March) can still be reported until 12:00.
    state, dose = today_state([_dose(2)], now=_at("2026-03-04T01:00"), today=date(2026, 3, 4), has_regimen=True)
    assert (state, dose.seq) == (TodayState.WAITING, 2)


def test_a_miss_is_news_for_a_day_then_nothing_is_due():
    doses = [_dose(2, "missed")]
    assert today_state(doses, now=_at("2026-03-04T06:00"), today=date(2026, 3, 4), has_regimen=True)[0] == (
        TodayState.MISSED
    )
    assert today_state(doses, now=_at("2026-03-05T06:00"), today=date(2026, 3, 5), has_regimen=True)[0] == (
        TodayState.NOT_DUE
    )


def test_taken_skipped_held_and_an_arm_without_a_drug():
    now, today = _at("2026-03-03T12:00"), date(2026, 3, 3)
    for stored, shown in [
        ("taken", TodayState.TAKEN),
        ("taken_late", TodayState.TAKEN),
        ("skipped", TodayState.NOT_TAKEN),
        ("held", TodayState.HELD),
    ]:
        assert today_state([_dose(2, stored)], now=now, today=today, has_regimen=True)[0] == shown
    assert today_state([], now=now, today=today, has_regimen=False) == (TodayState.NO_REGIMEN, None)


@given(
    states=st.lists(st.sampled_from([s.value for s in DoseState]), min_size=1, max_size=12),
    hours=st.integers(min_value=0, max_value=24 * 26),
)
def test_the_dose_shown_is_never_a_cancelled_one_and_always_about_now(states, hours):
    doses = [_dose(i + 1, s) for i, s in enumerate(states)]
    now = _at("2026-02-28T00:00") + timedelta(hours=hours)
    state, dose = today_state(doses, now=now, today=(now + timedelta(hours=8)).date(), has_regimen=True)
    if dose is None:
        assert state == TodayState.NOT_DUE
        return
    assert dose.state != DoseState.CANCELLED.value
    about_now = dose.window_opens_at <= now < dose.window_closes_at
    todays = dose.local_date == (now + timedelta(hours=8)).date()
    recent = now - RECENT <= dose.window_closes_at <= now
    assert about_now or todays or recent
