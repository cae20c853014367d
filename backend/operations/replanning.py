"""After any change to a participant's doses or details: their planned messages follow at once."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from notifications.planning import sync_participant_messages
from schedules.models import Participant


def replan_messages(session: Session, *, participant: Participant, now: datetime) -> None:
    """Bring the participant's planned reminders, nudges and prompts in line with their doses and details."""
    session.flush()
    sync_participant_messages(session, participant=participant, now=now)
