"""The participant page's app parts: a nurse gives an activation code (shown once, with a QR code that opens the
app with the code filled in), and the injection-site rotation history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import segno
from flask import abort, current_app, render_template
from flask_wtf import FlaskForm
from wtforms import BooleanField

from backend.db import get_session
from backend.operations import app_access as access
from backend.web.pages.common import bp, csrf_refused, principal, staff_page, visible_participant_or_404
from backend.web.paths import ID
from schedules.dbtypes import utcnow
from schedules.errors import DomainError
from schedules.injection_sites import last_used
from schedules.models import Dose, Site, Study
from schedules.studies import protocol_of


class AppCodeForm(FlaskForm):
    """Create an activation code for the participant's app."""

    send_sms = BooleanField("Also text the code to the participant's phone")


@dataclass(frozen=True)
class SiteUse:
    """One protocol site on the nurse page: how often and when last injected there."""

    label: str
    times: int
    last_at: datetime | None


def app_link(code: str) -> str:
    """The address a QR code opens: the app, with the code in the fragment (never sent to any server log)."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/app/#code=" + code.replace(" ", "")


def qr_data_uri(text: str) -> str:
    """A QR code of `text` as an SVG data: URI (pages allow data: images, and no inline style is needed)."""
    return segno.make(text, error="m").svg_data_uri(scale=6, border=4)


def site_rotation(study: Study, doses: list[Dose]) -> tuple[list[SiteUse], list[tuple[Dose, str]]]:
    """Per protocol site: times used and last use; and every injection that named its site, newest first."""
    rule = protocol_of(study).injection_sites
    named = sorted((d for d in doses if d.injection_site and d.taken_at), key=lambda d: d.taken_at, reverse=True)
    latest = last_used(((d.injection_site, d.taken_at) for d in named), rule.sites)
    uses = [
        SiteUse(rule.label(site, "en"), sum(1 for d in named if d.injection_site == site), latest[site])
        for site in rule.sites
    ]
    return uses, [(d, rule.label(d.injection_site, "en")) for d in named]


@bp.app_context_processor
def _app_parts():
    # The participant page's includes build their own form and rows from what the page already has.
    return {"app_code_form": lambda: AppCodeForm(prefix="app", formdata=None), "site_rotation": site_rotation}


@bp.post(f"/participants/<{ID}:participant_id>/app-code")
@staff_page()
def app_code(participant_id: int):
    """Create a one-time app activation code and show it once, with its QR code."""
    participant = visible_participant_or_404(participant_id)
    form = AppCodeForm(prefix="app")
    if not form.validate_on_submit():
        abort(400 if csrf_refused(form) else 422)
    try:
        issued = access.issue_activation_code(
            get_session(), participant=participant, send_sms=form.send_sms.data, actor=principal().actor, now=utcnow()
        )
    except DomainError as exc:
        get_session().rollback()
        return render_template("app_code.html", participant=participant, error=exc.message, zone="UTC"), 409
    link = app_link(issued.code)
    zone = get_session().get(Site, participant.site_id).time_zone
    return render_template(
        "app_code.html", participant=participant, issued=issued, link=link, qr=qr_data_uri(link), zone=zone, error=None
    ), 201
