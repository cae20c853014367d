"""The missed-dose job: windows that closed without a report become missed and open an alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import update
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from schedules.alerts import HIGH, NORMAL
from schedules.bulk import bulk_insert, in_values
from schedules.changes import Actor, acting, record_changes
from schedules.doses import missed_alert_key
from schedules.models import (
    Alert,
    AlertKind,
    AlertState,
    Dose,
    DoseEvent,
    DoseState,
    Participant,
)

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


def _previous_states(session: Session, dose_ids: list[int]) -> dict[int, str | None]:
    """For each dose, the state of the participant's previous counted dose (held/cancelled skipped),
    read in one query: a correlated lookup per dose through the participant index, whatever the table size."""
    if not dose_ids:
        return {}
    prev = aliased(Dose, name="prev")
    previous_state = (
        select(prev.state)
        .where(prev.participant_id == Dose.participant_id, prev.local_date < Dose.local_date,
               prev.state.not_in([DoseState.HELD.value, DoseState.CANCELLED.value]))
        .order_by(prev.local_date.desc()).limit(1).correlate(Dose).scalar_subquery()
    )
    rows = session.connection().execute(select(Dose.id, previous_state).where(in_values(session, Dose.id, dose_ids)))
    return {dose_id: state for dose_id, state in rows}


def _alert_row(dose: Dose, *, site_id: int, contact: bool, second: bool, now: datetime) -> dict:
    """Column values of a new missed-dose (or contact-problem) alert, defaults included as the ORM sets them."""
    summary = f"dose {dose.seq} ({dose.local_date.isoformat()}) " + (
        "missed, and its reminder was not delivered" if contact else ("missed: second in a row" if second else "missed"))
    return dict(participant_id=dose.participant_id, site_id=site_id,
                kind=AlertKind.CONTACT_PROBLEM.value if contact else AlertKind.MISSED_DOSE.value,
                priority=HIGH if second else NORMAL, state=AlertState.OPEN.value, ref_type="dose", ref_id=dose.id,
                dedupe_key=missed_alert_key(dose.id), summary=summary, annotation="", opened_at=now, deadline_at=None,
                acknowledged_at=None, acknowledged_by="", resolved_at=None, resolved_by="", resolution_note="")


def flag_missed_doses(session: Session, *, now: datetime, undelivered: Callable[[list[int]], set[int]] | None = None,
                      batch: int = 5000) -> MissedReport:
    """Mark scheduled doses whose window has closed as missed and open one alert each.

    Reads only scheduled doses with window_closes_at <= now through the (state, window_closes_at)
    index, and writes the batch with a fixed number of statements (one UPDATE, one INSERT of dose
    events, one of alerts, one of audit rows each), so the cost follows how many windows closed
    since the last run, not the table size. A dose whose reminder was never delivered opens a
    contact-problem alert instead: reachability, not non-adherence."""
    report = MissedReport()
    doses = list(session.exec(
        select(Dose).where(Dose.state == DoseState.SCHEDULED.value, Dose.window_closes_at <= now)
        .order_by(Dose.window_closes_at).limit(batch)
    ).all())
    if not doses:
        return report
    unreachable = undelivered([d.id for d in doses]) if undelivered else set()
    scheduled, missed, note = DoseState.SCHEDULED.value, DoseState.MISSED.value, "window closed without a report"
    with acting(session, JOB_ACTOR, note):
        session.flush()  # pending ORM changes first: the statements below go straight to the database
        connection = session.connection()
        # The state guard keeps a dose reported meanwhile out: only what is still scheduled becomes missed.
        flagged = set(connection.execute(
            update(Dose.__table__).where(in_values(session, Dose.__table__.c.id, [d.id for d in doses]), Dose.__table__.c.state == scheduled)
            .values(state=missed, updated_at=now).returning(Dose.__table__.c.id)
        ).scalars())
        doses = [d for d in doses if d.id in flagged]
        if not doses:
            return report
        bulk_insert(session, DoseEvent.__table__, [
            dict(dose_id=d.id, from_state=scheduled, to_state=missed, source=JOB_ACTOR.source, actor=JOB_ACTOR.label, at=now, note=note)
            for d in doses])
        record_changes(session, Dose, updated=[(d.id, {"state": (scheduled, missed), "updated_at": (d.updated_at, now)}) for d in doses])
        for dose in doses:
            # The loaded objects follow the database without becoming dirty (no second audit row at flush).
            set_committed_value(dose, "state", missed)
            set_committed_value(dose, "updated_at", now)
    report.flagged = len(doses)
    previous = _previous_states(session, [d.id for d in doses])
    sites = dict(session.connection().execute(
        select(Participant.id, Participant.site_id).where(in_values(session, Participant.id, {d.participant_id for d in doses}))).all())
    rows = [_alert_row(d, site_id=sites[d.participant_id], contact=d.id in unreachable, second=previous.get(d.id) == missed, now=now)
            for d in doses]
    with acting(session, JOB_ACTOR, note):
        # ON CONFLICT skips a key opened meanwhile (by a person, or a run racing this one): theirs stands.
        ids = dict((key, alert_id) for alert_id, key in bulk_insert(
            session, Alert.__table__, rows, returning=("id", "dedupe_key"), skip_conflicts_on="dedupe_key"))
        inserted = [{**row, "id": ids[row["dedupe_key"]]} for row in rows if row["dedupe_key"] in ids]
        record_changes(session, Alert, created=inserted)
    report.alerts_opened = len(inserted)
    report.high_priority = sum(a["priority"] == HIGH for a in inserted)
    report.contact_problems = sum(a["kind"] == AlertKind.CONTACT_PROBLEM.value for a in inserted)
    return report
