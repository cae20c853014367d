"""The missed-dose job: windows that closed without a report become missed and open an alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlmodel import Session, select

from schedules.alerts import HIGH, NORMAL, open_alert
from schedules.changes import Actor, acting
from schedules.doses import missed_alert_key, transition
from schedules.models import AlertKind, Dose, DoseState, Participant

JOB_ACTOR = Actor("job", "flag_missed_doses")


@dataclass
class MissedReport:
    """What a run of the missed-dose job did."""

    flagged: int = 0
    alerts_opened: int = 0
    high_priority: int = 0
    contact_problems: int = 0

    def __str__(self) -> str:
        return (f"{self.flagged} dose(s) missed, {self.alerts_opened} alert(s) opened "
                f"({self.high_priority} high priority, {self.contact_problems} as contact problems)")


def _previous_outcome(session: Session, dose: Dose) -> str | None:
    """State of the participant's previous counted dose (held and cancelled ones skipped)."""
    return session.exec(
        select(Dose.state).where(Dose.participant_id == dose.participant_id, Dose.local_date < dose.local_date,
                                 Dose.state.not_in([DoseState.HELD.value, DoseState.CANCELLED.value]))
        .order_by(Dose.local_date.desc()).limit(1)
    ).first()


def flag_missed_doses(session: Session, *, now: datetime, undelivered: Callable[[list[int]], set[int]] | None = None,
                      batch: int = 5000) -> MissedReport:
    """Mark scheduled doses whose window has closed as missed and open one alert each.

    Reads only scheduled doses with window_closes_at <= now through the (state, window_closes_at)
    index, so the cost follows how many windows closed since the last run, not the table size.
    A dose whose reminder was never delivered opens a contact-problem alert instead: that is a
    reachability problem, not non-adherence."""
    report = MissedReport()
    doses = session.exec(
        select(Dose).where(Dose.state == DoseState.SCHEDULED.value, Dose.window_closes_at <= now)
        .order_by(Dose.window_closes_at).limit(batch)
    ).all()
    unreachable = undelivered([d.id for d in doses]) if undelivered and doses else set()
    with acting(session, JOB_ACTOR, "window closed without a report"):
        for dose in doses:
            transition(session, dose, DoseState.MISSED.value, actor=JOB_ACTOR, at=now, note="window closed without a report")
            report.flagged += 1
    for dose in doses:
        participant = session.get(Participant, dose.participant_id)
        contact = dose.id in unreachable
        second = _previous_outcome(session, dose) == DoseState.MISSED.value
        priority = HIGH if second else NORMAL
        summary = f"dose {dose.seq} ({dose.local_date.isoformat()}) " + (
            "missed, and its reminder was not delivered" if contact else ("missed: second in a row" if second else "missed"))
        _, created = open_alert(session, participant=participant, site_id=participant.site_id,
                                kind=AlertKind.CONTACT_PROBLEM.value if contact else AlertKind.MISSED_DOSE.value,
                                dedupe_key=missed_alert_key(dose.id), now=now, actor=JOB_ACTOR, priority=priority,
                                ref_type="dose", ref_id=dose.id, summary=summary)
        report.alerts_opened += created
        report.high_priority += created and priority == HIGH
        report.contact_problems += created and contact
    return report
