"""Dose states and their transitions, each recorded with source, actor and time."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import inspect
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from schedules.alerts import resolve_by_events
from schedules.bulk import update_then_insert
from schedules.changes import Actor, acting, record_changes
from schedules.errors import Conflict, InvalidInput
from schedules.models import AlertKind, Dose, DoseEvent, DoseState, InjectionSite

S = DoseState
ALLOWED: dict[str, set[str]] = {
    S.SCHEDULED: {S.TAKEN, S.TAKEN_LATE, S.SKIPPED, S.MISSED, S.HELD, S.CANCELLED},
    # A participant who said "not taken" may still take it; a missed dose may be reported later, and is on
    # time when the time it was taken (told to a nurse) lies in its window.
    S.SKIPPED: {S.TAKEN, S.TAKEN_LATE},
    S.MISSED: {S.TAKEN, S.TAKEN_LATE, S.SKIPPED},
    S.HELD: {S.SCHEDULED, S.CANCELLED},
    S.TAKEN: set(),
    S.TAKEN_LATE: set(),
    S.CANCELLED: set(),
}
ALLOWED = {k.value: {v.value for v in vs} for k, vs in ALLOWED.items()}


class InvalidTransition(Conflict):
    """A dose cannot move from its current state to the requested one."""


def check_transition(dose: Dose, to_state: str) -> None:
    """InvalidTransition unless a dose in its current state may become `to_state`."""
    if to_state not in ALLOWED.get(dose.state, set()):
        raise InvalidTransition(f"dose {dose.seq} is {dose.state} and cannot become {to_state}", field="state")


def transition(session: Session, dose: Dose, to_state: str, *, actor: Actor, at: datetime, note: str = "") -> DoseEvent:
    """Move a dose to `to_state`, recording who did it and when; InvalidTransition otherwise."""
    check_transition(dose, to_state)
    event = DoseEvent(**_event_values(dose, to_state, actor=actor, at=at, note=note))
    dose.state, dose.updated_at = to_state, at
    session.add(dose)
    session.add(event)
    return event


def _event_values(dose: Dose, to_state: str, *, actor: Actor, at: datetime, note: str) -> dict:
    return dict(
        dose_id=dose.id,
        from_state=dose.state,
        to_state=to_state,
        source=actor.source,
        actor=actor.label,
        at=at,
        note=note,
    )


_DOSE, _EVENT = Dose.__table__, DoseEvent.__table__
_COLUMN_ORDER = {c.key: i for i, c in enumerate(_DOSE.columns)}


def _written_through(session: Session, dose: Dose, fields: dict, event: dict) -> bool:
    """Write a report of a loaded, unchanged dose and its event with one statement (two on SQLite) instead of a
    flush (the SMS webhook's hot path): its audit rows are those the flush would write, and the object is left as
    if loaded with the new values. False, and nothing written, for a dose the session has other plans for (new,
    or with changes of its own)."""
    state = inspect(dose)
    if not state.persistent or state.session is not session or session.is_modified(dose):
        return False
    changed = {k: (getattr(dose, k), v) for k, v in sorted(fields.items(), key=lambda kv: _COLUMN_ORDER[kv[0]])}
    update_then_insert(session, _DOSE, dose.id, fields, _EVENT, event)
    record_changes(session, Dose, updated=[(dose.id, changed)])
    for key, value in fields.items():
        set_committed_value(dose, key, value)
    return True


def report_dose(
    session: Session,
    *,
    dose: Dose,
    taken: bool,
    actor: Actor,
    now: datetime,
    taken_at: datetime | None = None,
    injection_site: str | None = None,
    note: str = "",
    reason: str | None = None,
) -> Dose:
    """Record that a dose was taken or not taken. Taken is on time or late by when it was taken: `taken_at`
    (the time a nurse enters), else the report itself (`now`: a participant's SMS or app answer)."""
    if injection_site is not None and injection_site not in {s.value for s in InjectionSite}:
        raise InvalidInput(f"unknown injection site {injection_site!r}", field="injection_site")
    if taken_at is not None and taken_at > now + timedelta(minutes=5):
        raise InvalidInput("taken_at is in the future", field="taken_at")
    to_state = outcome(dose, taken=taken, taken_at=taken_at or now)
    check_transition(dose, to_state)
    was_missed = dose.state == DoseState.MISSED.value
    fields = {"state": to_state, "updated_at": now, "reported_at": now, "source": actor.source}
    if taken:
        fields.update(taken_at=taken_at or now, injection_site=injection_site)
    if note:
        fields["note"] = note
    with acting(session, actor, reason):
        event = _event_values(dose, to_state, actor=actor, at=now, note=note)
        if not _written_through(session, dose, fields, event):
            transition(session, dose, to_state, actor=actor, at=now, note=note)
            for key, value in fields.items():
                setattr(dose, key, value)
    if was_missed:
        _resolve_missed_alert(session, dose=dose, actor=actor, now=now)
    return dose


def outcome(dose: Dose, *, taken: bool, taken_at: datetime) -> str:
    """Not taken: skipped; taken: on time when taken inside the window, else late (the report time does not
    decide: a dose injected at 20:00 and told to a nurse the next afternoon was on time)."""
    if not taken:
        return DoseState.SKIPPED.value
    return DoseState.TAKEN.value if taken_on_time(dose, taken_at) else DoseState.TAKEN_LATE.value


def taken_on_time(dose: Dose, taken_at: datetime) -> bool:
    """True when `taken_at` lies in the dose's window [opens, closes): the one on-time rule."""
    return dose.window_opens_at <= taken_at < dose.window_closes_at


_OUTCOME_WORDS = {DoseState.TAKEN.value: "taken on time", DoseState.TAKEN_LATE.value: "taken late"}


def _resolve_missed_alert(session: Session, *, dose: Dose, actor: Actor, now: datetime) -> None:
    """A late report ends the dose's missed-dose alert: nobody needs to call about a dose now accounted for."""
    resolve_by_events(
        session,
        participant_id=dose.participant_id,
        kind=AlertKind.MISSED_DOSE.value,
        dedupe_key=missed_alert_key(dose.id),
        note=f"dose reported by {actor.source} after its window closed: {_OUTCOME_WORDS.get(dose.state, dose.state)}",
        actor=actor,
        now=now,
    )


def missed_alert_key(dose_id: int) -> str:
    """Dedupe key of a dose's missed-dose alert."""
    return f"missed_dose:dose:{dose_id}"
