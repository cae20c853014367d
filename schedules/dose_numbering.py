"""Dose numbers as a person counts them: the participant's own sequence of the doses of the current plan."""

from __future__ import annotations

from typing import Iterable

from schedules.models import Dose, DoseState

# Not part of the current plan: a re-plan (hold, resume) or a withdrawal took them out of it.
UNNUMBERED = (DoseState.CANCELLED.value, DoseState.HELD.value)


def dose_numbers(doses: Iterable[Dose]) -> dict[int, int]:
    """Each dose's number (1, 2, 3 ... by date) among the participant's doses that are not cancelled or held,
    so after a hold and resume the 11th dose is "Dose 11" (the row's `seq` counts every dose ever planned)."""
    active = sorted((d for d in doses if d.state not in UNNUMBERED), key=lambda d: (d.local_date, d.seq))
    return {d.id: number for number, d in enumerate(active, start=1)}
