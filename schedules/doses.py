"""Dose states and their transitions, each recorded with source, actor and time."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from schedules.alerts import resolve_by_events
from schedules.changes import Actor, acting
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


def transition(session: Session, dose: Dose, to_state: str, *, actor: Actor, at: datetime, note: str = "") -> DoseEvent:
    """Move a dose to `to_state`, recording who did it and when; InvalidTransition otherwise."""
    if to_state not in ALLOWED.get(dose.state, set()):
        raise InvalidTransition(f"dose {dose.seq} is {dose.state} and cannot become {to_state}", field="state")
    event = DoseEvent(
        dose_id=dose.id,
        from_state=dose.state,
        to_state=to_state,
        source=actor.source,
        actor=actor.label,
        at=at,
        note=note,
    )
    dose.state, dose.updated_at = to_state, at
    session.add(dose)
    session.add(event)
    return event


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
    was_missed = dose.state == DoseState.MISSED.value
    with acting(session, actor, reason):
        transition(session, dose, to_state, actor=actor, at=now, note=note)
        dose.reported_at = now
        dose.source = actor.source
        if taken:
            dose.taken_at = taken_at or now
            dose.injection_site = injection_site
        if note:
            dose.note = note
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
