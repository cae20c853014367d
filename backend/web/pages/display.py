"""How the pages show things: local times with the zone named, ages, percentages, the dose calendar."""

from __future__ import annotations

import calendar as stdcal
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from babel.dates import format_skeleton
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from schedules.backdating import awaits_entry
from schedules.calendar import to_local
from schedules.models import Dose, DoseState

# Each state has a word as well as a colour: colour is never the only cue.
DOSE_STATE_LABELS = {
    "scheduled": (_l("Planned"), _l("planned, not yet reported")),
    # Not a dose state: a scheduled dose whose window closed before enrollment (schedules.backdating).
    "to_enter": (_l("To enter"), _l("from before enrollment: to be entered by a nurse")),
    "taken": (_l("Taken"), _l("taken on time")),
    "taken_late": (_l("Late"), _l("taken late (after the window closed)")),
    "skipped": (_l("Skipped"), _l("not taken (participant said so)")),
    "missed": (_l("Missed"), _l("missed: no report before the window closed")),
    "held": (_l("Held"), _l("held by staff")),
    # Not on the calendar (month_grids leaves cancelled doses out), but still a word for the API's states.
    "cancelled": (_l("Cancelled"), _l("cancelled (withdrawal or restart)")),
}
ALERT_KIND_LABELS = {
    "missed_dose": _l("Missed dose"),
    "serious_ae": _l("Suspected serious AE"),
    "adverse_event": _l("Adverse event"),
    "unreadable_reply": _l("Unreadable reply"),
    "contact_problem": _l("Contact problem"),
    "opted_out": _l("Opted out of SMS"),
    "audit_chain_broken": _l("Audit chain broken"),
}
WEEKDAYS = [
    (_l("Mon"), _l("Monday")),
    (_l("Tue"), _l("Tuesday")),
    (_l("Wed"), _l("Wednesday")),
    (_l("Thu"), _l("Thursday")),
    (_l("Fri"), _l("Friday")),
    (_l("Sat"), _l("Saturday")),
    (_l("Sun"), _l("Sunday")),
]


def shown_state(dose: Dose, *, enrolled_at: datetime) -> str:
    """The DOSE_STATE_LABELS key a dose is shown with: its state, or to_enter while it awaits a nurse's entry."""
    return "to_enter" if awaits_entry(dose, enrolled_at=enrolled_at) else dose.state


def percent_text(rate: float | None) -> str:
    """'85%' or '—' when nothing has come due yet."""
    return "—" if rate is None else f"{round(rate * 100)}%"


def month_title(year: int, month: int) -> str:
    """'March 2026' / '2026年3月': a calendar month in the page's language (Babel's month names and pattern)."""
    return format_skeleton("yMMMM", date(year, month, 1), locale=get_locale() or "en")


@dataclass(frozen=True)
class DayCell:
    """One day of a month grid: the date (None for padding), its dose if any, and whether it is today."""

    day: date | None
    dose: Dose | None = None
    today: bool = False


@dataclass(frozen=True)
class MonthGrid:
    """A month of the dose calendar as weeks of seven cells, Monday first."""

    title: str
    weeks: list[list[DayCell]]


def month_grids(doses: list[Dose], *, today: date) -> list[MonthGrid]:
    """Month grids from the first to the last dose's month, each dose of the current plan on its local date.
    Cancelled doses (by a hold and resume's re-plan, or a withdrawal) are left out: after a resume the old
    cadence's days would otherwise sit struck through beside the new ones. The audit trail keeps them."""
    doses = [d for d in doses if d.state != DoseState.CANCELLED.value]
    if not doses:
        return []
    by_date = {d.local_date: d for d in doses}
    first, last = min(by_date), max(by_date)
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        weeks = []
        for week in stdcal.Calendar(firstweekday=0).monthdatescalendar(year, month):
            weeks.append(
                [
                    DayCell(day=d, dose=by_date.get(d), today=d == today) if d.month == month else DayCell(day=None)
                    for d in week
                ]
            )
        months.append(MonthGrid(title=month_title(year, month), weeks=weeks))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


_EPOCH = datetime(1970, 1, 1)


def vas_chart_data(scores, zone: str, *, scale_min: float, scale_max: float) -> dict:
    """The VAS chart's points on a true time axis: x is the local time of the answer in days since 1970-01-01
    (so 23 Nov, 30 Nov and 2 Dec lie 7 and 2 days apart), y the value; the y range is the protocol's scale."""
    points = []
    for score in scores:
        local = to_local(score.recorded_at, zone).replace(tzinfo=None)
        points.append(
            {
                "x": round((local - _EPOCH) / timedelta(days=1), 4),
                "y": float(score.value),
                "when": local.strftime("%Y-%m-%d %H:%M"),
            }
        )
    return {"points": points, "zone": zone, "min": scale_min, "max": scale_max}
