"""Adherence figures: taken (on time or late) over doses that are due, held and cancelled excluded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from schedules.models import EXCLUDED_STATES, REPORTED_STATES, Dose, DoseState


@dataclass(frozen=True)
class Adherence:
    """A participant's adherence; rates are None until a dose has come due."""

    counted: int
    taken: int
    on_time: int
    adherence: float | None
    on_time_rate: float | None
    by_state: dict[str, int] = field(default_factory=dict)
    last_dose_at: datetime | None = None


def adherence_of(doses: Iterable[Dose], *, now: datetime) -> Adherence:
    """Adherence over doses whose window has closed or that were already reported."""
    by_state = {s.value: 0 for s in DoseState}
    counted = taken = on_time = 0
    last = None
    for dose in doses:
        by_state[dose.state] += 1
        if dose.state in EXCLUDED_STATES:
            continue
        if dose.window_closes_at <= now or dose.state in REPORTED_STATES:
            counted += 1
        if dose.state in (DoseState.TAKEN.value, DoseState.TAKEN_LATE.value):
            taken += 1
            on_time += dose.state == DoseState.TAKEN.value
            if dose.taken_at and (last is None or dose.taken_at > last):
                last = dose.taken_at
    return Adherence(
        counted=counted,
        taken=taken,
        on_time=on_time,
        adherence=round(taken / counted, 4) if counted else None,
        on_time_rate=round(on_time / counted, 4) if counted else None,
        by_state=by_state,
        last_dose_at=last,
    )
