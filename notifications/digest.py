"""The daily digest: each site's on-call numbers get one SMS summary of the open nurse queue."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta

from sqlmodel import Session, select

from notifications.escalation import queue_staff_sms
from notifications.models import Purpose
from notifications.templates import render
from schedules.calendar import local_wall_to_utc, to_local
from schedules.models import Alert, AlertKind, AlertState, Site
from schedules.phones import PhoneVault

ROUTINE_PRIORITY = 3
KIND_ORDER = {kind.value: i for i, kind in enumerate(AlertKind)}


def digest_body(site_code: str, alerts: list[Alert], language: str) -> str:
    """The digest text, wholly in `language`: a heading, then one line per kind of open alert."""
    if not alerts:
        return render("staff_alert_digest_empty", language, site_code=site_code)
    kinds = Counter(a.kind for a in alerts)
    lines = [
        render("staff_alert_digest_line", language, kind=render(f"alert_kind_{kind}", language), count=n)
        for kind, n in sorted(kinds.items(), key=lambda item: (KIND_ORDER.get(item[0], len(KIND_ORDER)), item[0]))
    ]
    return render(
        "staff_alert_digest",
        language,
        site_code=site_code,
        open_count=len(alerts),
        high_count=sum(a.priority == "high" for a in alerts),
        summary="\n".join(lines),
    )


def send_daily_digest(
    session: Session,
    *,
    now: datetime,
    vault: PhoneVault,
    hour: int,
    language: str = "zh-CN",
    when_empty: bool = False,
) -> int:
    """Queue the digest for every site whose local time is past `hour` (DIGEST_LOCAL_HOUR) today and has none yet
    (the dedupe key is per site and local date, so running this often sends one a day). With nothing to report
    (no alert open by that hour and still open) none is sent that day, unless `when_empty` (DIGEST_WHEN_EMPTY)."""
    queued = 0
    for site in session.exec(select(Site)).all():
        local = to_local(now, site.time_zone)
        if local.hour < hour or not site.on_call_ciphertext:
            continue
        alerts = session.exec(
            select(Alert).where(Alert.site_id == site.id, Alert.state != AlertState.RESOLVED.value)
        ).all()
        # Judged as of the digest hour, so an alert opened later in the day does not send a digest at that
        # hour of the afternoon: the digest is the morning summary (urgent alerts page on-call themselves).
        digest_at = local_wall_to_utc(local.date(), time(hour, 0), site.time_zone)
        if not when_empty and not any(a.opened_at <= digest_at for a in alerts):
            continue
        body = digest_body(site.code, list(alerts), language)
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
