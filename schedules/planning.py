"""Pure planning of a participant's doses from the protocol: dates, reminder instants, windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from schedules.calendar import (
    add_months,
    dose_dates,
    dose_window,
    in_quiet_hours,
    local_wall_to_utc,
    treatment_end,
)
from schedules.protocol import Arm, Protocol


@dataclass(frozen=True)
class PlannedDose:
    """One dose as planned: local date, reminder instant and report window (UTC)."""

    local_date: date
    due_at: datetime
    window_opens_at: datetime
    window_closes_at: datetime


def time_dose(protocol: Protocol, day: date, *, zone: str, reminder_time: time) -> PlannedDose:
    """Reminder instant and window of the dose on local `day`."""
    rule = protocol.dose_window
    opens, closes = dose_window(
        day, zone, opens_at=rule.opens_at, closes_at=rule.closes_at, closes_day_offset=rule.closes_day_offset
    )
    return PlannedDose(day, local_wall_to_utc(day, reminder_time, zone), opens, closes)


def plan_doses(
    protocol: Protocol,
    arm: Arm,
    *,
    first_dose: date,
    zone: str,
    reminder_time: time,
    start: date | None = None,
    end: date | None = None,
) -> list[PlannedDose]:
    """Every dose of the arm's regimen from `start` (default first dose) strictly before `end`."""
    if arm.regimen is None:
        return []
    days = dose_dates(
        first_dose,
        interval_days=arm.regimen.interval_days,
        months=arm.regimen.treatment_months,
        start=start,
        end=end,
    )
    return [time_dose(protocol, day, zone=zone, reminder_time=reminder_time) for day in days]


def extended_dates(arm: Arm, *, start: date, count: int) -> list[date]:
    """`count` dose dates from `start` at the arm's interval (for extend_to_total_doses)."""
    if arm.regimen is None or count <= 0:
        return []
    step = arm.regimen.interval_days
    return [date.fromordinal(start.toordinal() + i * step) for i in range(count)]


def treatment_end_date(arm: Arm, first_dose: date) -> date | None:
    """Exclusive end of treatment, or None for an arm without a regimen."""
    if arm.regimen is None:
        return None
    return treatment_end(first_dose, months=arm.regimen.treatment_months)


def follow_up_end_date(arm: Arm, *, first_dose: date, last_dose: date | None) -> date:
    """Date follow-up ends: N months from the last dose or from the first-dose (study start) date."""
    anchor = last_dose if arm.follow_up_from == "last_dose" and last_dose is not None else first_dose
    return add_months(anchor, arm.follow_up_months)


def reminder_in_quiet_hours(protocol: Protocol, reminder_time: time) -> bool:
    """True when a participant's chosen reminder time lies in the protocol's quiet hours. The reminder is
    still sent then (quiet hours never hold back the chosen time); its nudge waits for quiet_end."""
    rules = protocol.reminders
    return in_quiet_hours(reminder_time, start=rules.quiet_start, end=rules.quiet_end)
