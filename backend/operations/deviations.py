"""Work the deviation log: a nurse reviews a deviation (state and comment); the audit trail keeps each review."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from schedules import deviations as domain
from schedules.changes import Actor
from schedules.models import Deviation


def review_deviation(
    session: Session, *, deviation: Deviation, state: str, comment: str, actor: Actor, now: datetime
) -> Deviation:
    """Record a review: open, reviewed or not_a_deviation, with a comment saying why (who and when are kept)."""
    return domain.review_deviation(session, deviation=deviation, state=state, comment=comment, actor=actor, now=now)
