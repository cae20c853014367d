"""Record a dose report (by SMS, app or staff): the dose's state, then its reminder and nudge withdrawn."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from sqlmodel import Session

from notifications.models import OutboundMessage
from notifications.planning import cancel_dose_messages
from schedules.changes import Actor
from schedules.doses import report_dose
from schedules.models import Dose


def record_dose(
    session: Session,
    *,
    dose: Dose,
    taken: bool,
    actor: Actor,
    now: datetime,
    reason: str,
    taken_at: datetime | None = None,
    injection_site: str | None = None,
    note: str = "",
    planned: Sequence[OutboundMessage] | None = None,
) -> Dose:
    """Record a dose as taken (on time or late) or not taken; its reminder and nudge are withdrawn (`planned`:
    those, if the caller read them already; see cancel_dose_messages)."""
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
    # A report changes only this dose's messages (a reported dose wants no reminder or nudge), so the
    # participant's full re-plan is not needed: the SMS webhook, the hottest path, answers sooner.
    cancel_dose_messages(session, dose=dose, now=now, planned=planned)
    return dose
