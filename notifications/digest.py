"""The daily digest: each site's on-call numbers get one SMS summary of the open nurse queue."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta

from sqlmodel import Session, select

from notifications.escalation import queue_staff_sms
from notifications.models import Purpose
from notifications.templates import render
from schedules.calendar import local_wall_to_utc, to_local
from schedules.models import Alert, AlertState, Site
from schedules.phones import PhoneVault

ROUTINE_PRIORITY = 3


def send_daily_digest(session: Session, *, now: datetime, vault: PhoneVault, hour: int, language: str = "zh-CN") -> int:
    """Queue the digest for every site whose local time is past `hour` (DIGEST_LOCAL_HOUR) today and has none yet
    (the dedupe key is per site and local date, so running this often sends one a day)."""
    queued = 0
    for site in session.exec(select(Site)).all():
        local = to_local(now, site.time_zone)
        if local.hour < hour or not site.on_call_ciphertext:
            continue
        alerts = session.exec(
            select(Alert).where(Alert.site_id == site.id, Alert.state != AlertState.RESOLVED.value)
        ).all()
        kinds = Counter(a.kind for a in alerts)
        summary = ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in sorted(kinds.items())) or "-"
        body = render(
            "staff_alert_digest",
            language,
            site_code=site.code,
            open_count=len(alerts),
            high_count=sum(a.priority == "high" for a in alerts),
            summary=summary,
        )
        queued += queue_staff_sms(
            session,
            site=site,
            vault=vault,
            dedupe_prefix=f"digest:site:{site.id}:{local.date().isoformat()}",
            body=body,
            now=now,
            purpose=Purpose.DIGEST.value,
            ref_type="site",
            ref_id=site.id,
            priority=ROUTINE_PRIORITY,
            language=language,
            # Today's queue, useless once tomorrow's digest is due: after an outage it expires, never arrives late.
            not_after=local_wall_to_utc(local.date() + timedelta(days=1), time(0, 0), site.time_zone),
        )
    return queued
