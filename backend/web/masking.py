"""What the masked outcome assessor may see, declared once for the API and the pages: the same for every arm.

Masked answers have schemas and templates of their own (`MaskedParticipantSchema`, `MaskedAdverseEventSchema`,
`MaskedAlertSchema`, `participant_masked.html`, `dashboard_masked.html`); these are the values they show in place
of what would tell the arm. A route the assessor may call declares itself masked-safe (`require_staff(...,
masked_safe=True)`, `staff_page(masked_safe=True)`); every other route refuses the assessor.
"""

from __future__ import annotations

from backend.web.shown import Shown
from schedules.ctcae import ctcae_term
from schedules.models import ParticipantStatus, Study
from schedules.protocol import Protocol
from schedules.studies import protocol_of

WITHHELD = "withheld"


def masked_status(participant) -> str:
    """Only dosing is ever held, so a hold shows as active: withdrawn or active."""
    return participant.status if participant.status == ParticipantStatus.WITHDRAWN.value else "active"


def masked_term(term: str, protocol: Protocol) -> str:
    """An adverse-event term, or `withheld` when the protocol lists it as telling the arm."""
    return WITHHELD if term in protocol.blinding.withheld_ae_terms else term


def masked_adverse_event(ae, protocol: Protocol) -> Shown:
    """The adverse event with a term that tells the arm withheld, the app's and the CTCAE one alike (free text
    and the action taken with the study drug are left out by the masked views)."""
    if ae.ctcae_term in protocol.blinding.withheld_ctcae_terms:
        code, name = WITHHELD, WITHHELD
    else:
        coded = ctcae_term(ae.ctcae_term)
        code, name = ae.ctcae_term, coded.term if coded else ""
    return Shown(ae, term=masked_term(ae.term, protocol), ctcae_term=code, ctcae_term_name=name)


def masked_title(study: Study) -> str:
    """The study's title as the assessor reads it (the real one names the drug)."""
    return protocol_of(study).blinding.masked_title


def visible_terms(protocol: Protocol, terms: tuple[str, ...]) -> list[str]:
    """The adverse-event vocabulary without the terms withheld from the assessor."""
    return [term for term in terms if term not in protocol.blinding.withheld_ae_terms]


def visible_ctcae_codes(protocols: list[Protocol], codes: tuple[str, ...]) -> list[str]:
    """The CTCAE v5 codes without those any of the protocols withholds from the assessor."""
    withheld = {code for protocol in protocols for code in protocol.blinding.withheld_ctcae_terms}
    return [code for code in codes if code not in withheld]
