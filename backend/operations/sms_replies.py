"""Handle an inbound SMS: store it raw, act on what it says (dose, VAS, adverse event, consent, help), answer it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backend.operations.doses import record_dose
from backend.operations.symptoms import (
    record_vas,
    report_adverse_event,
    undo_last_vas,
    vas_scale_params,
)
from notifications.consent import mark_opted_in, mark_opted_out
from notifications.models import VAS_ASKING_PURPOSES, InboundMessage, OutboundMessage, OutboxStatus, Purpose
from notifications.parsing import Intent, IntentKind, parse_reply
from notifications.templates import render
from schedules.alerts import open_alert
from schedules.changes import Actor
from schedules.doses import InvalidTransition
from schedules.errors import InvalidInput
from schedules.models import (
    AlertKind,
    Dose,
    DoseState,
    Participant,
    ParticipantStatus,
    Site,
    Study,
    VasScore,
)
from schedules.participants import find_by_phone
from schedules.phones import InvalidPhone, PhoneVault, normalize_e164
from schedules.queries import open_dose
from schedules.studies import protocol_of

MAX_BODY = 1600  # ten SMS segments; anything longer is kept but only this much is parsed
NEUTRAL_LANGUAGE = "en"


@dataclass(frozen=True)
class InboundResult:
    """What to answer: reply text (None = answer nothing) and whether this was a replay."""

    reply: str | None
    duplicate: bool
    inbound_id: int


def _store_raw(
    session: Session, *, message_sid: str, from_hash: str, body: str, params: dict, now: datetime
) -> tuple[InboundMessage, bool]:
    existing = session.exec(select(InboundMessage).where(InboundMessage.message_sid == message_sid)).first()
    if existing is not None:
        return existing, True
    row = InboundMessage(
        message_sid=message_sid,
        from_hash=from_hash,
        body=body,
        params_json=json.dumps(params, ensure_ascii=False),
        received_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return session.exec(select(InboundMessage).where(InboundMessage.message_sid == message_sid)).one(), True
    return row, False


def _vas_pending(session: Session, participant: Participant, *, now: datetime, window: timedelta) -> bool:
    """A VAS prompt went out within the reply window and no VAS has been recorded since."""
    prompt = session.exec(
        select(OutboundMessage.sent_at)
        .where(
            OutboundMessage.participant_id == participant.id,
            OutboundMessage.purpose.in_(VAS_ASKING_PURPOSES),
            OutboundMessage.sent_at.is_not(None),
            OutboundMessage.sent_at >= now - window,
        )
        .order_by(OutboundMessage.sent_at.desc())
    ).first()
    if prompt is None:
        return False
    answered = session.exec(
        select(VasScore.id).where(
            VasScore.participant_id == participant.id, VasScore.recorded_at >= prompt, VasScore.status != "withdrawn"
        )
    ).first()
    return answered is None


def _record_reply(
    session: Session,
    *,
    participant: Participant | None,
    inbound: InboundMessage,
    body: str,
    language: str,
    now: datetime,
) -> None:
    """The TwiML reply is an outbound message too: a row in the log, marked sent by Twilio's webhook reply."""
    session.add(
        OutboundMessage(
            participant_id=participant.id if participant else None,
            site_id=participant.site_id if participant else None,
            purpose=Purpose.REPLY.value,
            ref_type="inbound",
            ref_id=inbound.id,
            dedupe_key=f"reply:inbound:{inbound.id}",
            language=language,
            body=body,
            priority=1,
            due_at=now,
            next_attempt_at=now,
            status=OutboxStatus.SENT.value,
            provider_status="twiml",
            sent_at=now,
        )
    )


def handle_inbound(
    session: Session, *, message_sid: str, from_number: str, body: str, params: dict, vault: PhoneVault, now: datetime
) -> InboundResult:
    """Process one inbound SMS exactly once per MessageSid and return the reply to send."""
    try:
        e164 = normalize_e164(from_number)
    except InvalidPhone:
        e164 = from_number.strip()
    inbound, duplicate = _store_raw(
        session, message_sid=message_sid, from_hash=vault.lookup_hash(e164), body=body, params=params, now=now
    )
    if duplicate:
        return InboundResult(inbound.reply_body or None, True, inbound.id)
    participant = find_by_phone(session, e164=e164, vault=vault)
    if participant is None:
        reply = render("reply_unknown_sender", NEUTRAL_LANGUAGE)
        inbound.intent, inbound.outcome = "unknown_sender", "no participant has this number"
    else:
        inbound.participant_id = participant.id
        reply = _act(session, participant=participant, inbound=inbound, text=body[:MAX_BODY], vault=vault, now=now)
    inbound.processed_at, inbound.reply_body = now, reply or ""
    session.add(inbound)
    if reply:
        _record_reply(
            session,
            participant=participant,
            inbound=inbound,
            body=reply,
            language=participant.language if participant else NEUTRAL_LANGUAGE,
            now=now,
        )
    session.flush()
    return InboundResult(reply, False, inbound.id)


def _act(
    session: Session, *, participant: Participant, inbound: InboundMessage, text: str, vault: PhoneVault, now: datetime
) -> str | None:
    study = session.get(Study, participant.study_id)
    protocol = protocol_of(study)
    site = session.get(Site, participant.site_id)
    lang = participant.language
    actor = Actor("sms", f"participant:{participant.id}")
    dose = open_dose(session, participant, now=now)
    dose_open = dose is not None and dose.window_opens_at <= now < dose.window_closes_at
    expecting_vas = _vas_pending(session, participant, now=now, window=timedelta(hours=protocol.vas.reply_window_hours))
    intent = parse_reply(text, scale=protocol.vas, expecting_vas=expecting_vas, dose_open=dose_open)
    inbound.intent = intent.kind.value
    if intent.kind == IntentKind.STOP:
        already = participant.opted_out
        mark_opted_out(session, participant=participant, now=now, actor=actor, why="participant sent STOP")
        inbound.outcome = "already opted out" if already else "opted out"
        # The single confirmation carriers allow; a repeated STOP is not answered again.
        return None if already else render("reply_stop", lang)
    if intent.kind == IntentKind.START:
        mark_opted_in(session, participant=participant, now=now, actor=actor, why="participant sent START")
        inbound.outcome = "opted in"
        return render("reply_start", lang)
    reply = _answer(
        session,
        participant=participant,
        protocol=protocol,
        site=site,
        intent=intent,
        dose=dose,
        inbound=inbound,
        actor=actor,
        vault=vault,
        now=now,
        expecting_vas=expecting_vas,
    )
    # After STOP nothing is sent until START: the reply is computed and kept, but not sent.
    return None if participant.opted_out else reply


def _answer(
    session: Session,
    *,
    participant,
    protocol,
    site,
    intent: Intent,
    dose: Dose | None,
    inbound: InboundMessage,
    actor: Actor,
    vault: PhoneVault,
    now: datetime,
    expecting_vas: bool,
) -> str:
    lang, phone = participant.language, site.phone or "-"
    kind = intent.kind
    if kind == IntentKind.HELP:
        inbound.outcome = "help sent"
        return render("reply_help", lang, site_phone=phone)
    if kind in (IntentKind.DOSE_TAKEN, IntentKind.DOSE_NOT_TAKEN):
        return _dose_reply(
            session,
            participant=participant,
            dose=dose,
            taken=kind == IntentKind.DOSE_TAKEN,
            inbound=inbound,
            actor=actor,
            now=now,
            vas_hint=expecting_vas,
        )
    if kind == IntentKind.VAS:
        scale = vas_scale_params(protocol.vas)
        try:
            score = record_vas(
                session, participant=participant, value=intent.value, actor=actor, now=now, inbound_id=inbound.id
            )
        except InvalidInput:
            inbound.outcome = "VAS refused: out of range"
            return render("reply_vas_out_of_range", lang, **scale)
        inbound.outcome = f"VAS {score.value} recorded"
        return render("reply_vas_recorded", lang, value=str(score.value), **scale)
    # Words with no number right after a VAS prompt are not a bad score but maybe a symptom:
    # they fall through to the help reply (which says how to send a score) and the nurse queue.
    if kind == IntentKind.VAS_INVALID and (intent.error != "not_a_number" or any(ch.isdigit() for ch in inbound.body)):
        inbound.outcome = f"VAS refused: {intent.error}"
        key = {"out_of_range": "reply_vas_out_of_range", "too_many_decimals": "reply_vas_too_many_decimals"}
        return render(key.get(intent.error, "reply_vas_not_a_number"), lang, **vas_scale_params(protocol.vas))
    if kind == IntentKind.UNDO:
        undone = undo_last_vas(session, participant=participant, actor=actor, now=now)
        inbound.outcome = f"VAS {undone.value} withdrawn" if undone else "nothing to undo"
        return (
            render("reply_vas_undone", lang, value=str(undone.value)) if undone else render("reply_undo_nothing", lang)
        )
    if kind == IntentKind.ADVERSE_EVENT:
        ae = report_adverse_event(
            session,
            participant=participant,
            actor=actor,
            now=now,
            vault=vault,
            raw_text=intent.text or "",
            term="other",
        )
        inbound.outcome = "adverse event recorded" + (" (suspected serious)" if ae.suspected_serious else "")
        return render("reply_ae_serious" if ae.suspected_serious else "reply_ae_recorded", lang, site_phone=phone)
    inbound.outcome = "unreadable"
    _keep_for_nurses(session, participant=participant, inbound=inbound, actor=actor, now=now)
    return render("reply_unknown", lang, site_phone=phone)


def _keep_for_nurses(
    session: Session, *, participant: Participant, inbound: InboundMessage, actor: Actor, now: datetime
) -> None:
    """Put a reply we could not act on in the nurse queue (the raw text is already stored)."""
    inbound.needs_review, inbound.outcome = True, inbound.outcome + ": kept for nurses"
    open_alert(
        session,
        participant=participant,
        site_id=participant.site_id,
        kind=AlertKind.UNREADABLE_REPLY.value,
        dedupe_key=f"unreadable:inbound:{inbound.id}",
        now=now,
        actor=actor,
        ref_type="inbound",
        ref_id=inbound.id,
        summary="a reply could not be understood",
    )


def _dose_reply(
    session: Session,
    *,
    participant: Participant,
    dose: Dose | None,
    taken: bool,
    inbound: InboundMessage,
    actor: Actor,
    now: datetime,
    vas_hint: bool,
) -> str:
    lang = participant.language
    if participant.status != ParticipantStatus.ACTIVE.value:
        inbound.outcome = f"no dose expected (participant {participant.status})"
        return render("reply_paused", lang)
    if dose is None:
        inbound.outcome = "no open dose"
        return render("reply_no_open_dose", lang)
    local_date = dose.local_date.isoformat()
    try:
        record_dose(session, dose=dose, taken=taken, actor=actor, now=now, reason="reported by SMS")
    except InvalidTransition:
        inbound.outcome = f"dose {dose.seq} already {dose.state}"
        return render("reply_dose_already", lang, local_date=local_date, state=render(f"dose_state_{dose.state}", lang))
    inbound.outcome = f"dose {dose.seq} {dose.state}"
    key = {DoseState.TAKEN.value: "reply_dose_taken", DoseState.TAKEN_LATE.value: "reply_dose_taken_late"}.get(
        dose.state, "reply_dose_not_taken"
    )
    reply = render(key, lang, local_date=local_date)
    if vas_hint:
        reply += " " + render("reply_dose_and_vas_hint", lang)
    return reply
