"""The SMS simulator (console SMS only): see what a participant was sent, answer as them, run the jobs."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlmodel import select
from wtforms.fields import SelectChoice

from backend.config import settings_of
from backend.db import get_session
from backend.extensions import get_vault
from backend.identity import scope
from backend.operations.sms_replies import handle_inbound
from backend.runtime.jobs import JOBS, run_job
from backend.web.pages.common import (
    bp,
    csrf_refused,
    principal,
    staff_page,
    visible_participant_or_404,
)
from backend.web.pages.forms import RunJobsForm, SimulatorReplyForm
from backend.web.pages.participant import message_log
from notifications.models import InboundMessage
from schedules.dbtypes import utcnow
from schedules.models import Participant, Site


def _require_console() -> None:
    # With a real SMS provider a fake inbound message would mix with real ones: the page does not exist then.
    if settings_of(current_app).SMS_BACKEND != "console":
        abort(404)


def _visible_participants(session) -> list[Participant]:
    query = (
        select(Participant).where(scope.site_filter(principal(), Participant.site_id)).order_by(Participant.study_code)
    )
    return list(session.exec(query).all())


def _render(*, reply_form: SimulatorReplyForm | None = None, status: int = 200):
    session = get_session()
    participants = _visible_participants(session)
    chosen_id = request.args.get("participant", type=int)
    chosen = next((p for p in participants if p.id == chosen_id), participants[0] if participants else None)
    choices = [
        SelectChoice(p.id, _("%(code)s (phone ending %(last2)s)", code=p.study_code, last2=p.phone_last2))
        for p in participants
    ]
    reply_form = reply_form or SimulatorReplyForm(
        prefix="sim", formdata=None, participant=chosen.id if chosen else None
    )
    reply_form.participant.choices = choices
    jobs_form = RunJobsForm(prefix="jobs", formdata=None, participant=str(chosen.id) if chosen else "")
    context = dict(
        participants=participants,
        chosen=chosen,
        reply_form=reply_form,
        jobs_form=jobs_form,
        jobs=JOBS,
        log=[],
        planned=[],
        zone=None,
        last=None,
    )
    if chosen is not None:
        context["zone"] = session.get(Site, chosen.site_id).time_zone
        context["log"], context["planned"] = message_log(session, chosen)
        last_id = request.args.get("inbound", type=int)
        last = session.get(InboundMessage, last_id) if last_id else None
        context["last"] = last if last is not None and last.participant_id == chosen.id else None
    return render_template("simulator.html", **context), status


@bp.get("/simulator")
@staff_page()
def simulator():
    """Show the SMS simulator: one participant's messages, a reply box and a button to run the jobs."""
    _require_console()
    return _render()


@bp.post("/simulator/reply")
@staff_page()
def simulator_reply():
    """Send a reply as the chosen participant, exactly as if it had come in by SMS."""
    _require_console()
    session = get_session()
    form = SimulatorReplyForm(prefix="sim")
    form.participant.choices = [SelectChoice(p.id, p.study_code) for p in _visible_participants(session)]
    if not form.validate_on_submit():
        if csrf_refused(form):
            abort(400)
        return _render(reply_form=form, status=422)
    participant = visible_participant_or_404(form.participant.data)
    vault = get_vault()
    result = handle_inbound(
        session,
        message_sid="SIM" + uuid.uuid4().hex,
        from_number=vault.decrypt(participant.phone_ciphertext),
        body=form.body.data,
        params={},
        vault=vault,
        now=utcnow(),
        keyword_replies=settings_of(current_app).SMS_KEYWORD_REPLIES,
    )
    return redirect(
        url_for("pages.simulator", participant=participant.id, inbound=result.inbound_id, _anchor="last"), code=303
    )


@bp.post("/simulator/run-jobs")
@staff_page()
def simulator_run_jobs():
    """Run every scheduled job once, now, in its natural order (reminders due now go out to the console)."""
    _require_console()
    form = RunJobsForm(prefix="jobs")
    if not form.validate_on_submit():
        abort(400)
    # Each job commits in its own session; ours must let go of the database first (SQLite has one writer).
    get_session().commit()
    app = current_app._get_current_object()
    for job in JOBS:
        flash(f"{job.name}: {run_job(app, job.name)}", "info")
    target = (
        url_for("pages.simulator", participant=form.participant.data)
        if (form.participant.data or "").isdigit()
        else url_for("pages.simulator")
    )
    return redirect(target, code=303)
