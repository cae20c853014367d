"""Staff SMS: the on-call nurse hears about a suspected serious event at once, ahead of routine traffic."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from notifications.models import OutboundMessage, Purpose
from notifications.pages import page_prefix
from notifications.templates import render
from schedules.calendar import to_local
from schedules.models import AdverseEvent, Alert, Participant, Site, Study
from schedules.phones import PhoneVault
from schedules.sites import on_call_numbers
from schedules.studies import protocol_of

SAFETY_PRIORITY = 0


def queue_staff_sms(
    session: Session,
    *,
    site: Site,
    vault: PhoneVault,
    dedupe_prefix: str,
    body: str,
    now: datetime,
    purpose: str = Purpose.STAFF_ALERT.value,
    ref_type: str = "",
    ref_id: int | None = None,
    priority: int = SAFETY_PRIORITY,
    language: str = "zh-CN",
    not_after: datetime | None = None,
) -> int:
    """One outbox row per on-call number of the site, due now; returns how many were queued.
    `not_after`: its last useful moment (a safety page has none: late is still better than never)."""
    queued = 0
    for index, number in enumerate(on_call_numbers(site, vault)):
        row = OutboundMessage(
            site_id=site.id,
            recipient_ciphertext=vault.encrypt(number),
            purpose=purpose,
            ref_type=ref_type,
            ref_id=ref_id,
            dedupe_key=f"{dedupe_prefix}:to:{vault.lookup_hash(number)[:16]}",
            language=language,
            body=body,
            priority=priority,
            due_at=now,
            next_attempt_at=now,
            not_after=not_after,
        )
        try:
            with session.begin_nested():
                session.add(row)
            queued += 1
        except IntegrityError:
            continue
    return queued


def escalate_serious_ae(
    session: Session, *, ae: AdverseEvent, participant: Participant, vault: PhoneVault, now: datetime
) -> int:
    """Queue the on-call SMS for a suspected-serious adverse event (no-op for ordinary ones)."""
    if not ae.suspected_serious:
        return 0
    site = session.get(Site, participant.site_id)
    protocol = protocol_of(session.get(Study, participant.study_id))
    hours = protocol.safety.reporting_deadline_hours
    deadline = (
        to_local(now + timedelta(hours=hours), site.time_zone).strftime("%Y-%m-%d %H:%M") + f" ({site.time_zone})"
    )
    # The event's nurse alert, opened with it; the page goes out even if some caller did not open one.
    # The latest: a completion that learns of a hospital stay after the first alert was resolved opens another.
    alert = session.exec(
        select(Alert).where(Alert.ref_type == "adverse_event", Alert.ref_id == ae.id).order_by(Alert.id.desc())
    ).first()
    body = render(
        "staff_serious_ae",
        protocol.default_language,
        study_code=participant.study_code,
        site_code=site.code,
        deadline_local=deadline,
        alert_id=alert.id if alert is not None else "-",  # what the on-call nurse texts back: ACK 12
    )
    return queue_staff_sms(
        session,
        site=site,
        vault=vault,
        dedupe_prefix=page_prefix(ae.id),
        body=body,
        now=now,
        ref_type="adverse_event",
        ref_id=ae.id,
        language=protocol.default_language,
    )
