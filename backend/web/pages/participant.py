"""One participant: dose calendar, VAS trend, adverse events, the message log and the nurse's actions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time
from typing import Callable

from flask import abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlmodel import select
from wtforms.fields import SelectChoice

from backend.audit import field_changes
from backend.db import get_session
from backend.extensions import get_vault
from backend.operations import doses as dose_ops
from backend.operations import participants as ops
from backend.web.masking import masked_adverse_event, masked_status, masked_title
from backend.web.pages.alerts import alert_forms, alert_rows
from backend.web.pages.common import (
    bp,
    csrf_refused,
    principal,
    staff_page,
    visible_participant_or_404,
)
from backend.web.pages.display import (
    DOSE_STATE_LABELS,
    WEEKDAYS,
    month_grids,
    shown_state,
    vas_chart_data,
)
from backend.web.pages.forms import (
    DetailsForm,
    HoldForm,
    RecordDoseForm,
    ResumeForm,
    WithdrawForm,
)
from backend.web.paths import ID
from notifications.models import InboundMessage, OutboundMessage, OutboxStatus
from schedules.adherence import adherence_of
from schedules.ae_versions import histories
from schedules.calendar import local_wall_to_utc
from schedules.dbtypes import utcnow
from schedules.dose_numbering import dose_numbers
from schedules.errors import DomainError
from schedules.models import (
    AdverseEvent,
    Alert,
    AlertState,
    Dose,
    DoseState,
    Participant,
    Site,
    Study,
)
from schedules.planning import reminder_in_quiet_hours
from schedules.queries import doses_of, local_today, vas_history
from schedules.studies import arm_doses, protocol_of
from schedules.wallclock import format_hhmm, parse_hhmm

MESSAGE_LOG_LIMIT = 200
# A dose can be reported by phone once its window has opened; missed and skipped ones may still change.
REPORTABLE = (DoseState.SCHEDULED.value, DoseState.MISSED.value, DoseState.SKIPPED.value)
FORM_CLASSES = {
    "dose": RecordDoseForm,
    "hold": HoldForm,
    "resume": ResumeForm,
    "withdraw": WithdrawForm,
    "details": DetailsForm,
}


@dataclass(frozen=True)
class LogEntry:
    """One message of the log, either direction."""

    at: datetime
    direction: str  # "out" to the participant, "in" from them
    kind: str
    status: str
    body: str


def reportable_doses(doses: list[Dose], *, now: datetime) -> list[Dose]:
    """Doses a nurse may record a phone report for: window opened, not yet final; newest first."""
    return sorted(
        (d for d in doses if d.state in REPORTABLE and d.window_opens_at <= now),
        key=lambda d: d.local_date,
        reverse=True,
    )


def _dose_choices(doses: list[Dose], *, now: datetime, enrolled_at: datetime) -> list[SelectChoice]:
    numbers = dose_numbers(doses)
    return [
        SelectChoice(
            d.id,
            f"Dose {numbers[d.id]} — {d.local_date.isoformat()} "
            f"({DOSE_STATE_LABELS[shown_state(d, enrolled_at=enrolled_at)][1]})",
        )
        for d in reportable_doses(doses, now=now)
    ]


def message_log(session, participant: Participant) -> tuple[list[LogEntry], list[OutboundMessage]]:
    """The conversation newest first (sent, failed and expired messages plus replies), and what is planned next."""
    outbound = session.exec(
        select(OutboundMessage)
        .where(
            OutboundMessage.participant_id == participant.id,
            OutboundMessage.status.not_in([OutboxStatus.PLANNED.value, OutboxStatus.CANCELLED.value]),
        )
        .order_by(OutboundMessage.due_at.desc())
        .limit(MESSAGE_LOG_LIMIT)
    ).all()
    inbound = session.exec(
        select(InboundMessage)
        .where(InboundMessage.participant_id == participant.id)
        .order_by(InboundMessage.received_at.desc())
        .limit(MESSAGE_LOG_LIMIT)
    ).all()
    entries = [
        LogEntry(m.sent_at or m.due_at, "out", m.purpose.replace("_", " "), m.provider_status or m.status, m.body)
        for m in outbound
    ]
    entries += [
        LogEntry(m.received_at, "in", m.intent.replace("_", " ") or "reply", m.outcome, m.body) for m in inbound
    ]
    # Newest first; an answer shares its message's timestamp and goes above it, as on a phone.
    entries.sort(key=lambda e: (e.at, e.direction == "out"), reverse=True)
    planned = session.exec(
        select(OutboundMessage)
        .where(OutboundMessage.participant_id == participant.id, OutboundMessage.status == OutboxStatus.PLANNED.value)
        .order_by(OutboundMessage.due_at)
        .limit(5)
    ).all()
    return entries[:MESSAGE_LOG_LIMIT], list(planned)


def _default_forms(participant: Participant, *, today) -> dict[str, FlaskForm]:
    # formdata=None: a failed POST to one action must not pour its fields into the other forms.
    return {
        "dose": RecordDoseForm(prefix="dose", formdata=None),
        "hold": HoldForm(prefix="hold", formdata=None, effective=today),
        "resume": ResumeForm(prefix="resume", formdata=None, resume_date=today),
        "withdraw": WithdrawForm(prefix="withdraw", formdata=None),
        "details": DetailsForm(
            prefix="details",
            formdata=None,
            time_zone=participant.time_zone,
            reminder_time=parse_hhmm(participant.reminder_time),
        ),
    }


def render_participant(participant: Participant, *, submitted: dict[str, FlaskForm] | None = None, status: int = 200):
    """The participant page; `submitted` holds a form that failed, shown with its errors."""
    session = get_session()
    me = principal()
    now = utcnow()
    site = session.get(Site, participant.site_id)
    study = session.get(Study, participant.study_id)
    zone = site.time_zone
    scores = vas_history(session, participant.id)
    valid = [s for s in scores if s.status == "valid"]
    scale = protocol_of(study).vas
    chart = vas_chart_data(valid, zone, scale_min=float(scale.scale_min), scale_max=float(scale.scale_max))
    adverse_events = session.exec(
        select(AdverseEvent)
        .where(AdverseEvent.participant_id == participant.id)
        .order_by(AdverseEvent.reported_at.desc())
    ).all()
    common = dict(
        participant=participant,
        site=site,
        study=study,
        zone=zone,
        now=now,
        scores=scores,
        chart_json=json.dumps(chart).replace("<", "\\u003c"),
    )
    if me.masked:
        protocol = protocol_of(study)
        masked_aes = [masked_adverse_event(ae, protocol) for ae in adverse_events]
        return render_template(
            "participant_masked.html",
            **common,
            adverse_events=masked_aes,
            status=masked_status(participant),
            study_title=masked_title(study),
        ), status
    context = dict(
        common,
        dosing=arm_doses(study, participant.arm),
        failed=list(submitted or {}),
        adverse_events=adverse_events,
        state_labels=DOSE_STATE_LABELS,
        weekdays=WEEKDAYS,
    )
    doses = doses_of(session, participant.id)
    today = local_today(participant, now)
    forms = _default_forms(participant, today=today)
    forms.update(submitted or {})
    forms["dose"].dose.choices = _dose_choices(doses, now=now, enrolled_at=participant.enrolled_at)
    alerts = session.exec(
        select(Alert)
        .where(Alert.participant_id == participant.id, Alert.state != AlertState.RESOLVED.value)
        .order_by(Alert.opened_at)
    ).all()
    log, planned = message_log(session, participant)
    context.update(
        ae_versions=histories(session, list(adverse_events)),
        doses=doses,
        adherence=adherence_of(doses, now=now, enrolled_at=participant.enrolled_at),
        months=month_grids(doses, today=today),
        numbers=dose_numbers(doses),
        reported=sorted((d for d in doses if d.reported_at is not None), key=lambda d: d.local_date, reverse=True),
        shown={d.id: shown_state(d, enrolled_at=participant.enrolled_at) for d in doses},
        today=today,
        forms=forms,
        alerts=alert_rows(session, alerts, now=now),
        alert_forms=alert_forms(alerts, back=url_for("pages.participant", participant_id=participant.id)),
        log=log,
        planned=planned,
        consent_changes=field_changes(session, entity="participant", entity_id=participant.id, field="opted_out"),
    )
    return render_template("participant.html", **context), status


@bp.get(f"/participants/<{ID}:participant_id>")
@staff_page(masked_safe=True)
def participant(participant_id: int):
    """Show one participant (the assessor sees VAS and adverse events only)."""
    return render_participant(visible_participant_or_404(participant_id))


# Domain errors name a field; where this form has no such field the error is shown on the form itself.
_FIELD_FOR = {"state": "dose", "injection_site": "dose", "status": None, "effective": "effective"}


def _show_domain_error(form: FlaskForm, exc: DomainError) -> None:
    name = _FIELD_FOR.get(exc.field, exc.field)
    field = getattr(form, name, None) if name else None
    if field is not None and hasattr(field, "errors") and name != "meta":
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


def _act(participant: Participant, key: str, form: FlaskForm, change: Callable[[datetime], str]):
    """Validate the form, make the change (its operation re-plans the messages), and come back to the page."""
    session = get_session()
    if not form.validate_on_submit():
        if csrf_refused(form):
            abort(400)
        return render_participant(participant, submitted={key: form}, status=422)
    try:
        message = change(utcnow())
    except DomainError as exc:
        # Nothing of a refused change may stay in the session the page is then drawn from.
        session.rollback()
        _show_domain_error(form, exc)
        return render_participant(participant, submitted={key: form}, status=422)
    flash(message, "success")
    return redirect(url_for("pages.participant", participant_id=participant.id), code=303)


def _reason(form: FlaskForm) -> str:
    return form.reason.data.strip()


@bp.post(f"/participants/<{ID}:participant_id>/dose")
@staff_page()
def record_dose(participant_id: int):
    """Record a dose the participant reported by phone."""
    participant = visible_participant_or_404(participant_id)
    session = get_session()
    form = RecordDoseForm(prefix="dose")
    form.dose.choices = _dose_choices(
        doses_of(session, participant.id), now=utcnow(), enrolled_at=participant.enrolled_at
    )

    def change(now: datetime) -> str:
        dose = session.get(Dose, form.dose.data)
        zone = session.get(Site, participant.site_id).time_zone
        taken_at = None
        if form.taken_at.data is not None:
            local = form.taken_at.data
            taken_at = local_wall_to_utc(local.date(), local.time().replace(second=0, microsecond=0), zone)
        dose_ops.record_dose(
            session,
            dose=dose,
            taken=form.taken.data == "yes",
            actor=principal().actor,
            now=now,
            taken_at=taken_at,
            note=_reason(form),
            reason=f"reported by phone: {_reason(form)}",
        )
        number = dose_numbers(doses_of(session, participant.id))[dose.id]
        return f"Dose {number} ({dose.local_date.isoformat()}) recorded: {DOSE_STATE_LABELS[dose.state][1]}."

    return _act(participant, "dose", form, change)


# Hold, resume and withdraw: the operation, the form field holding its date (if any), what to tell the nurse.
_STATUS_CHANGES = {
    "hold": (ops.hold, "effective", "Dosing on hold from {date}: {n} dose(s) held."),
    "resume": (ops.resume, "resume_date", "Dosing resumed on {date}: {n} dose(s) planned."),
    "withdraw": (ops.withdraw, None, "{code} is withdrawn: {n} future dose(s) cancelled."),
}


def _status_change(participant_id: int, key: str):
    """Hold, resume or withdraw from its form, with the form's reason (and date)."""
    operation, date_field, done = _STATUS_CHANGES[key]
    participant = visible_participant_or_404(participant_id)
    form = FORM_CLASSES[key](prefix=key)

    def change(now: datetime) -> str:
        dated = {date_field: getattr(form, date_field).data} if date_field else {}
        count = operation(
            get_session(), participant=participant, reason=_reason(form), actor=principal().actor, now=now, **dated
        )
        day = dated[date_field].isoformat() if date_field else ""
        return done.format(date=day, n=count, code=participant.study_code)

    return _act(participant, key, form, change)


@bp.post(f"/participants/<{ID}:participant_id>/hold")
@staff_page()
def hold(participant_id: int):
    """Hold dosing from a date, with a reason."""
    return _status_change(participant_id, "hold")


@bp.post(f"/participants/<{ID}:participant_id>/resume")
@staff_page()
def resume(participant_id: int):
    """Resume dosing on a date, with a reason."""
    return _status_change(participant_id, "resume")


@bp.post(f"/participants/<{ID}:participant_id>/withdraw")
@staff_page()
def withdraw_participant(participant_id: int):
    """Withdraw the participant from the trial, with a reason."""
    return _status_change(participant_id, "withdraw")


@bp.post(f"/participants/<{ID}:participant_id>/details")
@staff_page()
def edit_details(participant_id: int):
    """Change phone, time zone or reminder time, with a reason."""
    participant = visible_participant_or_404(participant_id)
    form = DetailsForm(prefix="details")

    def change(now: datetime) -> str:
        changes = {}
        if (form.phone.data or "").strip():
            changes["phone"] = form.phone.data.strip()
        if form.time_zone.data.strip() != participant.time_zone:
            changes["time_zone"] = form.time_zone.data.strip()
        if format_hhmm(form.reminder_time.data) != participant.reminder_time:
            changes["reminder_time"] = format_hhmm(form.reminder_time.data)
        if not changes:
            raise _NothingChanged("nothing to change: the values are the current ones")
        ops.change_details(
            get_session(),
            participant=participant,
            vault=get_vault(),
            actor=principal().actor,
            reason=_reason(form),
            now=now,
            **changes,
        )
        if "reminder_time" in changes:
            _warn_of_quiet_hours(participant, form.reminder_time.data)
        return "Updated " + ", ".join(name.replace("_", " ") for name in changes) + "."

    return _act(participant, "details", form, change)


def _warn_of_quiet_hours(participant: Participant, reminder: time) -> None:
    """Say plainly what a reminder time in quiet hours means: allowed, but the nudge waits until quiet_end."""
    protocol = protocol_of(get_session().get(Study, participant.study_id))
    if not reminder_in_quiet_hours(protocol, reminder):
        return
    rules = protocol.reminders
    quiet = f"{format_hhmm(rules.quiet_start)}–{format_hhmm(rules.quiet_end)}"
    flash(
        f"{format_hhmm(reminder)} is in the protocol's quiet hours ({quiet}, participant local time). The reminder "
        f"still goes out at {format_hhmm(reminder)}, but the follow-up nudge, if the dose is not confirmed, is held "
        f"back until {format_hhmm(rules.quiet_end)} and is not sent once the dose window has closed.",
        "warning",
    )


class _NothingChanged(DomainError):
    """The details form was sent with the current values."""
