"""What staff (and the app) do to a participant: enroll, change details, hold, resume, withdraw.

Each operation makes the domain change and re-plans the participant's messages; the caller commits."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session

from backend.operations.replanning import replan_messages
from schedules import participants as domain
from schedules.changes import Actor
from schedules.models import Participant, Site, Study
from schedules.phones import PhoneVault
from schedules.queries import local_today


def enroll(
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
    """Enroll a participant, generate their schedule, plan their first messages (no language: the protocol's)."""
    participant = domain.enroll_participant(
        session,
        study=study,
        site=site,
        study_code=study_code,
        arm=arm,
        phone=phone,
        time_zone=time_zone,
        language=language,
        reminder_time=reminder_time,
        first_dose_date=first_dose_date,
        sms_consent=sms_consent,
        vault=vault,
        actor=actor,
        now=now,
        reason=reason,
    )
    replan_messages(session, participant=participant, now=now)
    return participant


def change_details(
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
    """Change phone, time zone, reminder time, language or consent; future doses and messages follow."""
    domain.update_details(
        session,
        participant=participant,
        vault=vault,
        actor=actor,
        reason=reason,
        now=now,
        phone=phone,
        time_zone=time_zone,
        reminder_time=reminder_time,
        language=language,
        sms_consent=sms_consent,
    )
    replan_messages(session, participant=participant, now=now)
    return participant


def hold(
    session: Session,
    *,
    participant: Participant,
    reason: str | None,
    actor: Actor,
    now: datetime,
    effective: date | None = None,
) -> int:
    """Hold dosing from `effective` (the participant's today by default); returns the doses held."""
    held = domain.hold_dosing(
        session,
        participant=participant,
        reason=reason,
        actor=actor,
        now=now,
        effective=effective or local_today(participant, now),
    )
    replan_messages(session, participant=participant, now=now)
    return held


def resume(
    session: Session,
    *,
    participant: Participant,
    reason: str | None,
    actor: Actor,
    now: datetime,
    resume_date: date | None = None,
) -> int:
    """Resume dosing on `resume_date` (the participant's today by default); returns the doses planned."""
    planned = domain.resume_dosing(
        session,
        participant=participant,
        reason=reason,
        actor=actor,
        now=now,
        resume_date=resume_date or local_today(participant, now),
    )
    replan_messages(session, participant=participant, now=now)
    return planned


def withdraw(session: Session, *, participant: Participant, reason: str | None, actor: Actor, now: datetime) -> int:
    """Withdraw the participant: future doses and messages are cancelled; returns the doses cancelled."""
    cancelled = domain.withdraw(session, participant=participant, reason=reason, actor=actor, now=now)
    replan_messages(session, participant=participant, now=now)
    return cancelled
