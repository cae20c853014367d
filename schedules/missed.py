"""The missed-dose job: windows that closed without a report become missed and open an alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import (
    String,
    Table,
    case,
    cast,
    false,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from schedules.backdating import closed_after_enrollment
from schedules.bulk import in_values
from schedules.changes import Actor, Changes, acting, record_many
from schedules.doses import missed_alert_key
from schedules.models import (
    HIGH,
    NORMAL,
    Alert,
    AlertKind,
    AlertState,
    Dose,
    DoseEvent,
    DoseState,
    Participant,
)

JOB_ACTOR = Actor("job", "flag_missed_doses")
NOTE = "window closed without a report"
SCHEDULED, MISSED = DoseState.SCHEDULED.value, DoseState.MISSED.value
dose_t, event_t, alert_t = Dose.__table__, DoseEvent.__table__, Alert.__table__
# Alert dedupe keys are built in SQL from the dose id: missed_alert_key's text up to the id.
_KEY_PREFIX = missed_alert_key(0).removesuffix("0")


@dataclass
class MissedReport:
    """What a run of the missed-dose job did."""

    flagged: int = 0
    alerts_opened: int = 0
    high_priority: int = 0
    contact_problems: int = 0

    def __str__(self) -> str:
        return (
            f"{self.flagged} dose(s) missed, {self.alerts_opened} alert(s) opened "
            f"({self.high_priority} high priority, {self.contact_problems} as contact problems)"
        )


def _closed(session: Session, *, now: datetime, batch: int) -> dict[int, datetime]:
    """Scheduled doses whose window has closed since their participant's enrollment, oldest first:
    id -> updated_at (the audit's old value)."""
    p = Participant.__table__
    # A window that closed before enrollment is no missed dose: it waits for a nurse's entry
    # (schedules.backdating.awaits_entry). Those few stay in the index range; the participant by
    # primary key per dose keeps them out of the batch.
    return dict(
        session.connection()
        .execute(
            select(dose_t.c.id, dose_t.c.updated_at)
            .join(p, p.c.id == dose_t.c.participant_id)
            .where(dose_t.c.state == SCHEDULED, dose_t.c.window_closes_at <= now)
            .where(closed_after_enrollment(dose_t, p))
            .order_by(dose_t.c.window_closes_at)
            .limit(batch)
        )
        .all()
    )


def _mark_missed(session: Session, ids: list[int], *, now: datetime) -> list[int]:
    """Set the doses missed; the ids, in order, that were still scheduled (a dose reported meanwhile stays reported)."""
    flagged = set(
        session.connection()
        .execute(
            update(dose_t)
            .where(in_values(session, dose_t.c.id, ids), dose_t.c.state == SCHEDULED)
            .values(state=MISSED, updated_at=now)
            .returning(dose_t.c.id)
        )
        .scalars()
    )
    return [i for i in ids if i in flagged]


def _record_events(session: Session, ids: list[int], *, now: datetime) -> None:
    """One DoseEvent per flagged dose, inserted from a SELECT: no row values travel from Python."""
    values = [
        literal(SCHEDULED),
        literal(MISSED),
        literal(JOB_ACTOR.source),
        literal(JOB_ACTOR.label),
        literal(now, dose_t.c.updated_at.type),
        literal(NOTE),
    ]
    session.connection().execute(
        insert(event_t).from_select(
            ["dose_id", "from_state", "to_state", "source", "actor", "at", "note"],
            select(dose_t.c.id, *values)
            .where(in_values(session, dose_t.c.id, ids))
            .order_by(dose_t.c.window_closes_at, dose_t.c.id),
        )
    )


def _follow_loaded(session: Session, ids: set[int], *, now: datetime) -> None:
    """Doses already loaded in the session follow the database without becoming dirty (no second audit row at flush)."""
    # By identity key: reading obj.id of an expired object would load it again.
    for (cls, key, _), obj in list(session.identity_map.items()):
        if cls is Dose and key[0] in ids:
            set_committed_value(obj, "state", MISSED)
            set_committed_value(obj, "updated_at", now)


def _previous_state(dose: Table):
    """The state of the dose's previous counted dose by date (held/cancelled skipped): one backward step along
    the (participant_id, local_date) index per dose."""
    prev = aliased(dose_t, name="prev")
    return (
        select(prev.c.state)
        .where(
            prev.c.participant_id == dose.c.participant_id,
            prev.c.local_date < dose.c.local_date,
            prev.c.state.not_in([DoseState.HELD.value, DoseState.CANCELLED.value]),
        )
        .order_by(prev.c.local_date.desc())
        .limit(1)
        .correlate(dose)
        .scalar_subquery()
    )


def _open_alerts(session: Session, ids: list[int], unreachable: set[int], *, now: datetime) -> list[dict]:
    """Open one alert per flagged dose in one INSERT ... SELECT (values computed in SQL); the new rows' values."""
    # Read after the UPDATE: a dose missed earlier in the same batch makes the next one high priority.
    # ON CONFLICT skips a key opened meanwhile (by a person, or a run racing this one): theirs stands.
    d, p = dose_t, Participant.__table__
    contact = in_values(session, d.c.id, sorted(unreachable)) if unreachable else false()
    # MATERIALIZED: evaluated once per dose; inlined, PostgreSQL would run the previous-dose lookup twice.
    # The site by primary key per dose: a join would hash the whole participant table for a thousand rows.
    site_id = select(p.c.site_id).where(p.c.id == d.c.participant_id).correlate(d).scalar_subquery()
    facts = (
        select(
            d.c.id,
            d.c.participant_id,
            d.c.window_closes_at,
            site_id.label("site_id"),
            contact.label("contact"),
            (_previous_state(d) == MISSED).label("second"),
        )
        .where(in_values(session, d.c.id, ids))
        .cte("facts")
        .prefix_with("MATERIALIZED")
    )
    f = facts.c
    values = {
        "participant_id": f.participant_id,
        "site_id": f.site_id,
        "kind": case((f.contact, AlertKind.CONTACT_PROBLEM.value), else_=AlertKind.MISSED_DOSE.value),
        "priority": case((f.second, HIGH), else_=NORMAL),
        "state": literal(AlertState.OPEN.value),
        "ref_type": literal("dose"),
        "ref_id": f.id,
        "dedupe_key": literal(_KEY_PREFIX) + cast(f.id, String),
        # Facts only: the nurse's words for a missed dose are written at the edge (backend/web/alert_text.py).
        "summary": literal(""),
        "annotation": literal(""),
        "opened_at": literal(now, alert_t.c.opened_at.type),
        "acknowledged_by": literal(""),
        "resolved_by": literal(""),
        "resolution_note": literal(""),
    }
    returned = ("id", "participant_id", "site_id", "kind", "priority", "ref_id", "dedupe_key", "summary")
    dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # ORDER BY: alerts are numbered in the order the windows closed (and SQLite needs a clause between FROM
    # and ON CONFLICT).
    statement = (
        dialect_insert(alert_t)
        .from_select(list(values), select(*values.values()).order_by(f.window_closes_at, f.id))
        .on_conflict_do_nothing(index_elements=[alert_t.c.dedupe_key])
        .returning(*[alert_t.c[k] for k in returned])
    )
    constant = dict(
        state=AlertState.OPEN.value,
        ref_type="dose",
        annotation="",
        opened_at=now,
        deadline_at=None,
        acknowledged_at=None,
        acknowledged_by="",
        resolved_at=None,
        resolved_by="",
        resolution_note="",
    )
    return [{**constant, **dict(zip(returned, row))} for row in session.connection().execute(statement)]


def flag_missed_doses(
    session: Session, *, now: datetime, undelivered: Callable[[list[int]], set[int]] | None = None, batch: int = 5000
) -> MissedReport:
    """Mark scheduled doses whose window has closed as missed and open one alert each (a window that
    closed before the participant's enrollment is left to a nurse's entry).

    Reads only scheduled doses with window_closes_at <= now through the (state, window_closes_at)
    index, and writes the batch with a fixed number of Core statements (one UPDATE, one INSERT of
    dose events from a SELECT, one of alerts, one of audit rows for both) and no ORM objects, so the
    cost follows how many windows closed since the last run, not the table size. A dose whose
    reminder was never delivered opens a contact-problem alert instead: reachability, not non-adherence."""
    report = MissedReport()
    with acting(session, JOB_ACTOR, NOTE):
        session.flush()  # pending ORM changes first: the statements below go straight to the database
        closed = _closed(session, now=now, batch=batch)
        if not closed:
            return report
        flagged = _mark_missed(session, list(closed), now=now)
        if not flagged:
            return report
        _record_events(session, flagged, now=now)
        _follow_loaded(session, set(flagged), now=now)
        report.flagged = len(flagged)
        unreachable = undelivered(flagged) if undelivered else set()
        inserted = _open_alerts(session, flagged, unreachable, now=now)
        # One audit insert for both: the doses' field rows, then the alerts' create rows, as two flushes would.
        record_many(
            session,
            [
                Changes(
                    Dose, updated=[(i, {"state": (SCHEDULED, MISSED), "updated_at": (closed[i], now)}) for i in flagged]
                ),
                Changes(Alert, created=inserted),
            ],
        )
    report.alerts_opened = len(inserted)
    report.high_priority = sum(a["priority"] == HIGH for a in inserted)
    report.contact_problems = sum(a["kind"] == AlertKind.CONTACT_PROBLEM.value for a in inserted)
    return report
