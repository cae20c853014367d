"""Record a dose report (by SMS, app or staff): the dose's state, then the participant's messages."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from backend.operations.replanning import replan_messages
from schedules.changes import Actor
from schedules.doses import report_dose
from schedules.models import Dose, Participant


def record_dose(
    session: Session,
    *,
    participant: Participant,
    dose: Dose,
    taken: bool,
    actor: Actor,
    now: datetime,
    reason: str,
    taken_at: datetime | None = None,
    injection_site: str | None = None,
    note: str = "",
) -> Dose:
    """Record a dose as taken (on time or late) or not taken; its reminder and nudge are withdrawn."""
    report_dose(
        session,
        dose=dose,
        taken=taken,
        actor=actor,
        now=now,
        taken_at=taken_at,
        injection_site=injection_site,
        note=note,
        reason=reason,
    )
    replan_messages(session, participant=participant, now=now)
    return dose
