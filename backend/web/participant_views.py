"""Shared edges for participant endpoints and pages: the outward view and message re-planning."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from notifications.planning import sync_participant_messages
from schedules.models import Participant, Site, Study


def participant_view(session: Session, participant: Participant, *, masked: bool) -> dict:
    """A participant as the API shows it; the masked assessor never gets arm or dosing dates."""
    site = session.get(Site, participant.site_id)
    study = session.get(Study, participant.study_id)
    view = {
        "id": participant.id,
        "study": study.code,
        "study_code": participant.study_code,
        "site": site.code,
        "phone_masked": "•" * 6 + participant.phone_last2,
        "time_zone": participant.time_zone,
        "language": participant.language,
        "reminder_time": participant.reminder_time,
        "follow_up_end_date": participant.follow_up_end_date,
        "status": participant.status,
        "opted_out": participant.opted_out,
        "sms_consent": participant.sms_consent,
        "enrolled_at": participant.enrolled_at,
    }
    if not masked:
        view.update(arm=participant.arm, first_dose_date=participant.first_dose_date, treatment_end_date=participant.treatment_end_date)
    return view


def sync_messages(session: Session, participant: Participant, *, now: datetime) -> None:
    """Bring the participant's planned reminders in line with their doses right away."""
    session.flush()
    sync_participant_messages(session, participant=participant, now=now)
