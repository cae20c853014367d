"""The dashboard: every participant the nurse covers, riskiest first."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask import render_template, request
from sqlalchemy import func
from sqlmodel import select

from backend.db import get_session
from backend.identity import scope
from backend.web.masking import masked_status, masked_title
from backend.web.pages.common import bp, principal, staff_page
from backend.web.shown import Shown
from schedules.adherence import Adherence, adherence_of
from schedules.dbtypes import utcnow
from schedules.models import (
    AdverseEvent,
    Alert,
    AlertState,
    Dose,
    Participant,
    ParticipantStatus,
    Site,
    Study,
    VasScore,
)
from schedules.studies import arm_doses

STATUSES = [s.value for s in ParticipantStatus]
SORTS = {"risk": "risk (open high alerts, then lowest adherence)", "code": "study code"}


@dataclass(frozen=True)
class Row:
    """One participant's line on the dashboard."""

    participant: Participant
    site: Site
    adherence: Adherence
    vas: Decimal | None
    vas_at: datetime | None
    open_alerts: int
    high_alerts: int
    adverse_events: int
    dosing: bool = True  # False for an arm without a regimen: no dose figures to show


def _risk_key(row: Row):
    # Nothing due yet is the least worrying adherence, so it sorts after every real figure.
    rate = row.adherence.adherence if row.adherence.adherence is not None else 2.0
    return (-row.high_alerts, rate, -row.open_alerts, row.participant.study_code)


def dashboard_rows(
    session, *, site_ids: list[int] | None, arm: str | None, status: str | None, now: datetime
) -> list[Row]:
    """Participants of the given sites (None: all) with adherence, latest VAS, open alerts and AE counts."""
    query = select(Participant)
    if site_ids is not None:
        query = query.where(Participant.site_id.in_(site_ids))
    if arm:
        query = query.where(Participant.arm == arm)
    if status:
        query = query.where(Participant.status == status)
    participants = list(session.exec(query).all())
    ids = [p.id for p in participants]
    if not ids:
        return []
    doses: dict[int, list[Dose]] = defaultdict(list)
    for dose in session.exec(select(Dose).where(Dose.participant_id.in_(ids))).all():
        doses[dose.participant_id].append(dose)
    open_alerts: dict[int, int] = defaultdict(int)
    high_alerts: dict[int, int] = defaultdict(int)
    for pid, priority, count in session.exec(
        select(Alert.participant_id, Alert.priority, func.count())
        .where(Alert.participant_id.in_(ids), Alert.state != AlertState.RESOLVED.value)
        .group_by(Alert.participant_id, Alert.priority)
    ).all():
        open_alerts[pid] += count
        if priority == "high":
            high_alerts[pid] += count
    latest_vas: dict[int, VasScore] = {}
    for score in session.exec(
        select(VasScore)
        .where(VasScore.participant_id.in_(ids), VasScore.status == "valid")
        .order_by(VasScore.recorded_at, VasScore.id)
    ).all():
        latest_vas[score.participant_id] = score
    ae_counts = dict(
        session.exec(
            select(AdverseEvent.participant_id, func.count())
            .where(AdverseEvent.participant_id.in_(ids))
            .group_by(AdverseEvent.participant_id)
        ).all()
    )
    sites = {s.id: s for s in session.exec(select(Site)).all()}
    studies = {s.id: s for s in session.exec(select(Study)).all()}
    return [
        Row(
            participant=p,
            site=sites[p.site_id],
            adherence=adherence_of(doses[p.id], now=now, enrolled_at=p.enrolled_at),
            vas=latest_vas[p.id].value if p.id in latest_vas else None,
            vas_at=latest_vas[p.id].recorded_at if p.id in latest_vas else None,
            open_alerts=open_alerts[p.id],
            high_alerts=high_alerts[p.id],
            adverse_events=ae_counts.get(p.id, 0),
            dosing=arm_doses(studies[p.study_id], p.arm),
        )
        for p in participants
    ]


def _masked_dashboard(session, *, sites, site_ids, chosen_site: str, now):
    """The assessor's dashboard: VAS and adverse events only, by study code, the same for every arm."""
    rows = sorted(
        dashboard_rows(session, site_ids=site_ids, arm=None, status=None, now=now),
        key=lambda r: r.participant.study_code,
    )
    studies = session.exec(select(Study).order_by(Study.code)).all()
    return render_template(
        "dashboard_masked.html",
        rows=[Shown(row, status=masked_status(row.participant)) for row in rows],
        sites=sites,
        chosen_site=chosen_site,
        studies=[{"code": study.code, "title": masked_title(study)} for study in studies],
    )


@bp.get("/")
@staff_page(masked_safe=True)
def dashboard():
    """Show the participants the signed-in staff member covers, riskiest first."""
    session = get_session()
    me = principal()
    now = utcnow()
    sites = list(session.exec(select(Site).where(scope.site_filter(me, Site.id)).order_by(Site.code)).all())
    chosen_site = request.args.get("site", "")
    site_ids = [s.id for s in sites if not chosen_site or s.code == chosen_site]
    if me.masked:
        return _masked_dashboard(session, sites=sites, site_ids=site_ids, chosen_site=chosen_site, now=now)
    arm = request.args.get("arm", "")
    status = request.args.get("status", "")
    sort = request.args.get("sort", "risk") if request.args.get("sort") in SORTS else "risk"
    rows = dashboard_rows(
        session, site_ids=site_ids, arm=arm or None, status=status if status in STATUSES else None, now=now
    )
    rows.sort(key=_risk_key if sort == "risk" else (lambda r: r.participant.study_code))
    arms = sorted(
        set(session.exec(select(Participant.arm).where(Participant.site_id.in_([s.id for s in sites]))).all())
    )
    return render_template(
        "dashboard.html",
        rows=rows,
        sites=sites,
        arms=arms,
        statuses=STATUSES,
        sorts=SORTS,
        chosen={"site": chosen_site, "arm": arm, "status": status, "sort": sort},
        now=now,
    )
