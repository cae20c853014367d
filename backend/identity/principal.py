"""Who is acting: an authenticated caller and what each role may do."""

from __future__ import annotations

from dataclasses import dataclass

from backend.models import Role
from schedules.changes import Actor
from schedules.models import AlertKind

ALL_STAFF = tuple(role.value for role in Role)
# Everyone but the masked outcome assessor: they may see arm, doses, messages and act on them.
UNMASKED = (Role.ADMIN.value, Role.INVESTIGATOR.value, Role.NURSE.value)
# The masked assessor sees adverse-event alerts only: every other kind tells of dosing or messaging,
# which would unmask the arm.
ASSESSOR_ALERT_KINDS = (AlertKind.ADVERSE_EVENT.value, AlertKind.SERIOUS_AE.value)
# Investigators (and admins) grade and sign off adverse events; nurses may not.
REVIEWERS = (Role.ADMIN.value, Role.INVESTIGATOR.value)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a staff member (role, site) or a participant (app)."""

    kind: str  # staff | participant
    id: int
    role: str = ""
    site_id: int | None = None

    @property
    def actor(self) -> Actor:
        """The audit actor for changes this caller makes."""
        if self.kind == "participant":
            return participant_actor(self.id)
        return Actor("staff", f"staff:{self.id}")

    @property
    def masked(self) -> bool:
        """True for the outcome assessor: never sees arm or dosing."""
        return self.role == Role.ASSESSOR.value

    def can_see_site(self, site_id: int | None) -> bool:
        """Admins see every site; other staff only their own; a participant no site-wide data."""
        if self.kind != "staff":
            return False
        return self.role == Role.ADMIN.value or self.site_id == site_id


def participant_actor(participant_id: int) -> Actor:
    """The audit actor of a participant acting through the app."""
    return Actor("app", f"participant:{participant_id}")
