"""Planning the outbox from doses and VAS cadence: reminders, nudges and prompts follow every change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from notifications.models import OutboundMessage, OutboxStatus, Purpose
from notifications.templates import render
from schedules.bulk import bulk_insert
from schedules.calendar import (
    in_quiet_hours,
    local_wall_to_utc,
    next_allowed_send,
    to_local,
)
from schedules.changes import record_changes
from schedules.models import (
    Dose,
    DoseState,
    Participant,
    ParticipantStatus,
    Site,
    Study,
)
from schedules.participants import messaging_allowed
from schedules.planning import parse_hhmm
from schedules.studies import protocol_of

HORIZON = timedelta(hours=36)
PLANNED = OutboxStatus.PLANNED.value


@dataclass
class PlanReport:
    """What a planning pass did."""

    created: int = 0
    updated: int = 0
    cancelled: int = 0
    participants: int = 0
    by_purpose: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"planned {self.created} new, re-timed {self.updated}, cancelled {self.cancelled} for {self.participants} participant(s)"


@dataclass(frozen=True)
class Wanted:
    """A message that should exist in the outbox."""

    purpose: str
    dedupe_key: str
    ref_type: str
    ref_id: int | None
    due_at: datetime
    not_after: datetime | None
    body: str
    language: str
    priority: int = 5


def dose_keys(dose_id: int) -> tuple[str, str]:
    """Dedupe keys of a dose's reminder and nudge."""
    return f"dose_reminder:dose:{dose_id}", f"dose_nudge:dose:{dose_id}"


def _site_phone(session: Session, participant: Participant, cache: dict) -> str:
    if participant.site_id not in cache:
        cache[participant.site_id] = session.get(Site, participant.site_id).phone
    return cache[participant.site_id]


def last_useful_moment(due: datetime, zone: str, rules, *, closes: datetime | None = None) -> datetime:
    """When a message due at `due` stops being worth sending: the staleness limit, the dose window's
    close, and the start of quiet hours (a late or retried message must not arrive in them; only a
    chosen time that itself lies in quiet hours is sent there, and only within the staleness limit)."""
    limit = due + timedelta(minutes=rules.stale_after_minutes)
    if closes is not None:
        limit = min(limit, closes)
    local = to_local(due, zone)
    if not in_quiet_hours(local.time(), start=rules.quiet_start, end=rules.quiet_end):
        quiet = local_wall_to_utc(local.date(), rules.quiet_start, zone)
        if quiet <= due:
            quiet = local_wall_to_utc(local.date() + timedelta(days=1), rules.quiet_start, zone)
        limit = min(limit, quiet)
    return limit


def wanted_for_dose(dose: Dose, participant: Participant, protocol, *, site_phone: str) -> list[Wanted]:
    """The reminder (at the chosen time) and the nudge (3 h later, out of quiet hours) of a dose."""
    rules = protocol.reminders
    zone = participant.time_zone
    lang = participant.language
    reminder_key, nudge_key = dose_keys(dose.id)
    local_date = dose.local_date.isoformat()
    wanted = [
        Wanted(Purpose.DOSE_REMINDER.value, reminder_key, "dose", dose.id, dose.due_at,
               last_useful_moment(dose.due_at, zone, rules, closes=dose.window_closes_at),
               render("dose_reminder", lang, local_date=local_date, site_phone=site_phone), lang),
    ]
    nudge_at = next_allowed_send(dose.due_at + timedelta(minutes=rules.nudge_after_minutes), zone,
                                 quiet_start=rules.quiet_start, quiet_end=rules.quiet_end)
    if nudge_at < dose.window_closes_at:
        wanted.append(Wanted(Purpose.DOSE_NUDGE.value, nudge_key, "dose", dose.id, nudge_at,
                             last_useful_moment(nudge_at, zone, rules, closes=dose.window_closes_at),
                             render("dose_nudge", lang, local_date=local_date), lang))
    return wanted


def vas_dates(participant: Participant, protocol, *, start: date, end: date) -> list[date]:
    """Local dates of VAS prompts (every N days from the first-dose date) within [start, end]."""
    every = protocol.vas.every_days
    first = participant.first_dose_date.toordinal()
    k = max(0, -(-(start.toordinal() - first) // every))
    days = []
    while True:
        day = date.fromordinal(first + k * every)
        if day > end or day >= participant.follow_up_end_date:
            return days
        days.append(day)
        k += 1


def wanted_vas(participant: Participant, protocol, *, now: datetime, horizon: timedelta) -> list[Wanted]:
    """VAS prompts due within the horizon, at the participant's chosen local time."""
    stale = timedelta(minutes=protocol.reminders.stale_after_minutes)
    today = to_local(now - stale, participant.time_zone).date()
    last = to_local(now + horizon, participant.time_zone).date()
    at = parse_hhmm(participant.reminder_time)
    out = []
    for day in vas_dates(participant, protocol, start=today, end=last):
        due = local_wall_to_utc(day, at, participant.time_zone)
        not_after = last_useful_moment(due, participant.time_zone, protocol.reminders)
        if now <= not_after and due <= now + horizon:
            out.append(Wanted(Purpose.VAS_PROMPT.value, f"vas_prompt:participant:{participant.id}:{day.isoformat()}", "participant",
                              participant.id, due, not_after, render("vas_prompt", participant.language), participant.language))
    return out


def _apply(session: Session, participant: Participant, wanted: list[Wanted], existing: dict[str, OutboundMessage], report: PlanReport) -> None:
    fresh: list[OutboundMessage] = []
    for item in wanted:
        row = existing.pop(item.dedupe_key, None)
        if row is None:
            fresh.append(OutboundMessage(participant_id=participant.id, site_id=participant.site_id, purpose=item.purpose, ref_type=item.ref_type,
                                         ref_id=item.ref_id, dedupe_key=item.dedupe_key, language=item.language, body=item.body,
                                         priority=item.priority, due_at=item.due_at, next_attempt_at=item.due_at, not_after=item.not_after))
        elif row.status == PLANNED and (row.due_at != item.due_at or row.body != item.body or row.not_after != item.not_after):
            row.due_at, row.next_attempt_at, row.not_after, row.body, row.language = item.due_at, item.due_at, item.not_after, item.body, item.language
            session.add(row)
            report.updated += 1
    if not fresh:
        return
    # One INSERT for the new ones. A key that exists in any state is left alone: already sent, expired
    # or cancelled means that message had its one chance (never plan it again), and one planned
    # meanwhile by another process stands (the unique key keeps it single).
    table = OutboundMessage.__table__
    values = [{c.key: getattr(row, c.key) for c in table.columns if c.key != "id"} for row in fresh]
    inserted = bulk_insert(session, table, values, returning=("id", "dedupe_key", "purpose"), skip_conflicts_on="dedupe_key")
    ids = {key: row_id for row_id, key, _purpose in inserted}
    record_changes(session, OutboundMessage, created=[{**v, "id": ids[v["dedupe_key"]]} for v in values if v["dedupe_key"] in ids])
    for _row_id, _key, purpose in inserted:
        report.created += 1
        report.by_purpose[purpose] = report.by_purpose.get(purpose, 0) + 1


def _cancel(session: Session, rows, report: PlanReport) -> None:
    for row in rows:
        if row.status == PLANNED:
            row.status = OutboxStatus.CANCELLED.value
            session.add(row)
            report.cancelled += 1


def sync_participant_messages(session: Session, *, participant: Participant, now: datetime, horizon: timedelta = HORIZON,
                              report: PlanReport | None = None, site_phones: dict | None = None) -> PlanReport:
    """Make the participant's planned reminders, nudges and VAS prompts match their doses and settings."""
    report = report or PlanReport()
    report.participants += 1
    protocol = protocol_of(session.get(Study, participant.study_id))
    planned = session.exec(
        select(OutboundMessage).where(OutboundMessage.participant_id == participant.id, OutboundMessage.status == PLANNED,
                                      OutboundMessage.purpose.in_([Purpose.DOSE_REMINDER.value, Purpose.DOSE_NUDGE.value, Purpose.VAS_PROMPT.value]))
    ).all()
    existing = {row.dedupe_key: row for row in planned}
    wanted: list[Wanted] = []
    if messaging_allowed(participant, now=now):
        doses = session.exec(
            select(Dose).where(Dose.participant_id == participant.id, Dose.state == DoseState.SCHEDULED.value,
                               Dose.window_closes_at > now, Dose.due_at <= now + horizon)
        ).all()
        phone = _site_phone(session, participant, site_phones if site_phones is not None else {})
        for dose in doses:
            # Past its last useful moment a message is not created at all (expire_stale handles planned ones).
            wanted += [w for w in wanted_for_dose(dose, participant, protocol, site_phone=phone)
                       if w.not_after is None or w.not_after >= now or w.dedupe_key in existing]
        wanted += wanted_vas(participant, protocol, now=now, horizon=horizon)
    _apply(session, participant, wanted, existing, report)
    _cancel(session, existing.values(), report)
    return report


def cancel_dose_messages(session: Session, *, dose: Dose) -> int:
    """Cancel the planned reminder and nudge of a dose (it was reported, held or cancelled)."""
    rows = session.exec(select(OutboundMessage).where(OutboundMessage.dedupe_key.in_(dose_keys(dose.id)), OutboundMessage.status == PLANNED)).all()
    report = PlanReport()
    _cancel(session, rows, report)
    return report.cancelled


def plan_messages(session: Session, *, now: datetime, horizon: timedelta = HORIZON) -> PlanReport:
    """The planning job: every participant who may be messaged, reminders within the horizon."""
    report = PlanReport()
    ids_with_doses = set(session.exec(
        select(Dose.participant_id).where(Dose.state == DoseState.SCHEDULED.value, Dose.window_closes_at > now,
                                          Dose.window_closes_at <= now + horizon + timedelta(days=2)).distinct()
    ).all())
    # VAS runs through follow-up for both arms; the planned set also needs cleaning when people stop.
    ids_active = set(session.exec(select(Participant.id).where(Participant.status != ParticipantStatus.WITHDRAWN.value)).all())
    ids_with_planned = set(session.exec(select(OutboundMessage.participant_id).where(OutboundMessage.status == PLANNED,
                                                                                     OutboundMessage.participant_id.is_not(None)).distinct()).all())
    site_phones: dict = {}
    for pid in sorted(ids_with_doses | ids_active | ids_with_planned):
        participant = session.get(Participant, pid)
        if participant is not None:
            sync_participant_messages(session, participant=participant, now=now, horizon=horizon, report=report, site_phones=site_phones)
    return report
