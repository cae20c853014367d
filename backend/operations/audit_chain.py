"""A broken audit chain: the admin alert that says where and why, opened once per break."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from backend.audit_verify import ChainReport, describe
from schedules.alerts import open_alert
from schedules.changes import Actor
from schedules.models import HIGH, Alert, AlertKind

CHECK_ACTOR = Actor("job", "verify_audit_chain")


def alert_broken_chain(
    session: Session, *, report: ChainReport, now: datetime, actor: Actor = CHECK_ACTOR
) -> tuple[Alert, bool]:
    """Open the high-priority admin alert (no participant, no site: admins only) for the chain's first break;
    the same break found again the next day opens nothing. Returns (alert, created)."""
    if report.intact:
        raise ValueError("the chain is intact: nothing to alert")
    where = report.broken_id if report.broken_id is not None else "head"
    return open_alert(
        session,
        participant=None,
        site_id=None,
        kind=AlertKind.AUDIT_CHAIN_BROKEN.value,
        dedupe_key=f"audit_chain_broken:{where}",
        summary=describe(report),
        now=now,
        actor=actor,
        priority=HIGH,
        ref_type="audit_entry" if report.broken_id is not None else "",
        ref_id=report.broken_id,
    )
