"""The protocol-deviation log page: the caller's site's deviations with filters, and a review form on each."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlmodel import select

from backend.db import get_session
from backend.operations.deviations import review_deviation
from backend.web.api.deviations import filtered, visible_deviation
from backend.web.i18n import local_day_text
from backend.web.pages.common import bp, csrf_refused, principal, safe_next, staff_page
from backend.web.pages.forms import DeviationFilterForm, DeviationReviewForm
from backend.web.paths import ID
from schedules.dbtypes import utcnow
from schedules.errors import DomainError
from schedules.models import Participant, Site

SHOWN = 500
KIND_LABELS = {
    "missed_dose": _l("Missed dose"),
    "late_dose": _l("Late dose"),
    "hold": _l("Hold"),
    "out_of_window_change": _l("Record changed after the window"),
}
REVIEW_LABELS = {
    "open": _l("Open (not reviewed)"),
    "reviewed": _l("Reviewed"),
    "not_a_deviation": _l("Not a deviation"),
}


def _filters(form: DeviationFilterForm) -> dict:
    """The list's filters from a valid form; one value each on the page (the API takes several)."""
    return {
        "site": form.site.data or None,
        "participant": (form.participant.data or "").strip() or None,
        "kind": [form.kind.data] if form.kind.data else None,
        "classification": [form.classification.data] if form.classification.data else None,
        "review_state": [form.review_state.data] if form.review_state.data else None,
        "date_from": form.date_from.data,
        "date_to": form.date_to.data,
    }


def render_log(*, failed: tuple[int, DeviationReviewForm] | None = None, status: int = 200):
    """The log page; `failed` is a review form that did not go through, shown with its errors."""
    session = get_session()
    who = principal()
    form = DeviationFilterForm(request.args)
    valid = form.validate()
    query = filtered(session, who, _filters(form) if valid else {}).limit(SHOWN + 1)
    deviations = list(session.exec(query).all())
    participants = {
        p.id: p
        for p in session.exec(select(Participant).where(Participant.id.in_({d.participant_id for d in deviations})))
    }
    zones = {s.id: s.time_zone for s in session.exec(select(Site)).all()}
    back = request.full_path.rstrip("?")
    reviews = {
        d.id: DeviationReviewForm(prefix=f"review{d.id}", formdata=None, next=back, review_state=d.review_state)
        for d in deviations[:SHOWN]
    }
    if failed and failed[0] in reviews:
        reviews[failed[0]] = failed[1]
    return render_template(
        "deviations.html",
        form=form,
        rows=[(d, participants[d.participant_id], zones.get(d.site_id, "UTC")) for d in deviations[:SHOWN]],
        more=len(deviations) > SHOWN,
        reviews=reviews,
        kinds=KIND_LABELS,
        states=REVIEW_LABELS,
        failed=[e for field in failed[1] for e in field.errors] + list(failed[1].form_errors) if failed else [],
    ), status


@bp.get("/deviations")
@staff_page()
def deviations():
    """Show the deviation log of the caller's site, filtered by the GET form."""
    return render_log()


@bp.post(f"/deviations/<{ID}:deviation_id>/review")
@staff_page()
def review(deviation_id: int):
    """Record a review of one deviation (state and comment); back to the list as it was filtered."""
    session = get_session()
    deviation = visible_deviation(session, principal(), deviation_id)
    form = DeviationReviewForm(prefix=f"review{deviation_id}")
    if not form.validate_on_submit():
        if csrf_refused(form):
            abort(400)
        return render_log(failed=(deviation.id, form), status=422)
    try:
        review_deviation(
            session,
            deviation=deviation,
            state=form.review_state.data,
            comment=form.comment.data,
            actor=principal().actor,
            now=utcnow(),
        )
    except DomainError as exc:
        session.rollback()
        form.form_errors.append(exc.message)
        return render_log(failed=(deviation.id, form), status=422)
    flash(
        _(
            "Review saved: %(kind)s of %(date)s.",
            kind=KIND_LABELS[deviation.kind],
            date=local_day_text(deviation.local_date),
        ),
        "success",
    )
    return redirect(safe_next(form.next.data, url_for("pages.deviations")), code=303)
