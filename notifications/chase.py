"""The serious-event chase: a suspected-serious alert nobody has acknowledged pages on-call again every N minutes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from notifications.escalation import queue_staff_sms
from notifications.pages import PageRound, page_prefix, page_rounds
from notifications.templates import render
from schedules.calendar import to_local
from schedules.models import Alert, AlertKind, AlertState, Participant, Site, Study
from schedules.phones import PhoneVault
from schedules.studies import protocol_of


def _due(alert: Alert, rounds: list[PageRound], *, every: timedelta, now: datetime) -> int | None:
    """The round to queue now, or None: the last one has not left the outbox yet, or left less than `every`
    ago (after a dispatch outage the on-call phones would otherwise get the same page twice in a minute)."""
    if not rounds:
        # Nobody was on call when it opened: the first repeat goes to whoever is on call by then.
        return 2 if now >= alert.opened_at + every else None
    last = rounds[-1]
    if last.waiting or now < max(last.at, last.left_at or last.at) + every:
        return None
    return last.round + 1


def chase_serious_alerts(session: Session, *, now: datetime, vault: PhoneVault) -> int:
    """Queue the next round of on-call pages for every open, unacknowledged suspected-serious alert whose last
    round is the protocol's chase_every_minutes old; returns how many SMS were queued. One row per number and
    round (dedupe key), so running it twice, or from two schedulers, pages once per round."""
    alerts = session.exec(
        select(Alert)
        .where(
            Alert.kind == AlertKind.SERIOUS_AE.value,
            Alert.state == AlertState.OPEN.value,
            Alert.acknowledged_at.is_(None),
        )
        .order_by(Alert.id)
    ).all()
    queued = 0
    for alert in alerts:
        participant = session.get(Participant, alert.participant_id) if alert.participant_id else None
        if participant is None or alert.ref_type != "adverse_event" or alert.ref_id is None:
            continue
        protocol = protocol_of(session.get(Study, participant.study_id))
        every = timedelta(minutes=protocol.safety.chase_every_minutes)
        round_no = _due(alert, page_rounds(session, alert), every=every, now=now)
        if round_no is None:
            continue
        site = session.get(Site, alert.site_id)
        reported = to_local(alert.opened_at, site.time_zone).strftime("%Y-%m-%d %H:%M") + f" ({site.time_zone})"
        body = render(
            "staff_serious_ae_repeat",
            protocol.default_language,
            round=round_no,
            study_code=participant.study_code,
            site_code=site.code,
            reported_local=reported,
            alert_id=alert.id,
        )
        queued += queue_staff_sms(
            session,
            site=site,
            vault=vault,
            dedupe_prefix=page_prefix(alert.ref_id, round_no),
            body=body,
            now=now,
            ref_type="adverse_event",
            ref_id=alert.ref_id,
            language=protocol.default_language,
        )
    return queued
