"""Back-dated enrollment: how far in the past a first dose may lie, and the doses that wait for a nurse's entry."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Table
from sqlalchemy.sql.elements import ColumnElement

from schedules.calendar import to_local
from schedules.errors import InvalidInput
from schedules.models import Dose, DoseState
from schedules.protocol import Protocol


def check_first_dose_date(protocol: Protocol, first_dose: date, *, zone: str, now: datetime) -> date:
    """`first_dose` if it lies at most the protocol's max_backdate_days before the participant's local today."""
    # The participant's own calendar decides: at 01:00 in Shanghai it is already tomorrow in UTC terms.
    today = to_local(now, zone).date()
    back = (today - first_dose).days
    limit = protocol.enrollment.max_backdate_days
    if back > limit:
        raise InvalidInput(
            f"the first dose date {first_dose.isoformat()} is {_days(back)} before the participant's today "
            f"({today.isoformat()} in {zone}); this study accepts a first dose at most {_days(limit)} in the past",
            field="first_dose_date",
        )
    return first_dose


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def awaits_entry(dose: Dose, *, enrolled_at: datetime) -> bool:
    """True for an unreported dose whose window closed before its participant was enrolled.

    Nobody could remind or ask about it in time, so it is not missed: it stays scheduled, opens no
    missed-dose alert and counts in no adherence figure until a nurse records it, taken or not."""
    return dose.state == DoseState.SCHEDULED.value and dose.window_closes_at <= enrolled_at


def closed_after_enrollment(dose: Table, participant: Table) -> ColumnElement[bool]:
    """SQL for the doses awaits_entry leaves out: the window closed after the participant's enrollment."""
    return dose.c.window_closes_at > participant.c.enrolled_at
