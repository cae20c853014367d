"""Plain words, in the page's language, for what would otherwise reach a nurse as a code: message statuses,
participant statuses, today's dose, spans of time."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

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
