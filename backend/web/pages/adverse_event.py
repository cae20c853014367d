"""One adverse event: the record, its versions and signatures, and the investigator's review, follow-up and signing."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from flask import abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlmodel import select

from backend.db import get_session
from backend.identity.app_tokens import Refused
from backend.identity.principal import REVIEWERS
from backend.models import Staff
from backend.operations import ae_review as ops
from backend.web.auth import keep_consequence, lockout_policy
from backend.web.errors import status_of
from backend.web.pages.alerts import staff_text
from backend.web.pages.common import bp, csrf_refused, principal, staff_page, visible_participant_or_404
from backend.web.pages.forms import AeFollowUpForm, AeReviewForm, AeSignForm
from backend.web.paths import ID
from schedules.ae_versions import history
from schedules.dbtypes import utcnow
from schedules.errors import DomainError
from schedules.models import AdverseEvent, Participant, Site
from schedules.vocabulary import SIGNATURE_MEANING_LABELS

FORM_CLASSES = {"review": AeReviewForm, "follow_up": AeFollowUpForm, "sign": AeSignForm}


def _visible_ae_or_404(ae_id: int) -> tuple[AdverseEvent, Participant]:
    ae = get_session().get(AdverseEvent, ae_id)
    if ae is None:
        abort(404)
    return ae, visible_participant_or_404(ae.participant_id)


def _default_forms(ae: AdverseEvent) -> dict[str, FlaskForm]:
    # formdata=None: a failed POST of one form must not pour its fields into the others.
    criteria = [c for c in ae.serious_criteria.split(",") if c]
    serious = None if ae.serious is None else ("yes" if ae.serious else "no")
    return {
        "review": AeReviewForm(
            prefix="review",
            formdata=None,
            ctcae_grade=ae.ctcae_grade,
            serious=serious,
            serious_criteria=criteria,
            relatedness=ae.relatedness,
            outcome=ae.outcome,
        ),
        "follow_up": AeFollowUpForm(
            prefix="follow_up", formdata=None, outcome=ae.outcome or "", stop_date=ae.stop_date, narrative=ae.narrative
        ),
        "sign": AeSignForm(prefix="sign", formdata=None),
    }


def render_adverse_event(
    ae: AdverseEvent, participant: Participant, *, submitted: dict[str, FlaskForm] | None = None, status: int = 200
):
    """The adverse-event page; `submitted` holds a form that failed, shown with its errors."""
    session = get_session()
    forms = _default_forms(ae)
    forms.update(submitted or {})
    versions = history(session, ae)
    return render_template(
        "adverse_event.html",
        ae=ae,
        participant=participant,
        zone=session.get(Site, participant.site_id).time_zone,
        versions=list(reversed(versions)),
        current=versions[-1],
        reviewed_by=staff_text(ae.reviewed_by, dict(session.exec(select(Staff.id, Staff.email)).all())),
        may_review=principal().role in REVIEWERS,
        forms=forms,
        failed=list(submitted or {}),
        meaning_labels=SIGNATURE_MEANING_LABELS,
    ), status


@bp.get(f"/adverse-events/<{ID}:ae_id>")
@staff_page()
def adverse_event(ae_id: int):
    """Show one adverse event with its versions and signatures (the masked assessor may not: free text)."""
    return render_adverse_event(*_visible_ae_or_404(ae_id))


def _show_error(form: FlaskForm, exc: DomainError) -> None:
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


def _act(ae_id: int, key: str, change: Callable[[AdverseEvent, FlaskForm, datetime], str]):
    """Investigators and admins only: validate the form, make the change, come back to the page."""
    if principal().role not in REVIEWERS:
        abort(403)
    ae, participant = _visible_ae_or_404(ae_id)
    form = FORM_CLASSES[key](prefix=key)
    if not form.validate_on_submit():
        if csrf_refused(form):
            abort(400)
        return render_adverse_event(ae, participant, submitted={key: form}, status=422)
    try:
        message = change(ae, form, utcnow())
    except DomainError as exc:
        if isinstance(exc, Refused):
            keep_consequence(exc)  # the wrong password is counted although nothing is signed
        else:
            get_session().rollback()  # nothing of a refused change may stay in the session the page is drawn from
        if isinstance(exc, Refused):
            form.password.errors = [*form.password.errors, exc.message]
        else:
            _show_error(form, exc)
        return render_adverse_event(ae, participant, submitted={key: form}, status=status_of(exc))
    flash(message, "success")
    return redirect(url_for("pages.adverse_event", ae_id=ae.id), code=303)


@bp.post(f"/adverse-events/<{ID}:ae_id>/review")
@staff_page()
def review_adverse_event(ae_id: int):
    """Grade the adverse event; after a signature the grading is a new version."""

    def change(ae: AdverseEvent, form: AeReviewForm, now: datetime) -> str:
        ops.review_adverse_event(
            get_session(),
            ae=ae,
            actor=principal().actor,
            now=now,
            ctcae_grade=form.ctcae_grade.data,
            serious=form.serious.data == "yes",
            serious_criteria=form.serious_criteria.data or [],
            relatedness=form.relatedness.data,
            outcome=form.outcome.data,
            reason=form.reason.data.strip(),
        )
        return f"Review saved as version {ae.version}; it needs signing."

    return _act(ae_id, "review", change)


@bp.post(f"/adverse-events/<{ID}:ae_id>/follow-up")
@staff_page()
def follow_up_adverse_event(ae_id: int):
    """Record follow-up (outcome, stop date, narrative); after a signature it is a new version."""

    def change(ae: AdverseEvent, form: AeFollowUpForm, now: datetime) -> str:
        changes = {"stop_date": form.stop_date.data, "narrative": form.narrative.data or ""}
        if form.outcome.data:
            changes["outcome"] = form.outcome.data
        ops.follow_up_adverse_event(
            get_session(), ae=ae, actor=principal().actor, now=now, changes=changes, reason=form.reason.data.strip()
        )
        return f"Follow-up saved as version {ae.version}; it needs signing."

    return _act(ae_id, "follow_up", change)


@bp.post(f"/adverse-events/<{ID}:ae_id>/sign")
@staff_page()
def sign_adverse_event(ae_id: int):
    """Sign the current version with email and password again and a meaning."""

    def change(ae: AdverseEvent, form: AeSignForm, now: datetime) -> str:
        me = principal()
        ops.sign_adverse_event(
            get_session(),
            ae=ae,
            staff_id=me.id,
            email=form.email.data,
            password=form.password.data,
            meaning=form.meaning.data,
            actor=me.actor,
            now=now,
            policy=lockout_policy(),
        )
        return f"Version {ae.version} signed as {form.meaning.data}."

    return _act(ae_id, "sign", change)
