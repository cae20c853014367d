"""Where a participant's dosing stands right now, as the dashboard tells a nurse who to call today."""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta
from typing import Iterable

from schedules.models import EXCLUDED_STATES, Dose, DoseState

# A dose whose window closed this long ago still answers "what about today?" (a miss at noon is today's news).
RECENT = timedelta(hours=24)


class TodayState(str, enum.Enum):
    """Today's dose as the dashboard shows it."""

    NO_REGIMEN = "no_regimen"  # an arm without a study drug: nothing to take, ever
    NOT_DUE = "not_due"  # no dose today and none whose window is open
    UPCOMING = "upcoming"  # today's dose, its window not open yet (only across a time zone's midnight)
    WAITING = "waiting"  # the window is open and no report yet
    TAKEN = "taken"
    NOT_TAKEN = "not_taken"  # the participant said they could not
    MISSED = "missed"  # the window closed without a report, within the last day
    HELD = "held"


def today_state(
    doses: Iterable[Dose], *, now: datetime, today: date, has_regimen: bool
) -> tuple[TodayState, Dose | None]:
    """The dose that matters now and how it stands: the one whose window is open, else today's, else one that
    closed within the last day; held and taken doses say so, cancelled ones do not count."""
    if not has_regimen:
        return TodayState.NO_REGIMEN, None
    live = [d for d in doses if d.state != DoseState.CANCELLED.value]
    current = next((d for d in live if d.window_opens_at <= now < d.window_closes_at), None)
    current = current or next((d for d in live if d.local_date == today), None)
    if current is None:
        recent = [d for d in live if now - RECENT <= d.window_closes_at <= now]
        current = max(recent, key=lambda d: d.window_closes_at, default=None)
    if current is None:
        return TodayState.NOT_DUE, None
    return _state_of(current, now=now), current


def _state_of(dose: Dose, *, now: datetime) -> TodayState:
    state = dose.state
    if state in (DoseState.TAKEN.value, DoseState.TAKEN_LATE.value):
        return TodayState.TAKEN
    if state == DoseState.SKIPPED.value:
        return TodayState.NOT_TAKEN
    if state == DoseState.MISSED.value:
        return TodayState.MISSED
    if state in EXCLUDED_STATES:
        return TodayState.HELD
    if now < dose.window_opens_at:
        return TodayState.UPCOMING
    # Scheduled with the window closed: the missed-dose job has not run yet; the nurse should still know.
    return TodayState.WAITING if now < dose.window_closes_at else TodayState.MISSED
