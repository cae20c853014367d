"""Every VAS and adverse-event write, whoever makes it (SMS, app, staff): the domain change and all that follows it.

Each function looks the protocol up from the participant's study, so no caller can pass the wrong one, and a
new adverse event is escalated here and nowhere else: every entry point gets the on-call page.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlmodel import Session

from notifications.escalation import escalate_serious_ae
from notifications.parsing import IntentKind, parse_vas_value
from notifications.templates import render
from schedules import symptoms
from schedules.changes import Actor
from schedules.errors import Conflict, InvalidInput
from schedules.models import AdverseEvent, Participant, Site, Study, VasScore
from schedules.participants import study_over
from schedules.phones import PhoneVault, region_of
from schedules.protocol import Protocol, VasRule
from schedules.studies import protocol_of

# Sources that are the participant speaking for themselves (staff may enter past data after the end).
PARTICIPANT_SOURCES = ("sms", "app")


class VasRefused(InvalidInput):
    """A VAS the protocol's scale does not take; `reason` is the machine code, `params` the scale for wording it."""

    def __init__(self, reason: str, *, params: dict[str, object]):
        super().__init__(reason, field="value")
        self.reason, self.params = reason, params


def protocol_for(session: Session, participant: Participant) -> Protocol:
    """The protocol of the participant's study."""
    return protocol_of(session.get(Study, participant.study_id))


def vas_scale_params(scale: VasRule) -> dict[str, object]:
    """The scale as message parameters: 0 and 10 rather than 0.0 and 10.0, the way people write a range."""
    plain = lambda value: format(value.normalize(), "f")  # noqa: E731
    return {"scale_min": plain(scale.scale_min), "scale_max": plain(scale.scale_max), "decimals": scale.decimals}


def record_vas(
    session: Session,
    *,
    participant: Participant,
    value: Decimal | str,
    actor: Actor,
    now: datetime,
    inbound_id: int | None = None,
    reason: str | None = None,
    mode: str = "sms_numeric",
) -> VasScore:
    """Record a VAS (`mode`: sms_numeric for a typed number, vas_line for a mark on the app's line); text is read
    as the SMS parser reads it, on the protocol's scale (VasRefused names why not). A participant's own score after
    their study ended is refused: it is not trial data."""
    protocol = protocol_for(session, participant)
    if actor.source in PARTICIPANT_SOURCES and study_over(participant, now=now):
        raise Conflict("the study has ended for this participant; the score is not recorded", field="participant")
    if isinstance(value, str):
        parsed = parse_vas_value(value, scale=protocol.vas)
        if parsed.kind != IntentKind.VAS:
            raise VasRefused(parsed.error or "not_a_number", params=vas_scale_params(protocol.vas))
        value = parsed.value
    return symptoms.record_vas(
        session,
        participant=participant,
        value=value,
        protocol=protocol,
        actor=actor,
        now=now,
        inbound_id=inbound_id,
        reason=reason,
        mode=mode,
    )


def correct_vas(
    session: Session, *, score: VasScore, value: Decimal, reason: str | None, actor: Actor, now: datetime
) -> VasScore:
    """Staff correction of a VAS: a new row on the protocol's scale replaces the old one, which is kept."""
    protocol = protocol_for(session, session.get(Participant, score.participant_id))
    return symptoms.correct_vas(
        session, score=score, value=value, protocol=protocol, reason=reason, actor=actor, now=now
    )


def undo_last_vas(session: Session, *, participant: Participant, actor: Actor, now: datetime) -> VasScore | None:
    """Withdraw the participant's latest VAS if it is younger than the protocol's undo period (SMS UNDO)."""
    within = timedelta(minutes=protocol_for(session, participant).vas.undo_minutes)
    return symptoms.undo_last_vas(session, participant=participant, actor=actor, now=now, within=within)


def report_adverse_event(
    session: Session,
    *,
    participant: Participant,
    actor: Actor,
    now: datetime,
    vault: PhoneVault,
    raw_text: str = "",
    term: str = "other",
    other_text: str = "",
    onset_date: date | None = None,
    severity: str | None = None,
    ongoing: bool | None = None,
    went_to_hospital: bool | None = None,
    reason: str | None = None,
) -> AdverseEvent:
    """Record an adverse event with its nurse alert and, when suspected serious, page the on-call nurse."""
    ae = symptoms.report_adverse_event(
        session,
        participant=participant,
        protocol=protocol_for(session, participant),
        actor=actor,
        now=now,
        raw_text=raw_text,
        term=term,
        other_text=other_text,
        onset_date=onset_date,
        severity=severity,
        ongoing=ongoing,
        went_to_hospital=went_to_hospital,
        reason=reason,
    )
    escalate_serious_ae(session, ae=ae, participant=participant, vault=vault, now=now)
    return ae


def ae_acknowledgement(
    session: Session, *, participant: Participant, ae: AdverseEvent, vault: PhoneVault, e164: str | None = None
) -> str:
    """What the participant is told after reporting an adverse event: the site's phone and the emergency number
    of their phone's country (`e164`, or the number on file)."""
    number = e164 or vault.decrypt(participant.phone_ciphertext)
    return render(
        "reply_ae_serious" if ae.suspected_serious else "reply_ae_recorded",
        participant.language,
        site_phone=session.get(Site, participant.site_id).phone or "-",
        emergency_number=protocol_for(session, participant).safety.emergency_number(region_of(number)),
    )
