"""Planning the outbox from doses and VAS cadence: reminders, nudges and prompts follow every change."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Callable, ContextManager, Sequence

from pydantic_core import PydanticUndefined
from sqlalchemy import ColumnElement, Row, and_, bindparam
from sqlmodel import Session, select

from notifications.housekeeping import expire, is_stale
from notifications.models import OutboundMessage, OutboxStatus, Purpose
from notifications.templates import render
from schedules.bulk import bulk_insert, in_values
from schedules.calendar import (
    in_quiet_hours,
    local_wall_to_utc,
    next_allowed_send,
    to_local,
)
from schedules.changes import acting, current_actor, record_changes
from schedules.models import (
    Dose,
    DoseState,
    Participant,
    ParticipantStatus,
    Site,
    Study,
)
from schedules.participants import closing_allowed, messaging_allowed
from schedules.studies import protocol_of
from schedules.wallclock import parse_hhmm

HORIZON = timedelta(hours=36)
CHUNK = 500  # participants per planning transaction
PLANNED = OutboxStatus.PLANNED.value
SCHEDULED = DoseState.SCHEDULED.value
PLANNED_PURPOSES = (
    Purpose.DOSE_REMINDER.value,
    Purpose.DOSE_NUDGE.value,
    Purpose.VAS_PROMPT.value,
    Purpose.DOSE_AND_VAS.value,
    Purpose.STUDY_CLOSING.value,
)
SAME_HOUR = timedelta(hours=1)  # a reminder and a VAS prompt this close together go as one SMS
# Which template names the dose's date, by the days between the dose date and the local day of sending.
REMINDER_TEMPLATES = {0: "dose_reminder"}
NUDGE_TEMPLATES = {0: "dose_nudge", 1: "dose_nudge_yesterday"}


@dataclass
class PlanReport:
    """What a planning pass did."""

    created: int = 0
    updated: int = 0
    cancelled: int = 0
    expired: int = 0
    participants: int = 0
    by_purpose: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        expired = f", expired {self.expired}" if self.expired else ""
        return (
            f"planned {self.created} new, re-timed {self.updated}, cancelled {self.cancelled}{expired} "
            f"for {self.participants} participant(s)"
        )


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


def day_ends(instant: datetime, zone: str) -> datetime:
    """The first instant of the local day after the one `instant` falls on."""
    return local_wall_to_utc(to_local(instant, zone).date() + timedelta(days=1), time(0, 0), zone)


def dose_day_template(templates: dict[int, str], dated: str, dose_day: date, sent: datetime, zone: str) -> str:
    """The template whose words ("today", "yesterday") are true of the dose day on the local day `sent` falls
    on; `dated` (the bare date) when none is."""
    return templates.get((to_local(sent, zone).date() - dose_day).days, dated)


def wanted_for_dose(dose: Dose, participant: Participant, protocol, *, site_phone: str) -> list[Wanted]:
    """The reminder (at the chosen time) and the nudge (3 h later, out of quiet hours) of a dose. Each names
    the dose's date as seen on the day it is due, and is not sent after that day ends (its words would be wrong)."""
    rules = protocol.reminders
    zone = participant.time_zone
    lang = participant.language
    reminder_key, nudge_key = dose_keys(dose.id)
    local_date = dose.local_date.isoformat()
    reminder = dose_day_template(REMINDER_TEMPLATES, "dose_reminder_dated", dose.local_date, dose.due_at, zone)
    wanted = [
        Wanted(
            Purpose.DOSE_REMINDER.value,
            reminder_key,
            "dose",
            dose.id,
            dose.due_at,
            last_useful_moment(
                dose.due_at, zone, rules, closes=min(dose.window_closes_at, day_ends(dose.due_at, zone))
            ),
            render(reminder, lang, local_date=local_date, site_phone=site_phone),
            lang,
        ),
    ]
    nudge_at = next_allowed_send(
        dose.due_at + timedelta(minutes=rules.nudge_after_minutes),
        zone,
        quiet_start=rules.quiet_start,
        quiet_end=rules.quiet_end,
    )
    if nudge_at < dose.window_closes_at:
        nudge = dose_day_template(NUDGE_TEMPLATES, "dose_nudge_dated", dose.local_date, nudge_at, zone)
        wanted.append(
            Wanted(
                Purpose.DOSE_NUDGE.value,
                nudge_key,
                "dose",
                dose.id,
                nudge_at,
                last_useful_moment(nudge_at, zone, rules, closes=min(dose.window_closes_at, day_ends(nudge_at, zone))),
                render(nudge, lang, local_date=local_date),
                lang,
            )
        )
    return wanted


def fold_vas_into_reminder(
    dose_wanted: list[Wanted], vas_wanted: list[Wanted], *, dose, participant, site_phone: str
) -> list[Wanted]:
    """A dose reminder and a VAS prompt due within the same hour go as one SMS that asks both. The VAS prompt
    (in `vas_wanted`, changed in place) becomes that SMS and keeps its key, so the day's prompt stays one
    message whatever happens to the dose; the reminder is dropped (what is returned is the dose's messages).
    Only a reminder for today is folded (the combined text says "today")."""
    reminder = next((w for w in dose_wanted if w.purpose == Purpose.DOSE_REMINDER.value), None)
    if reminder is None or to_local(reminder.due_at, participant.time_zone).date() != dose.local_date:
        return dose_wanted
    for i, vas in enumerate(vas_wanted):
        if vas.purpose == Purpose.VAS_PROMPT.value and abs(vas.due_at - reminder.due_at) < SAME_HOUR:
            vas_wanted[i] = replace(
                vas,
                purpose=Purpose.DOSE_AND_VAS.value,
                ref_type="dose",
                ref_id=dose.id,
                due_at=reminder.due_at,
                not_after=min(vas.not_after, reminder.not_after),
                body=render(
                    "dose_reminder_with_vas",
                    participant.language,
                    local_date=dose.local_date.isoformat(),
                    site_phone=site_phone,
                ),
            )
            return [w for w in dose_wanted if w is not reminder]
    return dose_wanted


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
            out.append(
                Wanted(
                    Purpose.VAS_PROMPT.value,
                    f"vas_prompt:participant:{participant.id}:{day.isoformat()}",
                    "participant",
                    participant.id,
                    due,
                    not_after,
                    render("vas_prompt", participant.language),
                    participant.language,
                )
            )
    return out


def closing_key(participant_id: int) -> str:
    """Dedupe key of a participant's closing message: one per participant, ever."""
    return f"study_closing:participant:{participant_id}"


def _near_end(participant, *, now: datetime, horizon: timedelta) -> bool:
    """The follow-up end date could fall within the horizon: a date comparison, no time-zone arithmetic
    (most participants are nowhere near their end date on a given run; every zone is within a day of UTC)."""
    day = participant.follow_up_end_date
    return (now - timedelta(days=2)).date() <= day <= (now + horizon + timedelta(days=2)).date()


def wanted_closing(
    participant, protocol, *, site_phone: str, now: datetime, horizon: timedelta, planned: bool = False
) -> list[Wanted]:
    """The closing message on the follow-up end date, at the chosen time (at quiet_end if that is in quiet
    hours, so it stays on that day), while within the horizon and not stale. One already `planned` stays
    wanted wherever its date has moved (its key is the participant's only one: cancelled, it would never
    be planned again), and past its last useful moment, so that it is expired rather than cancelled."""
    rules, zone, day = protocol.reminders, participant.time_zone, participant.follow_up_end_date
    if not planned and not _near_end(participant, now=now, horizon=horizon):
        return []
    due = local_wall_to_utc(day, parse_hhmm(participant.reminder_time), zone)
    if in_quiet_hours(to_local(due, zone).time(), start=rules.quiet_start, end=rules.quiet_end):
        due = local_wall_to_utc(day, rules.quiet_end, zone)
    not_after = last_useful_moment(due, zone, rules, closes=day_ends(due, zone))
    if not planned and not (now <= not_after and due <= now + horizon):
        return []
    lang = participant.language
    return [
        Wanted(
            Purpose.STUDY_CLOSING.value,
            closing_key(participant.id),
            "participant",
            participant.id,
            due,
            not_after,
            render("study_closing", lang, site_phone=site_phone),
            lang,
        )
    ]


def _among(session: Session, column, ids: Sequence[int]):
    """`column` equal to one of `ids`: a plain = for one (the usual per-participant sync)."""
    return column == ids[0] if len(ids) == 1 else in_values(session, column, ids)


def _planned_rows(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Row]]:
    """The planned reminders, nudges and VAS prompts of these participants, by participant and dedupe key.
    Plain rows, not ORM objects: most are compared and left alone."""
    rows = session.execute(
        select(
            OutboundMessage.id,
            OutboundMessage.participant_id,
            OutboundMessage.dedupe_key,
            OutboundMessage.purpose,
            OutboundMessage.due_at,
            OutboundMessage.not_after,
            OutboundMessage.body,
        )
        .where(
            _among(session, OutboundMessage.participant_id, ids),
            OutboundMessage.status == PLANNED,
            OutboundMessage.purpose.in_(PLANNED_PURPOSES),
        )
        .order_by(OutboundMessage.id)
    ).all()
    out: dict[int, dict[str, Row]] = {}
    for row in rows:
        out.setdefault(row.participant_id, {})[row.dedupe_key] = row
    return out


def _doses_in_horizon(
    session: Session, ids: Sequence[int], *, now: datetime, horizon: timedelta
) -> dict[int, list[Row]]:
    """Scheduled doses whose reminder falls within the horizon and whose window is open, by participant."""
    # The state is checked here rather than in SQL: without it the participant index is the only
    # one that fits, so the plan stays a short index read even on a table without statistics.
    rows = session.execute(
        select(Dose.id, Dose.participant_id, Dose.local_date, Dose.due_at, Dose.window_closes_at, Dose.state)
        .where(_among(session, Dose.participant_id, ids), Dose.window_closes_at > now, Dose.due_at <= now + horizon)
        .order_by(Dose.id)
    ).all()
    out: dict[int, list[Row]] = {}
    for row in rows:
        if row.state == SCHEDULED:
            out.setdefault(row.participant_id, []).append(row)
    return out


@dataclass
class _Lookups:
    """What a planning pass looks up once: each study's protocol and each site's phone."""

    protocols: dict[int, object] = field(default_factory=dict)
    site_phones: dict[int, str] = field(default_factory=dict)
    dose_messages: dict[tuple, list[Wanted]] = field(default_factory=dict)

    def for_dose(self, dose, participant, protocol, phone: str) -> list[Wanted]:
        """wanted_for_dose, worked out once per distinct timing, zone, language and site phone: in a
        trial most participants share them, and the time-zone arithmetic is most of a pass's work."""
        key = (
            dose.due_at,
            dose.window_closes_at,
            dose.local_date,
            participant.time_zone,
            participant.language,
            phone,
            id(protocol),
        )
        known = self.dose_messages.get(key)
        if known is None:
            known = self.dose_messages[key] = wanted_for_dose(dose, participant, protocol, site_phone=phone)
            return known
        keys = dict(zip((Purpose.DOSE_REMINDER.value, Purpose.DOSE_NUDGE.value), dose_keys(dose.id)))
        return [replace(w, dedupe_key=keys[w.purpose], ref_id=dose.id) for w in known]

    def protocol(self, session: Session, study_id: int):
        """The protocol of a study."""
        if study_id not in self.protocols:
            self.protocols[study_id] = protocol_of(session.get(Study, study_id))
        return self.protocols[study_id]

    def site_phone(self, session: Session, site_id: int) -> str:
        """The phone number of a site (shown in reminders)."""
        if site_id not in self.site_phones:
            self.site_phones[site_id] = session.get(Site, site_id).phone
        return self.site_phones[site_id]


@dataclass
class _Plan:
    """What a planning pass will write: new rows, re-timed rows (id -> wanted) and rows to cancel."""

    fresh: list[dict] = field(default_factory=list)
    retime: dict[int, Wanted] = field(default_factory=dict)
    cancel: list[int] = field(default_factory=list)


def _wanted(
    session: Session, participant, doses, existing: dict, lookups: _Lookups, *, now: datetime, horizon: timedelta
) -> list[Wanted]:
    protocol = lookups.protocol(session, participant.study_id)
    phone = lookups.site_phone(session, participant.site_id)
    vas = wanted_vas(participant, protocol, now=now, horizon=horizon)
    wanted: list[Wanted] = []
    for dose in doses:
        # Past its last useful moment a message is not created at all (expire_stale handles planned ones).
        items = [
            w
            for w in lookups.for_dose(dose, participant, protocol, phone)
            if w.not_after is None or w.not_after >= now or w.dedupe_key in existing
        ]
        if vas:
            items = fold_vas_into_reminder(items, vas, dose=dose, participant=participant, site_phone=phone)
        wanted += items
    return wanted + vas


def _closing(
    session: Session, participant, existing: dict, lookups: _Lookups, *, now: datetime, horizon: timedelta
) -> list[Wanted]:
    """The closing message, if it may still go (it is sent on the end date, when other messages have stopped)."""
    planned = closing_key(participant.id) in existing
    if not (planned or _near_end(participant, now=now, horizon=horizon)) or not closing_allowed(participant, now=now):
        return []
    return wanted_closing(
        participant,
        lookups.protocol(session, participant.study_id),
        site_phone=lookups.site_phone(session, participant.site_id),
        now=now,
        horizon=horizon,
        planned=planned,
    )


def _compare(participant, wanted: list[Wanted], existing: dict[str, Row], plan: _Plan) -> None:
    """Sort wanted messages into new, re-timed and unchanged; planned rows nobody wants are cancelled."""
    existing = dict(existing)
    for item in wanted:
        row = existing.pop(item.dedupe_key, None)
        if row is None:
            plan.fresh.append(
                dict(
                    participant_id=participant.id,
                    site_id=participant.site_id,
                    purpose=item.purpose,
                    ref_type=item.ref_type,
                    ref_id=item.ref_id,
                    dedupe_key=item.dedupe_key,
                    language=item.language,
                    body=item.body,
                    priority=item.priority,
                    due_at=item.due_at,
                    next_attempt_at=item.due_at,
                    not_after=item.not_after,
                )
            )
        elif (row.due_at, row.body, row.not_after, row.purpose) != (
            item.due_at,
            item.body,
            item.not_after,
            item.purpose,
        ):
            plan.retime[row.id] = item
    plan.cancel += [row.id for row in existing.values()]


@lru_cache(maxsize=1)
def _outbox_defaults() -> tuple[dict, dict]:
    """The model's default for each outbox column planning does not choose, as constructing the object
    would fill it in: fixed values, and factories (created_at) called once per insert."""
    fixed, factories = {}, {}
    for key, info in OutboundMessage.model_fields.items():
        if key == "id":
            continue
        if info.default_factory is not None:
            factories[key] = info.default_factory
        elif info.default is not PydanticUndefined:
            fixed[key] = info.default
    return fixed, factories


def _insert_fresh(session: Session, fresh: list[dict], report: PlanReport) -> None:
    # One INSERT for the new ones. A key that exists in any state is left alone: already sent, expired
    # or cancelled means that message had its one chance (never plan it again), and one planned
    # meanwhile by another process stands (the unique key keeps it single).
    if not fresh:
        return
    table = OutboundMessage.__table__
    fixed, factories = _outbox_defaults()
    template = {**fixed, **{key: make() for key, make in factories.items()}}
    values = [{**template, **row} for row in fresh]
    inserted = bulk_insert(
        session, table, values, returning=("id", "dedupe_key", "purpose"), skip_conflicts_on="dedupe_key"
    )
    ids = {key: row_id for row_id, key, _purpose in inserted}
    record_changes(
        session, OutboundMessage, created=[{**v, "id": ids[v["dedupe_key"]]} for v in values if v["dedupe_key"] in ids]
    )
    for _row_id, _key, purpose in inserted:
        report.created += 1
        report.by_purpose[purpose] = report.by_purpose.get(purpose, 0) + 1


def _apply_changes(session: Session, plan: _Plan, report: PlanReport, *, now: datetime) -> None:
    """Re-time and cancel through the ORM (few rows; the flush audits them as it always did)."""
    ids = list(plan.retime) + plan.cancel
    if not ids:
        return
    rows = {
        row.id: row for row in session.exec(select(OutboundMessage).where(_among(session, OutboundMessage.id, ids)))
    }
    for row_id, item in plan.retime.items():
        row = rows.get(row_id)
        if row is not None and row.status == PLANNED:
            # The purpose and target change when a VAS prompt is folded into a reminder or taken out again.
            row.due_at, row.next_attempt_at, row.not_after, row.body, row.language = (
                item.due_at,
                item.due_at,
                item.not_after,
                item.body,
                item.language,
            )
            row.purpose, row.ref_type, row.ref_id = item.purpose, item.ref_type, item.ref_id
            session.add(row)
            report.updated += 1
    _withdraw(session, [rows[i] for i in plan.cancel if i in rows], report, now=now, why=NO_LONGER_WANTED)


NO_LONGER_WANTED = "no longer wanted: the participant's doses, details or consent changed"
DOSE_REPORTED = "the dose was reported"


def _withdraw(session: Session, rows, report: PlanReport, *, now: datetime, why: str) -> None:
    """Take planned messages back: expired if already past their last useful moment, else cancelled; audited."""
    planned = [row for row in rows if row.status == PLANNED]
    if not planned:
        return
    stale = [row for row in planned if is_stale(row, now=now)]
    expire(session, stale, now=now)
    report.expired += len(stale)
    stale_ids = {row.id for row in stale}
    actor, _reason = current_actor(session)
    with acting(session, actor, why):
        for row in planned:
            if row.id not in stale_ids:
                row.status, row.status_updated_at = OutboxStatus.CANCELLED.value, now
                session.add(row)
                report.cancelled += 1


def _sync(
    session: Session,
    participants: Sequence,
    *,
    now: datetime,
    horizon: timedelta,
    report: PlanReport,
    lookups: _Lookups,
) -> None:
    """Bring the planned messages of these participants (ORM objects or plain rows) in line: three
    reads for all of them, one insert for every new row, ORM writes only for rows that change."""
    if not participants:
        return
    ids = [p.id for p in participants]
    planned = _planned_rows(session, ids)
    allowed = [p for p in participants if messaging_allowed(p, now=now)]
    doses = _doses_in_horizon(session, [p.id for p in allowed], now=now, horizon=horizon) if allowed else {}
    allowed_ids = {p.id for p in allowed}
    plan = _Plan()
    for participant in participants:
        report.participants += 1
        existing = planned.get(participant.id, {})
        wanted = []
        if participant.id in allowed_ids:
            wanted = _wanted(
                session, participant, doses.get(participant.id, ()), existing, lookups, now=now, horizon=horizon
            )
        wanted += _closing(session, participant, existing, lookups, now=now, horizon=horizon)
        _compare(participant, wanted, existing, plan)
    _insert_fresh(session, plan.fresh, report)
    _apply_changes(session, plan, report, now=now)


def sync_participant_messages(
    session: Session,
    *,
    participant: Participant,
    now: datetime,
    horizon: timedelta = HORIZON,
    report: PlanReport | None = None,
    site_phones: dict | None = None,
) -> PlanReport:
    """Make the participant's planned reminders, nudges and VAS prompts match their doses and settings."""
    report = report or PlanReport()
    lookups = _Lookups(site_phones=site_phones if site_phones is not None else {})
    _sync(session, [participant], now=now, horizon=horizon, report=report, lookups=lookups)
    return report


DOSE_MESSAGES = (Purpose.DOSE_REMINDER.value, Purpose.DOSE_NUDGE.value, Purpose.DOSE_AND_VAS.value)


def planned_of_dose(message, dose_id) -> ColumnElement[bool]:
    """`message` (OutboundMessage or an alias of it) is a planned reminder or nudge of the dose `dose_id`."""
    return and_(
        message.ref_type == "dose",
        message.ref_id == dose_id,
        message.status == PLANNED,
        message.purpose.in_(DOSE_MESSAGES),
    )


# Built once: every reported dose runs it (unless the caller read the rows already), only the dose changes.
_PLANNED_FOR_DOSE = select(OutboundMessage).where(planned_of_dose(OutboundMessage, bindparam("dose_id")))


def cancel_dose_messages(
    session: Session, *, dose: Dose, now: datetime, planned: Sequence[OutboundMessage] | None = None
) -> int:
    """Withdraw the planned reminder and nudge of a reported dose; returns how many were cancelled. A reminder
    that also asks the day's VAS prompt becomes that prompt alone: the score is still wanted. `planned`: the
    dose's planned_of_dose rows when the caller read them already in this transaction (the SMS webhook's first
    read), else they are read here."""
    rows = session.exec(_PLANNED_FOR_DOSE, params={"dose_id": dose.id}).all() if planned is None else planned
    for row in rows:
        if row.purpose == Purpose.DOSE_AND_VAS.value:
            unfold_vas_prompt(row)
            session.add(row)
    report = PlanReport()
    _withdraw(
        session, [row for row in rows if row.purpose != Purpose.VAS_PROMPT.value], report, now=now, why=DOSE_REPORTED
    )
    return report.cancelled


def unfold_vas_prompt(row: OutboundMessage) -> None:
    """Turn a planned reminder-with-VAS back into the VAS prompt alone, as planning would want it now."""
    row.purpose, row.ref_type, row.ref_id = Purpose.VAS_PROMPT.value, "participant", row.participant_id
    row.body = render("vas_prompt", row.language)


def _candidates(session: Session, *, now: datetime, horizon: timedelta) -> list[int]:
    """Participants the planning job looks at: with doses coming up, not withdrawn, or with planned messages."""
    ids_with_doses = set(
        session.exec(
            select(Dose.participant_id)
            .where(
                Dose.state == SCHEDULED,
                Dose.window_closes_at > now,
                Dose.window_closes_at <= now + horizon + timedelta(days=2),
            )
            .distinct()
        ).all()
    )
    # VAS runs through follow-up for both arms; the planned set also needs cleaning when people stop.
    ids_active = set(
        session.exec(select(Participant.id).where(Participant.status != ParticipantStatus.WITHDRAWN.value)).all()
    )
    ids_with_planned = set(
        session.exec(
            select(OutboundMessage.participant_id)
            .where(OutboundMessage.status == PLANNED, OutboundMessage.participant_id.is_not(None))
            .distinct()
        ).all()
    )
    return sorted(ids_with_doses | ids_active | ids_with_planned)


# Columns planning reads from a participant (plain rows: thousands per run, none of them changed here).
_PARTICIPANT_COLUMNS = (
    Participant.id,
    Participant.study_id,
    Participant.site_id,
    Participant.time_zone,
    Participant.language,
    Participant.reminder_time,
    Participant.first_dose_date,
    Participant.follow_up_end_date,
    Participant.status,
    Participant.opted_out,
    Participant.sms_consent,
)


def _opened(sessions: Session | Callable[[], ContextManager[Session]]) -> ContextManager[Session]:
    return nullcontext(sessions) if isinstance(sessions, Session) else sessions()


def plan_messages(
    sessions: Session | Callable[[], ContextManager[Session]],
    *,
    now: datetime,
    horizon: timedelta = HORIZON,
    chunk: int = CHUNK,
) -> PlanReport:
    """The planning job: every participant who may be messaged, reminders within the horizon.
    `sessions` opens a session per `chunk` participants, each committed when its block ends, so a
    run holds few rows and locks at a time however large the trial; given a Session, all runs in it."""
    report, lookups = PlanReport(), _Lookups()
    with _opened(sessions) as session:
        ids = _candidates(session, now=now, horizon=horizon)
    for start in range(0, len(ids), chunk):
        with _opened(sessions) as session:
            participants = session.execute(
                select(*_PARTICIPANT_COLUMNS)
                .where(_among(session, Participant.id, ids[start : start + chunk]))
                .order_by(Participant.id)
            ).all()
            _sync(session, participants, now=now, horizon=horizon, report=report, lookups=lookups)
    return report
