"""The one access scope: which participants, alerts and events a caller may see."""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, true
from sqlmodel import Session

from backend.identity.principal import Principal
from backend.models import Role
from schedules.models import Participant


def site_filter(principal: Principal, site_column: Any) -> Any:
    """A WHERE clause limiting `site_column` to the caller's sites (always true for admins)."""
    if principal.kind != "staff":
        return false()
    if principal.role == Role.ADMIN.value:
        return true()
    return site_column == principal.site_id


def visible_participant(session: Session, principal: Principal, participant_id: int) -> Participant | None:
    """The participant if the caller may see them (their own record for a participant), else None."""
    participant = session.get(Participant, participant_id)
    if participant is None:
        return None
    if principal.kind == "participant":
        return participant if principal.id == participant.id else None
    return participant if principal.can_see_site(participant.site_id) else None
