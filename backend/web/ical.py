"""The participant's dose schedule as an iCalendar feed, for the phone's own calendar app.

Like the SMS texts, events carry no diagnosis or drug name: a calendar is often shown on a lock screen."""

from __future__ import annotations

from datetime import datetime, timedelta

from icalendar import Calendar, Event

from notifications.templates import render
from schedules.calendar import to_local
from schedules.models import Dose, DoseState, Participant

EVENT_LENGTH = timedelta(minutes=30)
PRODID = "-//Trial Companion//Dose calendar//EN"
_TEXTS = {
    "en": {
        "calendar": "Study injections",
        "summary": "Injection (dose {seq})",
        "description": "Report it in the app, or reply 1 (done) or 2 (not taken) by SMS.\n"
        "Report window: {opens} to {closes} ({zone}).\nStatus: {state}.",
    },
    "zh-CN": {
        "calendar": "研究注射",
        "summary": "注射（第 {seq} 次）",
        "description": (
            "请在应用中报告，或回复短信 1（已注射）/ 2（未注射）。\n"
            "报告时间窗：{opens} 至 {closes}（{zone}）。\n状态：{state}。"
        ),
    },
}


def _texts(language: str) -> dict[str, str]:
    return _TEXTS.get(language) or _TEXTS["en"]


def _local(instant: datetime, zone: str) -> str:
    return to_local(instant, zone).strftime("%Y-%m-%d %H:%M")


def dose_calendar(participant: Participant, doses: list[Dose], *, now: datetime, uid_domain: str) -> bytes:
    """One VEVENT per dose that is not cancelled, at its reminder time, with its report window described."""
    texts = _texts(participant.language)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", texts["calendar"])
    calendar.add("x-wr-timezone", participant.time_zone)
    for dose in doses:
        if dose.state == DoseState.CANCELLED.value:
            continue
        event = Event()
        event.add("uid", f"dose-{dose.id}@{uid_domain}")
        event.add("dtstamp", now)
        event.add("last-modified", dose.updated_at)
        event.add("dtstart", dose.due_at)
        event.add("dtend", dose.due_at + EVENT_LENGTH)
        event.add("summary", texts["summary"].format(seq=dose.seq))
        event.add(
            "description",
            texts["description"].format(
                opens=_local(dose.window_opens_at, participant.time_zone),
                closes=_local(dose.window_closes_at, participant.time_zone),
                zone=participant.time_zone,
                state=render(f"dose_state_{dose.state}", participant.language),
            ),
        )
        event.add("status", "TENTATIVE" if dose.state == DoseState.HELD.value else "CONFIRMED")
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    return calendar.to_ical()
