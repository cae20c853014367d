"""Plain words, in the page's language, for what would otherwise reach a nurse as a code: message statuses,
participant statuses, today's dose, spans of time."""

from __future__ import annotations

import re
from datetime import timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from backend.web.i18n import local_text
from schedules.models import Dose
from schedules.today import TodayState

# How far a message got, in words (outbox statuses and the carrier's finer ones); "twiml" is a reply that went
# back inside Twilio's answer to the participant's own message.
STATUS_WORDS = {
    "planned": _l("waiting to be sent"),
    "sending": _l("being sent"),
    "sent": _l("sent, not yet confirmed"),
    "delivered": _l("delivered"),
    "read": _l("read"),
    "partially_delivered": _l("partly delivered"),
    "undelivered": _l("not delivered"),
    "failed": _l("could not be sent"),
    "expired": _l("dropped: too late to send"),
    "cancelled": _l("cancelled"),
    "twiml": _l("sent as the answer to their message"),
}


def status_words(status: str) -> str:
    """A message status as a nurse reads it."""
    return str(STATUS_WORDS.get(status, status.replace("_", " ")))


PARTICIPANT_STATUS_WORDS = {
    "active": _l("active"),
    "on_hold": _l("dosing on hold"),
    "withdrawn": _l("withdrawn"),
}


def participant_status_words(status: str) -> str:
    """A participant's status as a nurse reads it."""
    return str(PARTICIPANT_STATUS_WORDS.get(status, status.replace("_", " ")))


def today_words(state: TodayState, dose: Dose | None, zone: str) -> str:
    """Today's dose in a sentence, with the time that matters (the window's close, or when it was taken)."""
    if state == TodayState.NO_REGIMEN:
        return _("no study drug")
    if state == TodayState.NOT_DUE or dose is None:
        return _("no dose today")
    if state == TodayState.UPCOMING:
        return _("dose due today, window not open yet")
    if state == TodayState.WAITING:
        return _("window open, no reply yet (closes %(time)s)", time=local_text(dose.window_closes_at, zone))
    if state == TodayState.TAKEN:
        return _("taken %(time)s", time=local_text(dose.taken_at or dose.reported_at, zone))
    if state == TodayState.NOT_TAKEN:
        return _("not taken (the participant said so)")
    if state == TodayState.HELD:
        return _("dosing on hold")
    return _("missed: no reply before %(time)s", time=local_text(dose.window_closes_at, zone))


def duration_words(delta: timedelta) -> str:
    """'2 d 3 h' / '2天3小时': a rounded-down, human-sized span."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)d d %(h)d h", d=days, h=hours)
    if hours:
        return _("%(h)d h %(m)d min", h=hours, m=mins)
    return _("%(m)d min", m=mins)


# What a participant's message was read as (notifications.parsing.IntentKind), and what an outbound one was for.
INTENT_WORDS = {
    "dose_taken": _l("dose taken"),
    "dose_not_taken": _l("dose not taken"),
    "vas": _l("VAS score"),
    "vas_invalid": _l("VAS score (not accepted)"),
    "adverse_event": _l("adverse event"),
    "stop": _l("stop messages"),
    "start": _l("restart messages"),
    "help": _l("help"),
    "undo": _l("undo the last score"),
    "unknown": _l("not understood"),
    "staff_ack": _l("on-call acknowledgement"),
    "unknown_sender": _l("unknown sender"),
}
OUTBOUND_WORDS = {
    "dose_reminder": _l("dose reminder"),
    "dose_nudge": _l("dose follow-up"),
    "vas_prompt": _l("VAS question"),
    "dose_and_vas": _l("dose reminder and VAS question"),
    "study_closing": _l("end-of-study message"),
    "reply": _l("reply"),
    "staff_alert": _l("on-call page"),
    "digest": _l("on-call digest"),
    "activation": _l("app code"),
}
VAS_ERROR_WORDS = {
    "out_of_range": _l("outside the scale"),
    "too_many_decimals": _l("too many decimals"),
    "not_a_number": _l("not a number"),
}
DOSE_STATE_WORDS = {
    "scheduled": _l("planned"),
    "taken": _l("taken on time"),
    "taken_late": _l("taken late"),
    "skipped": _l("not taken"),
    "missed": _l("missed"),
    "held": _l("held"),
    "cancelled": _l("cancelled"),
}


def message_kind_words(direction: str, kind: str) -> str:
    """What a logged message was: an inbound one by how it was read, an outbound one by its purpose."""
    table = INTENT_WORDS if direction == "in" else OUTBOUND_WORDS
    return str(table.get(kind, kind.replace("_", " ")))


# The outcome an inbound message's handling stored (operations.sms_replies, in English for the audit trail), read
# back into words; each pattern names the one outcome it stands for.
_OUTCOMES = [
    (re.compile(r"VAS (?P<v>[\d.]+) recorded"), lambda m: _("VAS %(v)s recorded", v=m["v"])),
    (re.compile(r"VAS (?P<v>[\d.]+) withdrawn"), lambda m: _("VAS %(v)s withdrawn", v=m["v"])),
    (re.compile(r"VAS refused: out of range"), lambda m: _("VAS not accepted: outside the scale")),
    (
        re.compile(r"VAS refused: (?P<e>\w+)"),
        lambda m: _("VAS not accepted: %(why)s", why=VAS_ERROR_WORDS.get(m["e"], m["e"])),
    ),
    (re.compile(r"nothing to undo"), lambda m: _("nothing to undo")),
    (
        re.compile(r"adverse event recorded \(suspected serious\)"),
        lambda m: _("adverse event recorded: suspected serious"),
    ),
    (re.compile(r"adverse event recorded"), lambda m: _("adverse event recorded")),
    (re.compile(r"unreadable: kept for nurses"), lambda m: _("not understood: kept for nurses")),
    (re.compile(r"unreadable"), lambda m: _("not understood")),
    (re.compile(r"help sent"), lambda m: _("help sent")),
    (re.compile(r"already opted out"), lambda m: _("already opted out")),
    (re.compile(r"opted out"), lambda m: _("opted out of SMS")),
    (re.compile(r"opted in"), lambda m: _("opted back in")),
    (re.compile(r"no open dose"), lambda m: _("no dose open to report")),
    (re.compile(r"no dose expected"), lambda m: _("no dose expected")),
    (
        re.compile(r"dose (?P<n>\d+) already (?P<s>\w+)"),
        lambda m: _("dose %(n)s was already %(state)s", n=m["n"], state=DOSE_STATE_WORDS.get(m["s"], m["s"])),
    ),
    (
        re.compile(r"dose (?P<n>\d+) (?P<s>\w+)"),
        lambda m: _("dose %(n)s %(state)s", n=m["n"], state=DOSE_STATE_WORDS.get(m["s"], m["s"])),
    ),
    (re.compile(r"not recorded: the study has ended"), lambda m: _("not recorded: the study has ended for them")),
    (re.compile(r"no participant has this number"), lambda m: _("no participant has this number")),
]


def outcome_words(outcome: str) -> str:
    """What came of an inbound message, in words; an outcome no pattern knows is shown as stored."""
    for pattern, words in _OUTCOMES:
        match = pattern.match(outcome)
        if match:
            return words(match)
    return outcome


def warning_words(warning) -> tuple[str, str]:
    """A system warning (backend.runtime.job_runs.NurseWarning) as its headline and what it means for the ward."""
    span = duration_words(warning.silent_for) if warning.silent_for is not None else None
    if warning.kind == "outbox_stuck":
        headline = ngettext(
            "%(num)d message has been waiting to be sent for %(span)s",
            "%(num)d messages have been waiting to be sent for %(span)s",
            warning.count,
            span=span,
        )
        meaning = (
            _("Messages are going out late or not at all. Tell the system administrator.")
            if warning.masked
            else _("Reminders and alerts are going out late or not at all. Tell the system administrator.")
        )
        return headline, meaning
    headline = (
        _("The automatic checks have not run for %(span)s", span=span)
        if span
        else _("The automatic checks have not run yet")
    )
    meaning = (
        _("Scheduled messages are not being planned, so this page may be incomplete.")
        if warning.masked
        else _(
            "Missed doses are not being flagged and reminders are not being planned, so this page may be incomplete."
        )
    )
    return headline, meaning + " " + _("Tell the system administrator; until it is fixed, check participants by hand.")
