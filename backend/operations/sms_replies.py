"""Handle an inbound SMS: store it raw, act on what it says (dose, VAS, adverse event, consent, help), answer it."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, func, insert, inspect, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import aliased, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from backend.operations.doses import record_dose
from backend.operations.staff_replies import handle_staff_sms
from backend.operations.symptoms import (
    ae_acknowledgement,
    record_vas,
    report_adverse_event,
    undo_last_vas,
    vas_scale_params,
)
from notifications.consent import mark_opted_in, mark_opted_out
from notifications.models import VAS_ASKING_PURPOSES, InboundMessage, OutboundMessage, OutboxStatus, Purpose
from notifications.parsing import CONSENT_KINDS, Intent, IntentKind, parse_reply
from notifications.planning import planned_of_dose
from notifications.templates import render
from schedules.alerts import open_alert
from schedules.bulk import insert_once, update_then_insert
from schedules.changes import Actor, record_changes
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
from schedules.participants import LATEST_BY_PHONE, study_over
from schedules.phones import InvalidPhone, PhoneVault, normalize_e164, region_of
from schedules.protocol import Protocol
from schedules.queries import RECENT_DOSE, pick_open_dose, recent_dose_params
from schedules.studies import protocol_of
from schedules.symptoms import serious_keyword_matches

MAX_BODY = 1600  # ten SMS segments; anything longer is kept but only this much is parsed
NEUTRAL_LANGUAGE = "en"
SYMPTOM_SHOWN = 40  # characters of a symptom read back in a reply
# SMS_KEYWORD_REPLIES: who answers STOP, START and HELP.
KEYWORDS_ANSWERED_BY_CARRIER, KEYWORDS_ANSWERED_BY_US = "twilio", "us"
CONSENT_VALUES = frozenset(kind.value for kind in CONSENT_KINDS)
_INBOUND = InboundMessage.__table__


@dataclass(frozen=True)
class InboundResult:
    """What to answer: reply text (None = answer nothing) and whether this was a replay."""

    reply: str | None
    duplicate: bool
    inbound_id: int


# The participant's latest VAS prompt sent, and whether a VAS has been recorded since: columns of the sender's
# query, so the webhook's first read brings them too (a prompt not answered since it was sent exists exactly
# when the latest one is not).
_LAST_PROMPT = (
    select(func.max(OutboundMessage.sent_at))
    .where(
        OutboundMessage.participant_id == Participant.id,
        OutboundMessage.purpose.in_(sorted(VAS_ASKING_PURPOSES)),
        OutboundMessage.sent_at.is_not(None),
    )
    .scalar_subquery()
    # Said outright: inside the EXISTS below, the nearest enclosing SELECT is vasscore's, and without it the
    # subquery would take participant into its own FROM: the latest prompt sent to anyone.
    .correlate(Participant)
)
_ANSWERED_SINCE = (
    select(VasScore.id)
    .where(
        VasScore.participant_id == Participant.id,
        VasScore.recorded_at >= _LAST_PROMPT,
        VasScore.status != "withdrawn",
    )
    .exists()
)
# The webhook's first read, built once (only the parameters change): the sender (the latest enrollment with the
# phone hash), their site and study, their VAS prompt state, and one row per dose a reply may refer to.
# A dose's planned reminder and nudge come too: a dose report withdraws them (record_dose).
_PLANNED = aliased(OutboundMessage, name="planned")
_SENDER_COLUMNS = (
    Participant,
    Site,
    Study,
    _LAST_PROMPT.label("last_prompt_at"),
    _ANSWERED_SINCE.label("answered"),
    Dose,
    _PLANNED,
)
_RECENT_DOSE_OF_SENDER = and_(Dose.participant_id == Participant.id, RECENT_DOSE)
_PLANNED_OF_RECENT_DOSE = planned_of_dose(_PLANNED, Dose.id)


def _with_sender_rows(statement):
    """`statement` (participant in its FROM) joined to the sender's site, study, recent doses and their planned
    messages (outer joins: the webhook's first read starts from the raw row on PostgreSQL)."""
    return (
        statement.outerjoin(Site, Site.id == Participant.site_id)
        .outerjoin(Study, Study.id == Participant.study_id)
        .outerjoin(Dose, _RECENT_DOSE_OF_SENDER)
        .outerjoin(_PLANNED, _PLANNED_OF_RECENT_DOSE)
    )


_READ_SENDER = _with_sender_rows(select(*_SENDER_COLUMNS).select_from(Participant)).where(
    Participant.id == LATEST_BY_PHONE
)
_RAW_COLUMNS = tuple(c for c in _INBOUND.columns if c.key != "id")
# On PostgreSQL the raw message's INSERT rides in the same statement, as a data-modifying WITH the read starts
# from: no row back means the MessageSid was stored already (a replay, or a concurrent copy, waited for).
_RAW = (
    postgresql.insert(_INBOUND)
    .values({c.key: bindparam(f"raw_{c.key}", type_=c.type) for c in _RAW_COLUMNS})
    .on_conflict_do_nothing(index_elements=[_INBOUND.c.message_sid])
    .returning(_INBOUND.c.id)
    .cte("raw")
)
_STORE_AND_READ_SENDER = _with_sender_rows(
    select(_RAW.c.id, *_SENDER_COLUMNS).select_from(_RAW).outerjoin(Participant, Participant.id == LATEST_BY_PHONE)
)


@dataclass(frozen=True)
class _Sender:
    """Who wrote (participant, site, study), the state of their latest VAS prompt, their recent doses and the
    planned reminders and nudges of those."""

    participant: Participant
    site: Site
    study: Study
    last_prompt_at: datetime | None
    answered: bool
    recent_doses: tuple[Dose, ...]
    planned: dict[int, list[OutboundMessage]]  # by dose id, for every recent dose

    @classmethod
    def of(cls, rows) -> "_Sender | None":
        """The sender from the first read's rows (one per recent dose and planned message of it), None when no
        participant matched."""
        if not rows or rows[0].Participant is None:
            return None
        planned: dict[int, list[OutboundMessage]] = {}
        doses: dict[int, Dose] = {}
        for row in rows:
            if row.Dose is not None:
                doses[row.Dose.id] = row.Dose
                messages = planned.setdefault(row.Dose.id, [])
                if row.planned is not None:
                    messages.append(row.planned)
        first = rows[0]
        return cls(
            first.Participant,
            first.Site,
            first.Study,
            first.last_prompt_at,
            first.answered,
            tuple(doses.values()),
            planned,
        )

    def vas_pending(self, *, now: datetime, window: timedelta) -> bool:
        """A VAS prompt went out within the reply window and no VAS has been recorded since."""
        return self.last_prompt_at is not None and self.last_prompt_at >= now - window and not self.answered


def _store_and_find_sender(
    session: Session, *, message_sid: str, from_hash: str, body: str, params: dict, now: datetime
) -> tuple[InboundMessage, bool, _Sender | None]:
    """Store the raw message once per MessageSid and find who sent it: one round trip on PostgreSQL, two elsewhere.
    A stored MessageSid (a replay, or a concurrent copy, which the INSERT waits for) reads the first copy's row
    instead, and no sender."""
    values = dict(
        message_sid=message_sid,
        from_hash=from_hash,
        participant_id=None,
        body=body,
        params_json=json.dumps(params, ensure_ascii=False),
        received_at=now,
        intent="",
        outcome="",
        needs_review=False,
        reply_body="",
        processed_at=None,
    )
    read_params = {"phone_hash": from_hash, **recent_dose_params(now)}
    if session.connection().dialect.name == "postgresql":
        raw = {f"raw_{key}": value for key, value in values.items()}
        rows = session.exec(_STORE_AND_READ_SENDER, params={**raw, **read_params}).all()
        inserted = rows[0][0] if rows else None
    else:
        inserted = insert_once(session, _INBOUND, values, unique_on="message_sid", returning="id")
        rows = session.exec(_READ_SENDER, params=read_params).all() if inserted is not None else []
    if inserted is None:
        stored = session.exec(select(InboundMessage).where(InboundMessage.message_sid == message_sid)).one()
        return stored, True, None
    row = InboundMessage(id=inserted, **values)
    # As if loaded, and outside the session until handle_inbound is done with it: what is learnt about the
    # message on the way (participant, intent, outcome, reply) is written once, not at every query's autoflush.
    make_transient_to_detached(row)
    return row, False, _Sender.of(rows)


def _reply_row(
    *, participant: Participant | None, inbound: InboundMessage, body: str, language: str, now: datetime
) -> dict:
    """The TwiML reply is an outbound message too: its row in the log, marked sent by Twilio's webhook reply."""
    return {
        **_REPLY_DEFAULTS,
        "participant_id": participant.id if participant else None,
        "site_id": participant.site_id if participant else None,
        "ref_id": inbound.id,
        "dedupe_key": f"reply:inbound:{inbound.id}",
        "language": language,
        "body": body,
        "due_at": now,
        "next_attempt_at": now,
        "sent_at": now,
        "created_at": now,
    }


# What handle_inbound learns about a message, written once at the end.
_OUTCOME_FIELDS = ("participant_id", "intent", "outcome", "needs_review", "reply_body", "processed_at")
_SAVE_OUTCOME = (
    update(_INBOUND)
    .where(_INBOUND.c.id == bindparam("inbound_id"))
    .values({key: bindparam(f"new_{key}") for key in _OUTCOME_FIELDS})
)
_OUTBOUND_COLUMNS = tuple(c.key for c in OutboundMessage.__table__.columns if c.key != "id")
_INSERT_REPLY = insert(OutboundMessage.__table__).returning(OutboundMessage.__table__.c.id)


def _reply_defaults() -> dict:
    """Every column of a TwiML reply's row but those of the message itself, as the model's defaults give them
    (taken from one model object, made once: making one per reply cost more than inserting it)."""
    template = OutboundMessage(
        purpose=Purpose.REPLY.value,
        ref_type="inbound",
        priority=1,
        status=OutboxStatus.SENT.value,
        provider_status="twiml",
        dedupe_key="",
        due_at=datetime.min,
        next_attempt_at=datetime.min,
    )
    return {key: getattr(template, key) for key in _OUTBOUND_COLUMNS}


_REPLY_DEFAULTS = _reply_defaults()


def _save_outcome(session: Session, inbound: InboundMessage, reply: dict | None) -> None:
    """Write what was learnt about a new message (left outside the session by _store_and_find_sender) and its
    reply row, if any: one statement on PostgreSQL for both; the reply audited as the flush would audit it (the
    SMS webhook's hot path)."""
    outcome = {key: getattr(inbound, key) for key in _OUTCOME_FIELDS}
    connection = session.connection()
    reply_id = None
    if inspect(inbound).session is not None:  # something put it in the session: the flush writes it
        session.add(inbound)
        if reply is not None:
            reply_id = connection.execute(_INSERT_REPLY, reply).scalar_one()
    else:
        if reply is not None:
            reply_id = update_then_insert(
                session, _INBOUND, inbound.id, outcome, OutboundMessage.__table__, reply, returning="id"
            )
        else:
            values = {f"new_{key}": value for key, value in outcome.items()}
            connection.execute(_SAVE_OUTCOME, {"inbound_id": inbound.id, **values})
        for key, value in outcome.items():
            set_committed_value(inbound, key, value)
    if reply is not None:
        record_changes(session, OutboundMessage, created=[{**reply, "id": reply_id}])


def handle_inbound(
    session: Session,
    *,
    message_sid: str,
    from_number: str,
    body: str,
    params: dict,
    vault: PhoneVault,
    now: datetime,
    keyword_replies: str = KEYWORDS_ANSWERED_BY_CARRIER,
) -> InboundResult:
    """Process one inbound SMS exactly once per MessageSid and return the reply to send.
    `keyword_replies` (SMS_KEYWORD_REPLIES) says who answers STOP, START and HELP: the carrier or us."""
    try:
        e164 = normalize_e164(from_number)
    except InvalidPhone:
        e164 = from_number.strip()
    from_hash = vault.lookup_hash(e164)
    inbound, duplicate, sender = _store_and_find_sender(
        session, message_sid=message_sid, from_hash=from_hash, body=body, params=params, now=now
    )
    if duplicate:
        return InboundResult(inbound.reply_body or None, True, inbound.id)
    participant = sender.participant if sender else None
    if sender is None:
        reply = handle_staff_sms(session, inbound=inbound, e164=e164, text=body[:MAX_BODY], vault=vault, now=now)
        if reply is None:
            reply = render("reply_unknown_sender", NEUTRAL_LANGUAGE)
            inbound.intent, inbound.outcome = "unknown_sender", "no participant has this number"
    else:
        inbound.participant_id = participant.id
        conversation = _Conversation.of(session, sender, inbound=inbound, e164=e164, vault=vault, now=now)
        reply = _act(conversation, text=body[:MAX_BODY], opt_out_type=params.get("OptOutType"))
        if reply is not None and inbound.intent in CONSENT_VALUES and keyword_replies == KEYWORDS_ANSWERED_BY_CARRIER:
            # The carrier answers its keywords itself; a second answer from us would be one too many.
            inbound.outcome += " (the carrier answers this keyword)"
            reply = None
    inbound.processed_at, inbound.reply_body = now, reply or ""
    language = participant.language if participant else NEUTRAL_LANGUAGE
    row = (
        _reply_row(participant=participant, inbound=inbound, body=reply, language=language, now=now) if reply else None
    )
    _save_outcome(session, inbound, row)
    return InboundResult(reply, False, inbound.id)


@dataclass
class _Conversation:
    """Everything a reply depends on: who wrote, from which phone, their study's rules and what is open now."""

    session: Session
    participant: Participant
    inbound: InboundMessage
    e164: str
    vault: PhoneVault
    now: datetime
    protocol: Protocol
    site: Site
    actor: Actor
    doses_expected: bool
    dose: Dose | None
    dose_open: bool
    expecting_vas: bool
    planned: dict[int, list[OutboundMessage]]  # the planned reminders and nudges of the recent doses, by dose id

    @classmethod
    def of(
        cls,
        session: Session,
        sender: _Sender,
        *,
        inbound: InboundMessage,
        e164: str,
        vault,
        now: datetime,
    ) -> "_Conversation":
        """The participant's protocol, open dose and pending VAS prompt, beside their site."""
        participant = sender.participant
        protocol = protocol_of(sender.study)
        doses_expected = protocol.arm(participant.arm).regimen is not None
        dose = pick_open_dose(sender.recent_doses, now=now) if doses_expected else None
        window = timedelta(hours=protocol.vas.reply_window_hours)
        return cls(
            session=session,
            participant=participant,
            inbound=inbound,
            e164=e164,
            vault=vault,
            now=now,
            protocol=protocol,
            site=sender.site,
            actor=Actor("sms", f"participant:{participant.id}"),
            doses_expected=doses_expected,
            dose=dose,
            dose_open=dose is not None and dose.window_opens_at <= now < dose.window_closes_at,
            expecting_vas=sender.vas_pending(now=now, window=window),
            planned=sender.planned,
        )

    @property
    def lang(self) -> str:
        """The participant's language."""
        return self.participant.language

    @property
    def site_phone(self) -> str:
        """The site's phone as quoted in replies."""
        return self.site.phone or "-"

    @property
    def emergency_number(self) -> str:
        """The emergency number of the country the participant's phone is from."""
        return self.protocol.safety.emergency_number(region_of(self.e164))


def _act(talk: _Conversation, *, text: str, opt_out_type: str | None) -> str | None:
    participant, inbound = talk.participant, talk.inbound
    intent = parse_reply(
        text,
        scale=talk.protocol.vas,
        expecting_vas=talk.expecting_vas,
        dose_open=talk.dose_open,
        opted_out=participant.opted_out,
        opt_out_type=opt_out_type,
    )
    inbound.intent = intent.kind.value
    if intent.kind in CONSENT_KINDS:
        return _consent(talk, intent, text=text, carrier_named=bool(opt_out_type))
    serious = serious_keyword_matches(text, talk.protocol.safety.serious_keywords)
    over = study_over(participant, now=talk.now)
    if over and not serious:
        why = "withdrawn" if participant.status == ParticipantStatus.WITHDRAWN.value else "follow-up ended"
        inbound.outcome = f"not recorded: the study has ended for this participant ({why})"
        return render("reply_study_over", talk.lang, site_phone=talk.site_phone)
    if not talk.doses_expected and intent.kind in (IntentKind.DOSE_TAKEN, IntentKind.DOSE_NOT_TAKEN):
        # An arm without a study drug has no dose to answer: a bare 1 or 2 means nothing there.
        intent = Intent(IntentKind.UNKNOWN, symptom=intent.symptom)
    unreadable = intent.kind == IntentKind.UNKNOWN or _words_only(intent, text)
    if over or (unreadable and (serious or intent.symptom)):
        # The whole text is the report: whatever its form, naming a hospital or an emergency is a suspected
        # serious event, and after the study that is all a text can still be.
        intent = Intent(IntentKind.ADVERSE_EVENT, text=text.strip())
    elif serious and intent.kind != IntentKind.ADVERSE_EVENT and not intent.symptom:
        # A serious word where the answer is ("V 120"): the answer stands and the text is reported too.
        intent = replace(intent, symptom=text.strip())
    reply = _answer(talk, intent)
    if intent.symptom:
        reply = _with_symptom(talk, reply, intent.symptom)
    # After STOP nothing is sent until START: the reply is computed and kept, but not sent.
    return None if participant.opted_out else reply


def _words_only(intent: Intent, text: str) -> bool:
    """A 'score' of words with no number in it: not a bad score but maybe a symptom."""
    return (
        intent.kind == IntentKind.VAS_INVALID
        and intent.error == "not_a_number"
        and not any(ch.isdigit() for ch in text)
    )


def _consent(talk: _Conversation, intent: Intent, *, text: str, carrier_named: bool) -> str | None:
    """STOP, START and HELP, whichever spelling: the carrier's rule, with the words that did it kept as the reason."""
    participant, inbound, lang = talk.participant, talk.inbound, talk.lang
    source = f"participant sent {text.strip()[:40]!r}" + (" (the carrier's keyword)" if carrier_named else "")
    if intent.kind == IntentKind.HELP:
        inbound.outcome = "help sent"
        key = "reply_help" if talk.doses_expected else "reply_help_no_dosing"
        return render(key, lang, site_phone=talk.site_phone)
    if intent.kind == IntentKind.STOP:
        already = participant.opted_out
        mark_opted_out(talk.session, participant=participant, now=talk.now, actor=talk.actor, why=source)
        inbound.outcome = "already opted out" if already else "opted out"
        # The single confirmation carriers allow; a repeated STOP is not answered again.
        return None if already else render("reply_stop", lang)
    mark_opted_in(talk.session, participant=participant, now=talk.now, actor=talk.actor, why=source)
    inbound.outcome = "opted in"
    return render("reply_start", lang)


def _with_symptom(talk: _Conversation, reply: str, symptom: str) -> str:
    """Record the symptom that came with an answer and read both back; a serious one is said first."""
    ae = report_adverse_event(
        talk.session,
        participant=talk.participant,
        actor=talk.actor,
        now=talk.now,
        vault=talk.vault,
        raw_text=symptom,
        term="other",
    )
    talk.inbound.outcome += "; adverse event recorded" + (" (suspected serious)" if ae.suspected_serious else "")
    if ae.suspected_serious:
        return _ae_reply(talk, ae) + " " + reply
    shown = symptom if len(symptom) <= SYMPTOM_SHOWN else symptom[: SYMPTOM_SHOWN - 1] + "…"
    noted = render(
        "reply_symptom_noted",
        talk.lang,
        symptom=shown,
        site_phone=talk.site_phone,
        emergency_number=talk.emergency_number,
    )
    return reply + " " + noted


def _ae_reply(talk: _Conversation, ae) -> str:
    return ae_acknowledgement(talk.session, participant=talk.participant, ae=ae, vault=talk.vault, e164=talk.e164)


def _answer(talk: _Conversation, intent: Intent) -> str:
    session, participant, inbound, lang = talk.session, talk.participant, talk.inbound, talk.lang
    kind = intent.kind
    if kind in (IntentKind.DOSE_TAKEN, IntentKind.DOSE_NOT_TAKEN):
        return _dose_reply(talk, taken=kind == IntentKind.DOSE_TAKEN, site=intent.site)
    if kind == IntentKind.VAS:
        scale = vas_scale_params(talk.protocol.vas)
        try:
            score = record_vas(
                session,
                participant=participant,
                value=intent.value,
                actor=talk.actor,
                now=talk.now,
                inbound_id=inbound.id,
            )
        except InvalidInput:
            inbound.outcome = "VAS refused: out of range"
            return render("reply_vas_out_of_range", lang, **scale)
        inbound.outcome = f"VAS {score.value} recorded"
        return render("reply_vas_recorded", lang, value=str(score.value), **scale)
    # Words with no number right after a VAS prompt are not a bad score but maybe a symptom:
    # they fall through to the help reply (which says how to send a score) and the nurse queue.
    if kind == IntentKind.VAS_INVALID and not _words_only(intent, inbound.body):
        inbound.outcome = f"VAS refused: {intent.error}"
        key = {"out_of_range": "reply_vas_out_of_range", "too_many_decimals": "reply_vas_too_many_decimals"}
        return render(key.get(intent.error, "reply_vas_not_a_number"), lang, **vas_scale_params(talk.protocol.vas))
    if kind == IntentKind.UNDO:
        undone = undo_last_vas(session, participant=participant, actor=talk.actor, now=talk.now)
        inbound.outcome = f"VAS {undone.value} withdrawn" if undone else "nothing to undo"
        return (
            render("reply_vas_undone", lang, value=str(undone.value)) if undone else render("reply_undo_nothing", lang)
        )
    if kind == IntentKind.ADVERSE_EVENT:
        ae = report_adverse_event(
            session,
            participant=participant,
            actor=talk.actor,
            now=talk.now,
            vault=talk.vault,
            raw_text=intent.text or "",
            term="other",
        )
        inbound.outcome = "adverse event recorded" + (" (suspected serious)" if ae.suspected_serious else "")
        return _ae_reply(talk, ae)
    inbound.outcome = "unreadable"
    _keep_for_nurses(session, participant=participant, inbound=inbound, actor=talk.actor, now=talk.now)
    key = "reply_unknown" if talk.doses_expected else "reply_unknown_no_dosing"
    return render(key, lang, site_phone=talk.site_phone)


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


def _dose_reply(talk: _Conversation, *, taken: bool, site: str | None = None) -> str:
    participant, inbound, dose, lang = talk.participant, talk.inbound, talk.dose, talk.lang
    if participant.status != ParticipantStatus.ACTIVE.value:
        inbound.outcome = f"no dose expected (participant {participant.status})"
        return render("reply_paused", lang)
    if dose is None:
        inbound.outcome = "no open dose"
        return render("reply_no_open_dose", lang)
    local_date = dose.local_date.isoformat()
    try:
        record_dose(
            talk.session,
            dose=dose,
            taken=taken,
            actor=talk.actor,
            now=talk.now,
            injection_site=site if taken else None,
            reason="reported by SMS",
            planned=talk.planned.get(dose.id),
        )
    except InvalidTransition:
        inbound.outcome = f"dose {dose.seq} already {dose.state}"
        return render("reply_dose_already", lang, local_date=local_date, state=render(f"dose_state_{dose.state}", lang))
    inbound.outcome = f"dose {dose.seq} {dose.state}"
    key = {DoseState.TAKEN.value: "reply_dose_taken", DoseState.TAKEN_LATE.value: "reply_dose_taken_late"}.get(
        dose.state, "reply_dose_not_taken"
    )
    reply = render(key, lang, local_date=local_date)
    if dose.injection_site:
        # The site is read back so a misread one is noticed at once.
        label = talk.protocol.injection_sites.label(dose.injection_site, lang)
        reply += " " + render("reply_dose_site", lang, site=label)
    if talk.expecting_vas:
        reply += " " + render("reply_dose_and_vas_hint", lang)
    return reply
