"""SMS from a number that is no participant's: an on-call phone acknowledging a page with ACK <alert number>."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from backend.operations.alerts import acknowledge_alert
from notifications.models import InboundMessage
from notifications.staff_commands import parse_ack
from notifications.templates import render
from schedules.calendar import to_local
from schedules.changes import Actor
from schedules.models import Alert, AlertState, Participant, Site, Study
from schedules.phones import PhoneVault, mask_e164
from schedules.sites import on_call_numbers
from schedules.studies import protocol_of

NEUTRAL_LANGUAGE = "en"


def _on_call_sites(session: Session, e164: str, vault: PhoneVault) -> list[Site]:
    # A handful of sites: decrypting each list is cheaper than a table of number hashes to keep in step.
    return [site for site in session.exec(select(Site).order_by(Site.id)).all() if e164 in on_call_numbers(site, vault)]


def _language(session: Session, *, alert: Alert | None, sites: list[Site]) -> str:
    """The language the pages went out in: the default language of the alert's study (or of the site's)."""
    participant_id = alert.participant_id if alert is not None else None
    if participant_id is not None:
        study_id = session.get(Participant, participant_id).study_id
    else:
        study_id = session.exec(
            select(Participant.study_id).where(Participant.site_id.in_([s.id for s in sites])).limit(1)
        ).first()
    # A site with nobody enrolled yet speaks the language of the (first) study.
    study = (
        session.get(Study, study_id) if study_id is not None else session.exec(select(Study).order_by(Study.id)).first()
    )
    return protocol_of(study).default_language if study is not None else NEUTRAL_LANGUAGE


def handle_staff_sms(
    session: Session, *, inbound: InboundMessage, e164: str, text: str, vault: PhoneVault, now: datetime
) -> str | None:
    """Act on an SMS from a non-participant and return the reply, or None when the sender is nobody we know
    and the text is no ACK (the caller gives its unknown-sender answer). Nothing changes unless the sender
    is on call at the alert's site and the alert is open."""
    alert_id = parse_ack(text)
    sites = _on_call_sites(session, e164, vault)
    if alert_id is None:
        if not sites:
            return None
        inbound.intent, inbound.outcome = "staff", "on-call number: not an ACK, told how to acknowledge"
        return render("staff_ack_usage", _language(session, alert=None, sites=sites))
    inbound.intent = "staff_ack"
    if not sites:
        inbound.outcome = f"ACK {alert_id} refused: not an on-call number"
        return render("staff_ack_not_on_call", NEUTRAL_LANGUAGE)
    alert = session.get(Alert, alert_id)
    # Another site's alert is answered as an unknown one: an ACK tells nobody what other sites have.
    if alert is None or alert.site_id not in {s.id for s in sites}:
        inbound.outcome = f"ACK {alert_id} refused: no such alert at the sender's site(s)"
        return render("staff_ack_unknown_alert", _language(session, alert=None, sites=sites), alert_id=alert_id)
    language = _language(session, alert=alert, sites=sites)
    if alert.state != AlertState.OPEN.value:
        site = session.get(Site, alert.site_id)
        at_local = to_local(alert.acknowledged_at or alert.opened_at, site.time_zone).strftime("%Y-%m-%d %H:%M")
        inbound.outcome = f"ACK {alert_id}: alert already {alert.state}, nothing changed"
        return render("staff_ack_already", language, alert_id=alert_id, at_local=at_local)
    # The audit trail and the queue name the phone by its last digits only; the number stays encrypted.
    who = f"on-call {mask_e164(e164)}"
    acknowledge_alert(
        session, alert=alert, actor=Actor("sms", who), now=now, reason=f"acknowledged by SMS ACK from {who}"
    )
    inbound.outcome = f"alert {alert_id} acknowledged by SMS"
    return render("staff_ack_done", language, alert_id=alert_id)
