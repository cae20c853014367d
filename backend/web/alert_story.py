"""What happened behind an alert, as a nurse reads it in their language: what the participant wrote, what we
answered, the dose and its date, the message that did not arrive; built from the stored facts, never from the
English summary the domain keeps for the audit trail."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlmodel import Session, select

from backend.web.i18n import local_day_text
from notifications.models import InboundMessage, OutboundMessage
from schedules.dose_numbering import dose_numbers
from schedules.models import HIGH, AdverseEvent, Alert, AlertKind, AlertState, Dose
from schedules.vocabulary import AE_TERM_LABELS

PURPOSE_LABELS = {
    "dose_reminder": _l("the dose reminder"),
    "dose_nudge": _l("the dose follow-up"),
    "vas_prompt": _l("the VAS question"),
    "dose_and_vas": _l("the dose reminder with the VAS question"),
    "study_closing": _l("the end-of-study message"),
    "reply": _l("our reply"),
    "staff_alert": _l("the on-call page"),
    "digest": _l("the on-call digest"),
    "activation": _l("the app code"),
}
FAILURE_LABELS = {
    "failed": _l("could not be sent"),
    "undelivered": _l("was not delivered"),
    "expired": _l("went out too late and was dropped"),
    "sending": _l("may not have arrived (the sender stopped while sending it)"),
}


@dataclass(frozen=True)
class Story:
    """An alert's facts in words: its summary line and, where there are any, the participant's words and ours."""

    summary: str
    words: str | None = None  # what the participant wrote (SMS or app), as they wrote it
    reply: str | None = None  # what we answered them
    dose: Dose | None = None
    acknowledged: bool = False  # acknowledged by someone, not only as part of resolving


def really_acknowledged(alert: Alert) -> bool:
    """Resolving also marks an alert acknowledged at the same moment; only an earlier acknowledgement is one."""
    if alert.acknowledged_at is None:
        return False
    return not (alert.state == AlertState.RESOLVED.value and alert.acknowledged_at == alert.resolved_at)


def _dose_words(dose: Dose, number: int, *, second: bool, undelivered: bool) -> str:
    when = dose.local_date
    if undelivered:
        return _(
            "Dose %(n)d (%(date)s) missed, and its reminder was not delivered", n=number, date=local_day_text(when)
        )
    if second:
        return _("Dose %(n)d (%(date)s) missed: the second in a row", n=number, date=local_day_text(when))
    return _("Dose %(n)d (%(date)s) missed: no reply before the window closed", n=number, date=local_day_text(when))


def _term(ae: AdverseEvent, language: str) -> str:
    labels = AE_TERM_LABELS.get(ae.term)
    return labels.get(language, labels["en"]) if labels else ae.term


def _ae_summary(alert: Alert, ae: AdverseEvent, language: str) -> str:
    channel = {"sms": _("by SMS"), "app": _("in the app")}.get(ae.source, _("by staff"))
    if alert.kind == AlertKind.SERIOUS_AE.value:
        if ae.matched_keywords:
            return _(
                "Suspected serious event reported %(channel)s: the message mentions %(words)s",
                channel=channel,
                words=", ".join(ae.matched_keywords.split(",")),
            )
        if ae.went_to_hospital:
            return _("Suspected serious event reported %(channel)s: went to hospital", channel=channel)
        return _("Suspected serious event reported %(channel)s", channel=channel)
    if ae.term == "other":
        return _("Adverse event reported %(channel)s", channel=channel)
    return _("Adverse event reported %(channel)s: %(term)s", channel=channel, term=_term(ae, language))


def _outbox_summary(row: OutboundMessage) -> str:
    what = PURPOSE_LABELS.get(row.purpose, row.purpose)
    failure = FAILURE_LABELS.get(row.status, FAILURE_LABELS["failed"])
    if row.last_error_code:
        return _(
            "%(what)s %(failure)s (the carrier's code %(code)d)", what=what, failure=failure, code=row.last_error_code
        )
    return _("%(what)s %(failure)s", what=what, failure=failure)


class _Facts:
    """The rows the alerts point at, each table read once."""

    def __init__(self, session: Session, alerts: list[Alert]):
        def ids(ref_type: str) -> set[int]:
            return {a.ref_id for a in alerts if a.ref_type == ref_type and a.ref_id is not None}

        def rows(model, wanted: set[int]) -> dict[int, object]:
            return {r.id: r for r in session.exec(select(model).where(model.id.in_(wanted)))} if wanted else {}

        self.doses: dict[int, Dose] = rows(Dose, ids("dose"))
        self.events: dict[int, AdverseEvent] = rows(AdverseEvent, ids("adverse_event"))
        self.inbound: dict[int, InboundMessage] = rows(InboundMessage, ids("inbound"))
        self.outbox: dict[int, OutboundMessage] = rows(OutboundMessage, ids("outbox"))
        # An SMS report's adverse event and its inbound message share the moment the text arrived.
        self.sms_of_event: dict[int, InboundMessage] = {}
        moments = {(e.participant_id, e.reported_at): e.id for e in self.events.values() if e.source == "sms"}
        if moments:
            query = select(InboundMessage).where(
                InboundMessage.participant_id.in_({pid for pid, _ in moments}),
                InboundMessage.received_at.in_({at for _, at in moments}),
            )
            for message in session.exec(query):
                event_id = moments.get((message.participant_id, message.received_at))
                if event_id is not None:
                    self.sms_of_event[event_id] = message
        self.numbers = _active_numbers(session, self.doses.values())


def _active_numbers(session: Session, doses) -> dict[int, int]:
    """Each dose's number in its participant's own sequence (schedules.dose_numbering), every participant's read
    once."""
    participants = {d.participant_id for d in doses}
    if not participants:
        return {}
    numbers: dict[int, int] = {}
    everyone = session.exec(select(Dose).where(Dose.participant_id.in_(participants))).all()
    for pid in participants:
        numbers |= dose_numbers(d for d in everyone if d.participant_id == pid)
    return numbers


def _story(alert: Alert, facts: _Facts, language: str) -> Story:
    acknowledged = really_acknowledged(alert)
    if alert.ref_type == "dose" and alert.ref_id in facts.doses:
        dose = facts.doses[alert.ref_id]
        number = facts.numbers.get(dose.id, dose.seq)
        summary = _dose_words(
            dose,
            number,
            second=alert.priority == HIGH,
            undelivered=alert.kind == AlertKind.CONTACT_PROBLEM.value,
        )
        return Story(summary, dose=dose, acknowledged=acknowledged)
    if alert.ref_type == "adverse_event" and alert.ref_id in facts.events:
        ae = facts.events[alert.ref_id]
        sms = facts.sms_of_event.get(ae.id)
        words = (sms.body if sms else None) or ae.raw_text or ae.other_text or None
        return Story(
            _ae_summary(alert, ae, language),
            words=words,
            reply=(sms.reply_body or None) if sms else None,
            acknowledged=acknowledged,
        )
    if alert.ref_type == "inbound" and alert.ref_id in facts.inbound:
        message = facts.inbound[alert.ref_id]
        return Story(
            _("A reply could not be understood"),
            words=message.body,
            reply=message.reply_body or None,
            acknowledged=acknowledged,
        )
    if alert.ref_type == "outbox" and alert.ref_id in facts.outbox:
        return Story(_outbox_summary(facts.outbox[alert.ref_id]), acknowledged=acknowledged)
    if alert.kind == AlertKind.OPTED_OUT.value:
        return Story(_("Opted out of SMS: no message reaches them until they send START"), acknowledged=acknowledged)
    return Story(alert.summary, acknowledged=acknowledged)


def alert_stories(session: Session, alerts: list[Alert], *, language: str) -> dict[int, Story]:
    """Each alert's story, by alert id."""
    facts = _Facts(session, alerts)
    return {a.id: _story(a, facts, language) for a in alerts}
