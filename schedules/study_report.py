"""The study report's figures: adherence by site and arm, VAS completion by study week, adverse events by term
and grade, the serious-event reporting clock and open deviations; each figure keeps the ids of the rows behind it
(or, for deviations, the log's filter that lists them)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from schedules.adherence import adherence_of
from schedules.calendar import to_local
from schedules.models import (
    AdverseEvent,
    Alert,
    AlertKind,
    AlertState,
    Deviation,
    DeviationClass,
    DeviationReview,
    Dose,
    Participant,
    Site,
    VasScore,
)

UNGRADED = 0  # the grade column of an adverse event nobody has graded yet
WEEK = timedelta(days=7)


@dataclass
class AdherenceGroup:
    """Doses counted, taken and taken on time for a group of participants (a site or an arm)."""

    key: str
    participants: int = 0
    counted: int = 0
    taken: int = 0
    on_time: int = 0

    @property
    def adherence(self) -> float | None:
        return self.taken / self.counted if self.counted else None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.counted if self.counted else None


@dataclass
class VasWeek:
    """Study week `week` (1 = the first seven days from each participant's first dose): who was due a score, who
    gave one. Only weeks that have ended for a participant count."""

    week: int
    expected: list[int] = field(default_factory=list)  # participant ids
    answered: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return len(self.answered) / len(self.expected) if self.expected else None


# How a serious event's 24-hour reporting clock ended, or where it stands.
SAE_ON_TIME, SAE_LATE, SAE_OVERDUE, SAE_RUNNING = "on_time", "late", "overdue", "running"
SAE_STANDINGS = (SAE_ON_TIME, SAE_LATE, SAE_OVERDUE, SAE_RUNNING)


def sae_standing(alert: Alert, *, now: datetime) -> str:
    """On time or late when the alert was resolved (the report went out) before or after its deadline; overdue or
    running while it is open."""
    if alert.state == AlertState.RESOLVED.value and alert.resolved_at is not None:
        return SAE_ON_TIME if alert.deadline_at is None or alert.resolved_at <= alert.deadline_at else SAE_LATE
    return SAE_OVERDUE if alert.deadline_at is not None and now > alert.deadline_at else SAE_RUNNING


@dataclass
class StudyReport:
    """Every figure of the report page, for the participants in scope."""

    participants: int
    by_site: list[AdherenceGroup]
    by_arm: list[AdherenceGroup]
    vas_weeks: list[VasWeek]
    ae_grades: dict[str, dict[int, list[int]]]  # term -> grade (0 = ungraded) -> adverse-event ids
    sae: dict[str, list[int]]  # standing -> alert ids
    open_deviations: dict[str, int]  # classification -> deviations not reviewed yet

    @property
    def sae_compliance(self) -> float | None:
        """Reported within the deadline, of the serious events whose clock has ended or run out."""
        decided = len(self.sae[SAE_ON_TIME]) + len(self.sae[SAE_LATE]) + len(self.sae[SAE_OVERDUE])
        return len(self.sae[SAE_ON_TIME]) / decided if decided else None


def _adherence_groups(participants: list[Participant], doses: dict[int, list[Dose]], key, *, now: datetime):
    groups: dict[str, AdherenceGroup] = {}
    for p in participants:
        group = groups.setdefault(key(p), AdherenceGroup(key(p)))
        figures = adherence_of(doses[p.id], now=now, enrolled_at=p.enrolled_at)
        group.participants += 1
        group.counted += figures.counted
        group.taken += figures.taken
        group.on_time += figures.on_time
    return [groups[k] for k in sorted(groups)]


def _vas_end(p: Participant) -> date:
    """The first local day on which the participant is no longer asked for a score."""
    if p.withdrawn_at is not None:
        return min(p.follow_up_end_date, to_local(p.withdrawn_at, p.time_zone).date())
    return p.follow_up_end_date


def vas_weeks(participants: list[Participant], scores: list[VasScore], *, now: datetime) -> list[VasWeek]:
    """Completion by study week: a participant is expected in each week that has ended before their local today and
    lies in their VAS period; they answered it with at least one valid score on a local day of that week."""
    answered: dict[int, set[int]] = defaultdict(set)
    by_id = {p.id: p for p in participants}
    for score in scores:
        p = by_id.get(score.participant_id)
        if p is None:
            continue
        days = (to_local(score.recorded_at, p.time_zone).date() - p.first_dose_date).days
        if days >= 0:
            answered[p.id].add(days // 7 + 1)
    weeks: dict[int, VasWeek] = {}
    for p in participants:
        today = to_local(now, p.time_zone).date()
        end = min(today, _vas_end(p))
        week = 1
        while p.first_dose_date + week * WEEK <= end:
            row = weeks.setdefault(week, VasWeek(week))
            row.expected.append(p.id)
            if week in answered[p.id]:
                row.answered.append(p.id)
            week += 1
    return [weeks[w] for w in sorted(weeks)]


CTCAE_KEY = "ctcae:"  # a report's term key once a nurse has coded it: "ctcae:" + its MedDRA code


def ae_term_key(ae: AdverseEvent) -> str:
    """What a report is counted under: its CTCAE v5 term once coded, else the term the participant chose."""
    return CTCAE_KEY + ae.ctcae_term if ae.ctcae_term else ae.term


def _ae_grades(events: list[AdverseEvent]) -> dict[str, dict[int, list[int]]]:
    table: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for ae in events:
        table[ae_term_key(ae)][ae.ctcae_grade or UNGRADED].append(ae.id)
    return {term: dict(grades) for term, grades in sorted(table.items())}


def study_report(session: Session, *, site_ids: list[int] | None, now: datetime) -> StudyReport:
    """The report for the participants of the given sites (None: every site), one query per table."""
    query = select(Participant).order_by(Participant.study_code)
    if site_ids is not None:
        query = query.where(Participant.site_id.in_(site_ids))
    participants = list(session.exec(query).all())
    ids = [p.id for p in participants]
    doses: dict[int, list[Dose]] = defaultdict(list)
    for dose in session.exec(select(Dose).where(Dose.participant_id.in_(ids))).all():
        doses[dose.participant_id].append(dose)
    scores = list(session.exec(select(VasScore).where(VasScore.participant_id.in_(ids), VasScore.status == "valid")))
    events = list(session.exec(select(AdverseEvent).where(AdverseEvent.participant_id.in_(ids))))
    serious = session.exec(
        select(Alert).where(Alert.participant_id.in_(ids), Alert.kind == AlertKind.SERIOUS_AE.value)
    ).all()
    open_deviations = {c.value: 0 for c in DeviationClass}
    for classification, count in session.exec(
        select(Deviation.classification, func.count())
        .where(Deviation.participant_id.in_(ids), Deviation.review_state == DeviationReview.OPEN.value)
        .group_by(Deviation.classification)
    ):
        open_deviations[classification] = count
    sae: dict[str, list[int]] = {standing: [] for standing in SAE_STANDINGS}
    for alert in sorted(serious, key=lambda a: a.id):
        sae[sae_standing(alert, now=now)].append(alert.id)
    site_codes = _site_codes(session, participants)
    return StudyReport(
        participants=len(participants),
        by_site=_adherence_groups(participants, doses, lambda p: site_codes[p.site_id], now=now),
        by_arm=_adherence_groups(participants, doses, lambda p: p.arm, now=now),
        vas_weeks=vas_weeks(participants, scores, now=now),
        ae_grades=_ae_grades(events),
        sae=sae,
        open_deviations=open_deviations,
    )


def _site_codes(session: Session, participants: list[Participant]) -> dict[int, str]:
    site_ids = {p.site_id for p in participants}
    return {s.id: s.code for s in session.exec(select(Site).where(Site.id.in_(site_ids))).all()}
