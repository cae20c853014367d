"""Enrollment and every later change to a participant: details, hold, resume, withdrawal."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import bindparam
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, select

from schedules.backdating import check_first_dose_date
from schedules.bulk import bulk_insert
from schedules.calendar import is_valid_zone
from schedules.changes import Actor, Changes, acting, record_many
from schedules.doses import transition
from schedules.errors import Conflict, InvalidInput
from schedules.models import (
    Dose,
    DoseState,
    Participant,
    ParticipantStatus,
    Site,
    Study,
)
from schedules.phones import InvalidPhone, PhoneVault, normalize_e164
from schedules.planning import (
    extended_dates,
    follow_up_end_date,
    plan_doses,
    time_dose,
    treatment_end_date,
)
from schedules.queries import doses_of, local_today
from schedules.studies import arm_doses, protocol_of
from schedules.wallclock import parse_hhmm


def _require_reason(reason: str | None) -> str:
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required for this change", field="reason")
    return reason.strip()


def _valid_zone(zone: str) -> str:
    if not is_valid_zone(zone):
        raise InvalidInput(f"{zone!r} is not an IANA time zone (e.g. Asia/Shanghai)", field="time_zone")
    return zone


def _valid_time(value: str) -> str:
    try:
        return parse_hhmm(value).strftime("%H:%M")
    except ValueError as exc:
        raise InvalidInput(str(exc), field="reminder_time") from None


def _offered_language(protocol, language: str) -> str:
    # The study's protocol says which languages it offers; enrollment and later changes check the same list.
    if language not in protocol.languages:
        raise InvalidInput(f"language must be one of {', '.join(protocol.languages)}", field="language")
    return language


def _valid_phone(raw: str) -> str:
    try:
        return normalize_e164(raw)
    except InvalidPhone as exc:
        raise InvalidInput(str(exc), field="phone") from None


def enroll_participant(
    session: Session,
    *,
    study: Study,
    site: Site,
    study_code: str,
    arm: str,
    phone: str,
    time_zone: str,
    language: str | None,
    reminder_time: str,
    first_dose_date: date,
    sms_consent: bool,
    vault: PhoneVault,
    actor: Actor,
    now: datetime,
    reason: str = "enrollment",
) -> Participant:
    """Enroll a participant and generate their schedule; InvalidInput/Conflict name the field.

    A first dose may lie up to the protocol's max_backdate_days in the past; doses whose window closed
    before `now` then wait for a nurse's entry (schedules.backdating.awaits_entry)."""
    protocol = protocol_of(study)
    if arm not in protocol.arm_codes:
        raise InvalidInput(f"unknown arm {arm!r}; this study has {', '.join(protocol.arm_codes)}", field="arm")
    code = (study_code or "").strip()
    if not code:
        raise InvalidInput("study code is required", field="study_code")
    language = _offered_language(protocol, language or protocol.default_language)
    zone, at, e164 = _valid_zone(time_zone), _valid_time(reminder_time), _valid_phone(phone)
    check_first_dose_date(protocol, first_dose_date, zone=zone, now=now)
    arm_rule = protocol.arm(arm)
    planned = plan_doses(protocol, arm_rule, first_dose=first_dose_date, zone=zone, reminder_time=parse_hhmm(at))
    participant = Participant(
        study_id=study.id,
        site_id=site.id,
        study_code=code,
        arm=arm,
        phone_ciphertext=vault.encrypt(e164),
        phone_hash=vault.lookup_hash(e164),
        phone_last2=e164[-2:],
        time_zone=zone,
        language=language,
        reminder_time=at,
        first_dose_date=first_dose_date,
        treatment_end_date=treatment_end_date(arm_rule, first_dose_date),
        follow_up_end_date=follow_up_end_date(
            arm_rule, first_dose=first_dose_date, last_dose=planned[-1].local_date if planned else None
        ),
        sms_consent=sms_consent,
        enrolled_at=now,
    )
    with acting(session, actor, reason):
        created = _insert_participant(session, participant)
        if created is None:
            raise Conflict(f"study code {code!r} is already enrolled in {study.code}", field="study_code")
        # The schedule in one INSERT; both audited as the flush would (one create row per entity), in one statement.
        rows = [
            dict(
                participant_id=participant.id,
                seq=i,
                local_date=p.local_date,
                due_at=p.due_at,
                window_opens_at=p.window_opens_at,
                window_closes_at=p.window_closes_at,
                state=DoseState.SCHEDULED.value,
                reported_at=None,
                taken_at=None,
                injection_site=None,
                source=None,
                note="",
                updated_at=now,
            )
            for i, p in enumerate(planned, start=1)
        ]
        ids = dict(
            (seq, dose_id) for dose_id, seq in bulk_insert(session, Dose.__table__, rows, returning=("id", "seq"))
        )
        record_many(
            session,
            [
                Changes(Participant, created=[created]),
                Changes(Dose, created=[{**row, "id": ids[row["seq"]]} for row in rows]),
            ],
        )
    return participant


def _insert_participant(session: Session, participant: Participant) -> dict | None:
    """INSERT a new participant unless its study code is taken (None then, and nothing written); the
    object becomes persistent with its id, and the inserted values are returned for the audit trail."""
    table = Participant.__table__
    values = {c.key: getattr(participant, c.key) for c in table.columns if c.key != "id"}
    # ON CONFLICT rather than a look-up first: one statement, and a concurrent enrollment of the
    # same code waits for ours and then finds it instead of failing the transaction.
    inserted = bulk_insert(session, table, [values], returning=("id",), skip_conflicts_on=("study_id", "study_code"))
    if not inserted:
        return None
    participant.id = inserted[0][0]
    make_transient_to_detached(participant)  # as if loaded: persistent, nothing pending
    session.add(participant)
    return {**values, "id": participant.id}


def find_by_phone(session: Session, *, e164: str, vault: PhoneVault) -> Participant | None:
    """Match a phone number through its keyed hash (no row is decrypted)."""
    found = find_sender(session, e164=e164, vault=vault)
    return found[0] if found else None


# The participant a phone hash (bound as "phone_hash") belongs to: the latest enrollment wins when a number was
# enrolled twice. Over an alias, so a query that has participant in its FROM does not correlate it. Built once, as
# is SENDER: the SMS webhook's first read is built on it, and building a statement and its cache key every time
# cost as much as running it.
_ENROLLED = Participant.__table__.alias("enrolled")
LATEST_BY_PHONE = (
    select(_ENROLLED.c.id)
    .where(_ENROLLED.c.phone_hash == bindparam("phone_hash"))
    .order_by(_ENROLLED.c.enrolled_at.desc())
    .limit(1)
    .scalar_subquery()
)
SENDER = (
    select(Participant, Site, Study)
    .join(Site, Site.id == Participant.site_id)
    .join(Study, Study.id == Participant.study_id)
    .where(Participant.id == LATEST_BY_PHONE)
)


def find_sender(session: Session, *, e164: str, vault: PhoneVault) -> tuple[Participant, Site, Study] | None:
    """find_by_phone with the participant's site and study, in the same query (the latest enrollment wins when
    a number was enrolled twice)."""
    found = session.exec(SENDER, params={"phone_hash": vault.lookup_hash(e164)}).first()
    return tuple(found) if found else None


def _replan_open_doses(session: Session, participant: Participant, *, now: datetime) -> int:
    """Re-time every scheduled dose whose window has not closed at the participant's local wall time."""
    protocol = protocol_of(session.get(Study, participant.study_id))
    at = parse_hhmm(participant.reminder_time)
    count = 0
    for dose in doses_of(session, participant.id):
        if dose.state != DoseState.SCHEDULED.value or dose.window_closes_at <= now:
            continue
        planned = time_dose(protocol, dose.local_date, zone=participant.time_zone, reminder_time=at)
        dose.due_at, dose.window_opens_at, dose.window_closes_at = (
            planned.due_at,
            planned.window_opens_at,
            planned.window_closes_at,
        )
        dose.updated_at = now
        session.add(dose)
        count += 1
    return count


def update_details(
    session: Session,
    *,
    participant: Participant,
    vault: PhoneVault,
    actor: Actor,
    reason: str | None,
    now: datetime,
    phone: str | None = None,
    time_zone: str | None = None,
    reminder_time: str | None = None,
    language: str | None = None,
    sms_consent: bool | None = None,
) -> Participant:
    """Change phone, time zone, reminder time, language or consent; future doses follow local wall time."""
    why = _require_reason(reason) if actor.source != "app" else (reason or "changed by participant in app")
    with acting(session, actor, why):
        if phone is not None:
            e164 = _valid_phone(phone)
            participant.phone_ciphertext, participant.phone_hash, participant.phone_last2 = (
                vault.encrypt(e164),
                vault.lookup_hash(e164),
                e164[-2:],
            )
        if language is not None:
            participant.language = _offered_language(protocol_of(session.get(Study, participant.study_id)), language)
        if sms_consent is not None:
            participant.sms_consent = sms_consent
        retime = False
        if time_zone is not None and time_zone != participant.time_zone:
            participant.time_zone, retime = _valid_zone(time_zone), True
        if reminder_time is not None and _valid_time(reminder_time) != participant.reminder_time:
            participant.reminder_time, retime = _valid_time(reminder_time), True
        session.add(participant)
        if retime:
            _replan_open_doses(session, participant, now=now)
    return participant


def hold_dosing(
    session: Session, *, participant: Participant, reason: str | None, effective: date, actor: Actor, now: datetime
) -> int:
    """Hold dosing from `effective` (local date): scheduled doses from then on become held."""
    why = _require_reason(reason)
    if participant.status == ParticipantStatus.WITHDRAWN.value:
        raise Conflict("participant is withdrawn", field="status")
    if participant.status == ParticipantStatus.ON_HOLD.value:
        raise Conflict("dosing is already on hold", field="status")
    if not arm_doses(session.get(Study, participant.study_id), participant.arm):
        raise Conflict(f"the {participant.arm} arm has no dosing regimen: there is no dosing to hold", field="status")
    held = 0
    with acting(session, actor, why):
        for dose in doses_of(session, participant.id):
            if dose.local_date >= effective and dose.state == DoseState.SCHEDULED.value and dose.window_closes_at > now:
                transition(session, dose, DoseState.HELD.value, actor=actor, at=now, note=why)
                held += 1
        participant.status, participant.hold_reason, participant.held_from = (
            ParticipantStatus.ON_HOLD.value,
            why,
            effective,
        )
        session.add(participant)
    return held


def resume_dosing(
    session: Session, *, participant: Participant, reason: str | None, resume_date: date, actor: Actor, now: datetime
) -> int:
    """Resume: the every-other-day cadence restarts on `resume_date`; the end date stays
    fixed unless the protocol says extend_to_total_doses. Returns the number of doses planned."""
    why = _require_reason(reason)
    if participant.status != ParticipantStatus.ON_HOLD.value:
        raise Conflict("dosing is not on hold", field="status")
    if participant.held_from and resume_date < participant.held_from:
        raise InvalidInput("resume date is before the hold began", field="resume_date")
    study = session.get(Study, participant.study_id)
    protocol = protocol_of(study)
    arm = protocol.arm(participant.arm)
    at = parse_hhmm(participant.reminder_time)
    doses = doses_of(session, participant.id)
    # Held before dosing began: there is no cadence to restart yet, so it starts on the first-dose date.
    restart = max(resume_date, participant.first_dose_date)
    if protocol.hold.resume_policy == "extend_to_total_doses":
        planned_total = len(
            plan_doses(
                protocol, arm, first_dose=participant.first_dose_date, zone=participant.time_zone, reminder_time=at
            )
        )
        kept = sum(
            1
            for d in doses
            if d.local_date < resume_date and d.state not in (DoseState.HELD.value, DoseState.CANCELLED.value)
        )
        new_days = extended_dates(arm, start=restart, count=planned_total - kept)
    else:
        new_days = [
            p.local_date
            for p in plan_doses(
                protocol,
                arm,
                first_dose=participant.first_dose_date,
                zone=participant.time_zone,
                reminder_time=at,
                start=restart,
            )
        ]
    wanted = set(new_days)
    by_date = {d.local_date: d for d in doses if d.state == DoseState.HELD.value}
    next_seq = max((d.seq for d in doses), default=0) + 1
    with acting(session, actor, why):
        for dose in doses:
            if dose.state == DoseState.HELD.value and dose.local_date >= resume_date and dose.local_date not in wanted:
                transition(
                    session, dose, DoseState.CANCELLED.value, actor=actor, at=now, note="cadence restarted on resume"
                )
        for day in new_days:
            timing = time_dose(protocol, day, zone=participant.time_zone, reminder_time=at)
            existing = by_date.get(day)
            if existing is not None:
                transition(session, existing, DoseState.SCHEDULED.value, actor=actor, at=now, note=why)
                existing.due_at, existing.window_opens_at, existing.window_closes_at = (
                    timing.due_at,
                    timing.window_opens_at,
                    timing.window_closes_at,
                )
                continue
            session.add(
                Dose(
                    participant_id=participant.id,
                    seq=next_seq,
                    local_date=day,
                    due_at=timing.due_at,
                    window_opens_at=timing.window_opens_at,
                    window_closes_at=timing.window_closes_at,
                    updated_at=now,
                )
            )
            next_seq += 1
        if new_days:
            participant.treatment_end_date = max(
                participant.treatment_end_date or new_days[-1], date.fromordinal(new_days[-1].toordinal() + 1)
            )
            participant.follow_up_end_date = follow_up_end_date(
                arm, first_dose=participant.first_dose_date, last_dose=new_days[-1]
            )
        participant.status, participant.hold_reason, participant.held_from = ParticipantStatus.ACTIVE.value, "", None
        session.add(participant)
    return len(new_days)


def withdraw(session: Session, *, participant: Participant, reason: str | None, actor: Actor, now: datetime) -> int:
    """Withdraw from the trial: future doses are cancelled (messages stop with them)."""
    why = _require_reason(reason)
    if participant.status == ParticipantStatus.WITHDRAWN.value:
        raise Conflict("participant is already withdrawn", field="status")
    cancelled = 0
    with acting(session, actor, why):
        for dose in doses_of(session, participant.id):
            if dose.state in (DoseState.SCHEDULED.value, DoseState.HELD.value) and dose.window_closes_at > now:
                transition(session, dose, DoseState.CANCELLED.value, actor=actor, at=now, note=why)
                cancelled += 1
        participant.status, participant.withdrawn_at = ParticipantStatus.WITHDRAWN.value, now
        session.add(participant)
    return cancelled


def study_over(participant: Participant, *, now: datetime) -> bool:
    """True once withdrawn or from the end of follow-up on: what they send then is not trial data."""
    return (
        participant.status == ParticipantStatus.WITHDRAWN.value
        or local_today(participant, now) >= participant.follow_up_end_date
    )


def _reachable(participant: Participant) -> bool:
    """Not withdrawn, not opted out, and consenting to SMS."""
    return (
        participant.status != ParticipantStatus.WITHDRAWN.value
        and not participant.opted_out
        and participant.sms_consent
    )


def messaging_allowed(participant: Participant, *, now: datetime) -> bool:
    """False once withdrawn, opted out, without consent, or past the end of follow-up."""
    return _reachable(participant) and not study_over(participant, now=now)


def closing_allowed(participant: Participant, *, now: datetime) -> bool:
    """Whether the closing message may still go: as messaging_allowed, but through the follow-up end date itself."""
    return _reachable(participant) and local_today(participant, now) <= participant.follow_up_end_date
