"""The study report for unmasked staff: adherence by site and arm, VAS completion by week, adverse events by term
and grade, serious-event reporting on time; every figure links to the rows behind it."""

from __future__ import annotations

from flask import abort, render_template, request
from sqlmodel import select

from backend.db import get_session
from backend.identity import scope
from backend.web.pages.common import bp, principal, staff_page
from schedules.ctcae import ctcae_term
from schedules.dbtypes import utcnow
from schedules.models import AdverseEvent, Alert, Participant, Site
from schedules.study_report import CTCAE_KEY, SAE_STANDINGS, UNGRADED, StudyReport, sae_standing, study_report
from schedules.vocabulary import AE_TERM_LABELS

SAE_STANDING_LABELS = {
    "on_time": "reported within the deadline",
    "late": "reported after the deadline",
    "overdue": "not reported, deadline passed",
    "running": "not reported yet, deadline still ahead",
}


def _scoped_sites() -> tuple[list[Site], list[int], str]:
    """The sites the staff member covers, the ids chosen by the `site` filter, and that filter."""
    sites = list(get_session().exec(select(Site).where(scope.site_filter(principal(), Site.id)).order_by(Site.code)))
    chosen = request.args.get("site", "")
    if chosen and chosen not in {s.code for s in sites}:
        abort(404)
    return sites, [s.id for s in sites if not chosen or s.code == chosen], chosen


def _report() -> tuple[StudyReport, list[Site], str]:
    sites, site_ids, chosen = _scoped_sites()
    return study_report(get_session(), site_ids=site_ids, now=utcnow()), sites, chosen


def term_label(term: str) -> str:
    """The adverse-event term in words: the CTCAE v5 term a nurse coded it with, else the participant's term."""
    if term.startswith(CTCAE_KEY):
        coded = ctcae_term(term.removeprefix(CTCAE_KEY))
        return f"{coded.term} (CTCAE)" if coded else term
    return AE_TERM_LABELS.get(term, {}).get("en", term.replace("_", " "))


@bp.get("/report")
@staff_page()
def report():
    """Every figure of the study to date, for the sites the staff member covers."""
    figures, sites, chosen = _report()
    grades = sorted({grade for row in figures.ae_grades.values() for grade in row} - {UNGRADED})
    return render_template(
        "report.html",
        report=figures,
        sites=sites,
        chosen_site=chosen,
        grades=grades,
        ungraded=UNGRADED,
        term_label=term_label,
        sae_standings=SAE_STANDINGS,
        sae_labels=SAE_STANDING_LABELS,
    )


def _participants(ids) -> dict[int, Participant]:
    if not ids:
        return {}
    return {p.id: p for p in get_session().exec(select(Participant).where(Participant.id.in_(list(ids))))}


@bp.get("/report/adverse-events")
@staff_page()
def report_adverse_events():
    """The adverse events behind one cell of the term-by-grade table."""
    figures, _, chosen = _report()
    term = request.args.get("term", "")
    grade = request.args.get("grade", type=int)
    if term not in figures.ae_grades or (grade is not None and grade not in figures.ae_grades[term]):
        abort(404)
    cells = figures.ae_grades[term]
    ids = cells[grade] if grade is not None else [i for row in cells.values() for i in row]
    events = list(get_session().exec(select(AdverseEvent).where(AdverseEvent.id.in_(ids)).order_by(AdverseEvent.id)))
    grade_text = "all grades" if grade is None else ("not graded" if grade == UNGRADED else f"grade {grade}")
    return render_template(
        "report_adverse_events.html",
        title=f"{term_label(term)}, {grade_text}",
        events=events,
        participants=_participants(e.participant_id for e in events),
        term_label=term_label,
        chosen_site=chosen,
    )


@bp.get("/report/serious-events")
@staff_page()
def report_serious_events():
    """The suspected-serious events with where their 24-hour reporting clock ended or stands."""
    figures, _, chosen = _report()
    standing = request.args.get("standing", "")
    if standing and standing not in SAE_STANDINGS:
        abort(404)
    ids = figures.sae[standing] if standing else [i for s in SAE_STANDINGS for i in figures.sae[s]]
    alerts = list(get_session().exec(select(Alert).where(Alert.id.in_(ids)).order_by(Alert.opened_at)))
    now = utcnow()
    return render_template(
        "report_serious_events.html",
        title="Serious events" + (f": {SAE_STANDING_LABELS[standing]}" if standing else ""),
        rows=[(a, sae_standing(a, now=now)) for a in alerts],
        participants=_participants(a.participant_id for a in alerts),
        sae_labels=SAE_STANDING_LABELS,
        chosen_site=chosen,
    )


@bp.get("/report/vas-week/<int:week>")
@staff_page()
def report_vas_week(week: int):
    """Who was due a VAS score in study week `week`, and who gave one."""
    figures, _, chosen = _report()
    row = next((w for w in figures.vas_weeks if w.week == week), None)
    if row is None:
        abort(404)
    participants = _participants(row.expected)
    answered = set(row.answered)
    return render_template(
        "report_vas_week.html",
        week=row,
        rows=sorted(((participants[i], i in answered) for i in row.expected), key=lambda r: r[0].study_code),
        chosen_site=chosen,
    )
