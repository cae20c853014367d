"""Adherence figures: taken (on time or late) over doses that are due, held and cancelled excluded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from schedules.backdating import awaits_entry
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
    awaiting_entry: int = 0  # from before enrollment, not recorded yet: in no figure


def adherence_of(doses: Iterable[Dose], *, now: datetime, enrolled_at: datetime) -> Adherence:
    """Adherence over doses whose window has closed or that were already reported.

    A dose whose window closed before enrollment counts once a nurse has recorded it; until then it is
    neither due nor missed (counting it would read as non-adherence nobody could have prevented)."""
    by_state = {s.value: 0 for s in DoseState}
    counted = taken = on_time = awaiting = 0
    last = None
    for dose in doses:
        by_state[dose.state] += 1
        if dose.state in EXCLUDED_STATES:
            continue
        if awaits_entry(dose, enrolled_at=enrolled_at):
            awaiting += 1
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
        awaiting_entry=awaiting,
    )
