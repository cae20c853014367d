"""Read-only look-ups: a participant's local today, their schedule, one dose by number, the dose a reply refers to,
the deviation log."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Iterable, Sequence

from sqlalchemy import Select, and_, bindparam
from sqlmodel import Session, select

from schedules.calendar import to_local
from schedules.models import Deviation, Dose, DoseState, Participant, VasScore

# A reply may still refer to a dose whose window closed this long ago (a late "taken").
MISSED_LOOKBACK = timedelta(hours=48)
S = DoseState


# The doses a reply may refer to: window opened by `now`, closed no longer than MISSED_LOOKBACK before it. A
# condition with bound parameters (recent_dose_params), so the SMS webhook's first read can join it.
RECENT_DOSE = and_(
    Dose.window_opens_at <= bindparam("now", type_=Dose.__table__.c.window_opens_at.type),
    Dose.window_closes_at > bindparam("lookback", type_=Dose.__table__.c.window_closes_at.type),
)


def recent_dose_params(now: datetime) -> dict:
    """The bound parameters of RECENT_DOSE at `now`."""
    return {"now": now, "lookback": now - MISSED_LOOKBACK}


def pick_open_dose(recent: Iterable[Dose], *, now: datetime) -> Dose | None:
    """Of a participant's RECENT_DOSE rows, the dose a reply refers to: the one whose window is open, else the
    latest unreported one whose window closed within 48 hours."""
    newest_first = sorted(recent, key=lambda dose: dose.window_opens_at, reverse=True)
    for dose in newest_first:
        if dose.window_closes_at > now and dose.state not in (S.HELD.value, S.CANCELLED.value):
            return dose
    for dose in newest_first:
        if dose.state in (S.SCHEDULED.value, S.MISSED.value, S.SKIPPED.value):
            return dose
    return None


def dose_by_seq(session: Session, participant: Participant, seq: int) -> Dose | None:
    """The participant's dose number `seq` (1-based)."""
    return session.exec(select(Dose).where(Dose.participant_id == participant.id, Dose.seq == seq)).first()


def doses_of(session: Session, participant_id: int) -> list[Dose]:
    """All doses of a participant in date order."""
    return list(
        session.exec(
            select(Dose).where(Dose.participant_id == participant_id).order_by(Dose.local_date, Dose.seq)
        ).all()
    )


def local_today(participant: Participant, now: datetime) -> date:
    """The participant's local calendar date at `now`."""
    return to_local(now, participant.time_zone).date()


def vas_history(session: Session, participant_id: int) -> list[VasScore]:
    """All VAS rows of a participant, oldest first (withdrawn and corrected ones included)."""
    return list(
        session.exec(
            select(VasScore)
            .where(VasScore.participant_id == participant_id)
            .order_by(VasScore.recorded_at, VasScore.id)
        ).all()
    )


def deviation_query(
    *,
    participant_ids: Iterable[int] | None = None,
    kinds: Sequence[str] | None = None,
    classifications: Sequence[str] | None = None,
    review_states: Sequence[str] | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Select:
    """A SELECT of deviations by these filters (each None = any), oldest day first; callers add their scope."""
    query = select(Deviation)
    if participant_ids is not None:
        query = query.where(Deviation.participant_id.in_(sorted(set(participant_ids))))
    if kinds:
        query = query.where(Deviation.kind.in_(kinds))
    if classifications:
        query = query.where(Deviation.classification.in_(classifications))
    if review_states:
        query = query.where(Deviation.review_state.in_(review_states))
    if date_from is not None:
        query = query.where(Deviation.local_date >= date_from)
    if date_to is not None:
        query = query.where(Deviation.local_date <= date_to)
    return query.order_by(Deviation.local_date, Deviation.id)


def deviations_for(session: Session, participant_ids: Iterable[int] | None = None, **filters) -> list[Deviation]:
    """The deviations of these participants (all when None), by deviation_query's filters (the exports' dataset)."""
    return list(session.exec(deviation_query(participant_ids=participant_ids, **filters)).all())
