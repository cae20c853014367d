"""One adverse event: the record and a nurse completing it, its versions and signatures, and the investigator's
review, follow-up and signing."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlmodel import select

from backend.db import get_session
from backend.extensions import get_vault
from backend.identity.app_tokens import Refused
from backend.identity.principal import REVIEWERS, UNMASKED
from backend.models import Staff
from backend.operations import ae_review as ops
from backend.web.auth import keep_consequence, lockout_policy
from backend.web.errors import status_of
from backend.web.pages.alerts import staff_text
from backend.web.pages.common import bp, csrf_refused, principal, staff_page, visible_participant_or_404
from backend.web.pages.forms import AeFollowUpForm, AeRecordForm, AeReviewForm, AeSignForm
from backend.web.paths import ID
from backend.web.words import code_words, domain_error_words
from schedules.ae_versions import history
from schedules.calendar import local_wall_to_utc, to_local
from schedules.ctcae import ctcae_term, suggested_ctcae_code
from schedules.dbtypes import utcnow
from schedules.errors import DomainError
from schedules.models import AdverseEvent, Participant, Site
from schedules.vocabulary import SIGNATURE_MEANING_LABELS

FORM_CLASSES = {"record": AeRecordForm, "review": AeReviewForm, "follow_up": AeFollowUpForm, "sign": AeSignForm}


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _from_yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def _visible_ae_or_404(ae_id: int) -> tuple[AdverseEvent, Participant]:
    ae = get_session().get(AdverseEvent, ae_id)
    if ae is None:
        abort(404)
    return ae, visible_participant_or_404(ae.participant_id)


def _default_forms(ae: AdverseEvent, zone: str) -> dict[str, FlaskForm]:
    # formdata=None: a failed POST of one form must not pour its fields into the others.
    criteria = [c for c in ae.serious_criteria.split(",") if c]
    serious = None if ae.serious is None else ("yes" if ae.serious else "no")
    return {
        "record": AeRecordForm(
            prefix="record",
            formdata=None,
            # A report not coded yet starts from the CTCAE term its app term usually is.
            ctcae_term=ae.ctcae_term or suggested_ctcae_code(ae.term),
            onset_date=ae.onset_date,
            stop_date=ae.stop_date,
            severity=ae.severity or "",
            ongoing=_yes_no(ae.ongoing),
            went_to_hospital=_yes_no(ae.went_to_hospital),
            action_taken=ae.action_taken or "",
            aware_at=to_local(ae.aware_at or ae.reported_at, zone).replace(tzinfo=None, second=0, microsecond=0),
            narrative=ae.narrative,
        ),
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
    zone = session.get(Site, participant.site_id).time_zone
    forms = _default_forms(ae, zone)
    forms.update(submitted or {})
    versions = history(session, ae)
    return render_template(
        "adverse_event.html",
        ae=ae,
        participant=participant,
        zone=zone,
        coded=ctcae_term(ae.ctcae_term),
        versions=list(reversed(versions)),
        current=versions[-1],
        reviewed_by=staff_text(ae.reviewed_by, dict(session.exec(select(Staff.id, Staff.email)).all())),
        may_review=principal().role in REVIEWERS,
        may_complete=principal().role in UNMASKED,
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
    message = domain_error_words(exc.message)
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, message]
    else:
        form.form_errors.append(message)


def _act(
    ae_id: int,
    key: str,
    change: Callable[[AdverseEvent, FlaskForm, datetime], str],
    roles: tuple[str, ...] = REVIEWERS,
):
    """Those of `roles` only (investigators and admins unless said): validate the form, make the change, come
    back to the page."""
    if principal().role not in roles:
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
            form.password.errors = [*form.password.errors, domain_error_words(exc.message)]
        else:
            _show_error(form, exc)
        return render_adverse_event(ae, participant, submitted={key: form}, status=status_of(exc))
    flash(message, "success")
    return redirect(url_for("pages.adverse_event", ae_id=ae.id), code=303)


@bp.post(f"/adverse-events/<{ID}:ae_id>/record")
@staff_page()
def complete_adverse_event(ae_id: int):
    """Complete the record (nurses too): CTCAE term, dates, severity, hospital, action taken, awareness, narrative."""

    def change(ae: AdverseEvent, form: AeRecordForm, now: datetime) -> str:
        changes: dict[str, object] = {
            "onset_date": form.onset_date.data,
            "stop_date": form.stop_date.data,
            "severity": form.severity.data or None,
            "ongoing": _from_yes_no(form.ongoing.data),
            "went_to_hospital": _from_yes_no(form.went_to_hospital.data),
            "action_taken": form.action_taken.data or None,
            "narrative": form.narrative.data or "",
        }
        if form.ctcae_term.data:  # an empty choice keeps the code: coding is not undone from a form
            changes["ctcae_term"] = form.ctcae_term.data
        if form.aware_at.data is not None:
            local = form.aware_at.data
            session = get_session()
            zone = session.get(Site, session.get(Participant, ae.participant_id).site_id).time_zone
            aware = local_wall_to_utc(local.date(), local.time().replace(second=0, microsecond=0), zone)
            # The form shows minutes: an unchanged field must not shift the stored seconds.
            if aware != (ae.aware_at or ae.reported_at).replace(second=0, microsecond=0):
                changes["aware_at"] = aware
        ops.complete_adverse_event(
            get_session(),
            ae=ae,
            actor=principal().actor,
            now=now,
            changes=changes,
            vault=get_vault(),
            reason=form.reason.data.strip(),
        )
        return _("Record saved as version %(n)d.", n=ae.version)

    return _act(ae_id, "record", change, roles=UNMASKED)


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
        return _("Review saved as version %(n)d; it needs signing.", n=ae.version)

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
        return _("Follow-up saved as version %(n)d; it needs signing.", n=ae.version)

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
        return _("Version %(n)d signed as %(meaning)s.", n=ae.version, meaning=code_words(form.meaning.data))

    return _act(ae_id, "sign", change)
