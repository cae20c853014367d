"""The protocol-deviation log: deviations derived from doses and their events, classified by the protocol
(written here; read through schedules.queries.deviations_for).

What counts, read from the dose records (nothing else is needed, so a run can always be repeated):
- missed_dose: a dose the participant did not take in its window: missed (no report by the close) or
  skipped ("not taken"). A missed dose reported taken late afterwards keeps its row (the window was missed;
  the reviewer decides), but it no longer counts in a row of misses: it is minor and its detail says so.
- late_dose: a dose in state taken_late; hours late run from the window's close to when it was taken
  (or, without a time, reported).
- hold: a nurse's hold, one row per hold (the doses it held share the hold's transition time).
- out_of_window_change: staff (page, API or CLI) changed a dose's state after its window had closed, e.g. a
  missed dose recorded taken from a phone call days later. Doses whose window closed before the participant's
  enrolment are not counted: recording those is the ordinary backdated entry (schedules/backdating.py).

Detection is idempotent: each deviation has a dedupe key (kind and the dose or event it comes from, unique in
the table), so a second run, or two racing runs, insert nothing new; a run re-classifies rows whose facts
changed (a second miss makes the first one major too) and leaves the nurse's review alone.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable, NamedTuple, Sequence

from sqlalchemy import or_
from sqlmodel import Session, select

from schedules.bulk import bulk_insert, in_values
from schedules.changes import Actor, acting, record_changes
from schedules.errors import InvalidInput
from schedules.models import (
    Deviation,
    DeviationClass,
    DeviationKind,
    DeviationReview,
    Dose,
    DoseEvent,
    DoseState,
    Participant,
    Study,
)
from schedules.protocol import DeviationRule
from schedules.studies import protocol_of

JOB_ACTOR = Actor("job", "detect_deviations")
MINOR, MAJOR = DeviationClass.MINOR.value, DeviationClass.MAJOR.value
MISSED, LATE, HOLD, CHANGE = (k.value for k in DeviationKind)
REVIEW_STATES = tuple(s.value for s in DeviationReview)
NOT_TAKEN = {DoseState.MISSED.value, DoseState.SKIPPED.value}
UNCOUNTED = {DoseState.HELD.value, DoseState.CANCELLED.value}  # a hold neither breaks nor extends a row
STAFF_SOURCES = ("staff", "cli")
# A state written by staff after the window closed that changes what the record says was done.
CHANGED_TO = (DoseState.TAKEN.value, DoseState.TAKEN_LATE.value, DoseState.SKIPPED.value, DoseState.MISSED.value)
CHUNK = 500  # participants per pass of the full detection: bounded memory in a large trial

d_t, e_t, p_t, dev_t = Dose.__table__, DoseEvent.__table__, Participant.__table__, Deviation.__table__


def dedupe_key(kind: str, ref_id: int) -> str:
    """The deviation's identity: kind and the dose (missed, late) or dose event (hold, change) it comes from."""
    return f"{kind}:{ref_id}"


@dataclass
class DeviationReport:
    """What a detection run did."""

    participants: int = 0
    created: Counter = field(default_factory=Counter)
    reclassified: int = 0

    def __str__(self) -> str:
        kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(self.created.items())) or "none new"
        return (
            f"checked {self.participants} participant(s): {sum(self.created.values())} deviation(s) recorded "
            f"({kinds}), {self.reclassified} reclassified"
        )


class _Who(NamedTuple):
    """The participant columns a deviation row needs."""

    id: int
    site_id: int


@dataclass(frozen=True)
class Found:
    """A deviation as the records say it should read."""

    key: str
    participant_id: int
    site_id: int
    dose_id: int | None
    kind: str
    classification: str
    rule: str
    detail: str
    local_date: date


# --- the rules --------------------------------------------------------------------------


def runs_not_taken(not_taken: Sequence[bool]) -> list[int]:
    """For a participant's counted doses in date order (True = not taken), the length of the row of
    not-taken doses each belongs to (0 for a dose taken)."""
    lengths = [0] * len(not_taken)
    start = 0
    for i in range(len(not_taken) + 1):
        if i == len(not_taken) or not not_taken[i]:
            for j in range(start, i):
                lengths[j] = i - start
            start = i + 1
    return lengths


def _missed_class(rule: DeviationRule, row: int) -> tuple[str, str]:
    n = rule.missed_in_a_row_major
    if row >= n:
        return MAJOR, f"missed_in_a_row_major = {n}: {row} doses not taken in a row"
    if row == 0:
        return MINOR, f"missed_in_a_row_major = {n}: taken late after all, in no row of misses"
    return MINOR, f"missed_in_a_row_major = {n}: {'a single dose' if row == 1 else f'{row} doses'} not taken"


def _hours(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 3600


def _late_class(rule: DeviationRule, dose) -> tuple[str, str]:
    limit = rule.late_major_after_hours
    taken = dose.taken_at or dose.reported_at
    hours = max(0.0, _hours(taken, dose.window_closes_at)) if taken else 0.0
    how = "taken" if dose.taken_at else "reported"
    text = f"late_major_after_hours = {limit}: {how} {hours:.0f} h after the window closed"
    return (MAJOR if hours > limit else MINOR), text


def _dose_rows(rule: DeviationRule, participant, doses: list, ever_missed: set[int]) -> list[Found]:
    """Missed and late doses of one participant; `doses` in date order."""
    counted = [d for d in doses if d.state not in UNCOUNTED]
    rows = dict(zip((d.id for d in counted), runs_not_taken([d.state in NOT_TAKEN for d in counted])))
    found = []
    for dose in doses:
        if dose.state in NOT_TAKEN or dose.id in ever_missed:
            classification, text = _missed_class(rule, rows.get(dose.id, 0))
            detail = "" if dose.state in NOT_TAKEN else f"later reported {dose.state.replace('_', ' ')}"
            found.append(_found(participant, dose, MISSED, dose.id, classification, text, detail))
        if dose.state == DoseState.TAKEN_LATE.value:
            classification, text = _late_class(rule, dose)
            found.append(_found(participant, dose, LATE, dose.id, classification, text, ""))
    return found


def _event_rows(rule: DeviationRule, participant, events: list, doses: dict) -> list[Found]:
    """Holds (one per hold: its held doses share the transition time) and staff changes after a window closed."""
    found = []
    holds: dict[datetime, list] = defaultdict(list)
    for event in events:
        if event.to_state == DoseState.HELD.value:
            holds[event.at].append(event)
        elif _late_staff_change(event, doses[event.dose_id], participant):
            dose = doses[event.dose_id]
            days = (event.at - dose.window_closes_at).days
            text = (
                f"out_of_window_change_classification = {rule.out_of_window_change_classification}: "
                f"{event.from_state.replace('_', ' ')} changed to {event.to_state.replace('_', ' ')} "
                f"{'on the day' if days < 1 else f'{days} day(s)'} after the window closed, by {event.actor}"
            )
            found.append(
                _found(participant, dose, CHANGE, event.id, rule.out_of_window_change_classification, text, event.note)
            )
    for held in holds.values():
        first = min(held, key=lambda e: (doses[e.dose_id].local_date, e.id))
        text = f"hold_classification = {rule.hold_classification}: {len(held)} dose(s) held by {first.actor}"
        found.append(
            _found(participant, doses[first.dose_id], HOLD, first.id, rule.hold_classification, text, first.note)
        )
    return found


def _late_staff_change(event, dose, participant) -> bool:
    return (
        event.source in STAFF_SOURCES
        and event.to_state in CHANGED_TO
        and event.at > dose.window_closes_at
        and dose.window_closes_at > participant.enrolled_at
    )


def _found(participant, dose, kind: str, ref_id: int, classification: str, rule: str, detail: str) -> Found:
    return Found(
        key=dedupe_key(kind, ref_id),
        participant_id=participant.id,
        site_id=participant.site_id,
        dose_id=dose.id,
        kind=kind,
        classification=classification,
        rule=rule[:200],
        detail=detail,
        local_date=dose.local_date,
    )


# --- reading the records ----------------------------------------------------------------


def _participants(session: Session, participant_ids: Iterable[int] | None) -> list:
    query = select(p_t.c.id, p_t.c.site_id, p_t.c.study_id, p_t.c.enrolled_at).order_by(p_t.c.id)
    if participant_ids is not None:
        ids = sorted(set(participant_ids))
        if not ids:
            return []
        query = query.where(in_values(session, p_t.c.id, ids))
    return list(session.connection().execute(query))


def _rules(session: Session, study_ids: set[int] | None) -> dict[int, DeviationRule]:
    """The [deviations] rules by study id (of every study when None: a trial database holds a few)."""
    query = select(Study) if study_ids is None else select(Study).where(Study.id.in_(study_ids))
    return {s.id: protocol_of(s).deviations for s in session.exec(query).all()}


_DOSE_COLUMNS = (
    d_t.c.id,
    d_t.c.participant_id,
    d_t.c.local_date,
    d_t.c.state,
    d_t.c.window_closes_at,
    d_t.c.taken_at,
    d_t.c.reported_at,
)


def _doses(session: Session, ids: list[int]) -> dict[int, list]:
    query = (
        select(*_DOSE_COLUMNS)
        .where(in_values(session, d_t.c.participant_id, ids))
        .order_by(d_t.c.participant_id, d_t.c.local_date, d_t.c.seq)
    )
    by_participant: dict[int, list] = defaultdict(list)
    for row in session.connection().execute(query):
        by_participant[row.participant_id].append(row)
    return by_participant


def _events(session: Session, ids: list[int]) -> dict[int, list]:
    """The events detection looks at: into missed or held, and any by staff."""
    query = (
        select(e_t, d_t.c.participant_id)
        .join(d_t, d_t.c.id == e_t.c.dose_id)
        .where(in_values(session, d_t.c.participant_id, ids))
        .where(or_(e_t.c.to_state.in_([DoseState.MISSED.value, DoseState.HELD.value]), e_t.c.source.in_(STAFF_SOURCES)))
        .order_by(e_t.c.id)
    )
    by_participant: dict[int, list] = defaultdict(list)
    for row in session.connection().execute(query):
        by_participant[row.participant_id].append(row)
    return by_participant


def _existing(session: Session, keys: list[str]) -> dict[str, Deviation]:
    rows: dict[str, Deviation] = {}
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        for deviation in session.exec(select(Deviation).where(in_values(session, Deviation.dedupe_key, chunk))):
            rows[deviation.dedupe_key] = deviation
    return rows


# --- writing ----------------------------------------------------------------------------


def _insert(session: Session, found: list[Found], *, now: datetime) -> list[dict]:
    """Insert the new deviations in one statement; a key inserted meanwhile by a racing run is skipped."""
    if not found:
        return []
    values = [
        {
            "participant_id": f.participant_id,
            "site_id": f.site_id,
            "dose_id": f.dose_id,
            "kind": f.kind,
            "classification": f.classification,
            "rule": f.rule,
            "detail": f.detail,
            "local_date": f.local_date,
            "detected_at": now,
            "dedupe_key": f.key,
            "review_state": DeviationReview.OPEN.value,
            "comment": "",
            "reviewed_by": "",
            "reviewed_at": None,
        }
        for f in found
    ]
    # Only the keys come back (fewer values to read); the audit's copy of each row is what was sent.
    by_key = {v["dedupe_key"]: v for v in values}
    inserted = bulk_insert(session, dev_t, values, returning=("id", "dedupe_key"), skip_conflicts_on="dedupe_key")
    return [{"id": row_id, **by_key[key]} for row_id, key in inserted]


def _apply(
    session: Session,
    found: list[Found],
    report: DeviationReport,
    *,
    now: datetime,
    creatable: set[str] | None = None,
    upgrade_only: bool = False,
) -> None:
    """Insert what is missing (of `creatable`, when given), bring existing rows' classification and facts up to
    date (only minor to major with `upgrade_only`); the ORM flush audits the updates."""
    existing = _existing(session, [f.key for f in found])
    new = [f for f in found if f.key not in existing and (creatable is None or f.key in creatable)]
    for start in range(0, len(new), 1000):
        created = _insert(session, new[start : start + 1000], now=now)
        record_changes(session, Deviation, created=created)
        report.created.update(row["kind"] for row in created)
    for f in found:
        row = existing.get(f.key)
        if row is None or (row.classification, row.rule, row.detail) == (f.classification, f.rule, f.detail):
            continue
        if upgrade_only and not (row.classification == MINOR and f.classification == MAJOR):
            continue
        row.classification, row.rule, row.detail = f.classification, f.rule, f.detail
        session.add(row)
        report.reclassified += 1


def detect_deviations(session: Session, *, now: datetime, participant_ids: Iterable[int] | None = None):
    """Derive the deviation log of these participants (all when None) from their doses and dose events:
    insert the deviations not recorded yet, re-classify those whose facts changed; returns a DeviationReport."""
    report = DeviationReport()
    participants = _participants(session, participant_ids)
    rules = _rules(session, {p.study_id for p in participants})
    with acting(session, JOB_ACTOR, "derived from the dose records by the protocol's [deviations] rules"):
        session.flush()  # pending ORM changes first: the reads below go straight to the database
        for start in range(0, len(participants), CHUNK):
            chunk = participants[start : start + CHUNK]
            ids = [p.id for p in chunk]
            doses, events = _doses(session, ids), _events(session, ids)
            found: list[Found] = []
            for participant in chunk:
                rule, mine = rules[participant.study_id], doses.get(participant.id, [])
                theirs = events.get(participant.id, [])
                ever_missed = {e.dose_id for e in theirs if e.to_state == DoseState.MISSED.value}
                found += _dose_rows(rule, participant, mine, ever_missed)
                found += _event_rows(rule, participant, theirs, {d.id: d for d in mine})
            _apply(session, found, report, now=now)
        report.participants = len(participants)
    return report


def review_deviation(
    session: Session, *, deviation: Deviation, state: str, comment: str, actor: Actor, now: datetime
) -> Deviation:
    """A nurse's review: the state (open, reviewed, not_a_deviation) and a comment saying why; audited."""
    if state not in REVIEW_STATES:
        raise InvalidInput(f"review state must be one of {', '.join(REVIEW_STATES)}", field="review_state")
    text = (comment or "").strip()
    if not text:
        raise InvalidInput("a comment saying what was found is required", field="comment")
    if len(text) > 2000:
        raise InvalidInput("the comment is longer than 2000 characters", field="comment")
    with acting(session, actor, text):
        deviation.review_state, deviation.comment = state, text
        deviation.reviewed_by, deviation.reviewed_at = actor.label, now
        session.add(deviation)
    return deviation
