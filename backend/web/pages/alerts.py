"""The one nurse queue: open and acknowledged alerts, highest priority and nearest deadline first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import case
from sqlmodel import select

from backend.db import get_session
from backend.extensions import get_vault
from backend.identity import scope
from backend.identity.principal import Principal
from backend.models import Staff
from backend.operations import alerts as alert_ops
from backend.web.alert_story import alert_stories
from backend.web.alert_text import acknowledged_via
from backend.web.i18n import page_language
from backend.web.pages.common import (
    bp,
    csrf_refused,
    principal,
    safe_next,
    staff_page,
    visible_alert_or_404,
)
from backend.web.pages.display import ALERT_KIND_LABELS
from backend.web.pages.forms import AcknowledgeForm, ResolveForm
from backend.web.paths import ID
from backend.web.words import domain_error_words
from notifications.pages import PageRound, page_rounds
from schedules.dbtypes import utcnow
from schedules.errors import DomainError
from schedules.models import Alert, AlertState, Participant, Site

RESOLVED_SHOWN = 100


@dataclass(frozen=True)
class AlertRow:
    """An alert as the queue shows it: who, how old, how long until its reporting deadline."""

    alert: Alert
    participant: Participant | None
    zone: str
    kind: str
    summary: str
    words: str | None  # what the participant wrote
    reply: str | None  # what we answered them
    acknowledged: bool  # by someone, before (or without) resolving
    age: timedelta
    remaining: timedelta | None
    acknowledged_by: str
    acknowledged_via: str | None  # queue | sms
    resolved_by: str
    pages: list[PageRound]  # on-call pages of a suspected-serious alert, oldest round first


def staff_text(label: str, staff_emails: dict[int, str]) -> str:
    """Who an audit label names, as a nurse reads it: a colleague's email, or the on-call phone."""
    # Audit labels read "staff:staff:7"; a nurse wants the colleague's email, not the number.
    if label.startswith("staff:staff:") and label[12:].isdigit():
        return staff_emails.get(int(label[12:]), label)
    # "sms:on-call +86…0098": the template says it came by SMS.
    return label.removeprefix("sms:")


def alert_rows(session, alerts: list[Alert], *, now: datetime) -> list[AlertRow]:
    """Queue rows for these alerts, with their participant and site time zone."""
    participants = (
        {
            p.id: p
            for p in session.exec(
                select(Participant).where(Participant.id.in_({a.participant_id for a in alerts if a.participant_id}))
            ).all()
        }
        if alerts
        else {}
    )
    zones = {s.id: s.time_zone for s in session.exec(select(Site)).all()}
    staff_emails = dict(session.exec(select(Staff.id, Staff.email)).all()) if alerts else {}
    stories = alert_stories(session, alerts, language=page_language())
    rows = [
        AlertRow(
            alert=a,
            participant=participants.get(a.participant_id),
            zone=zones.get(a.site_id, "UTC"),  # no site: an alert about the whole system
            kind=str(ALERT_KIND_LABELS.get(a.kind, a.kind.replace("_", " "))),
            summary=stories[a.id].summary,
            words=stories[a.id].words,
            reply=stories[a.id].reply,
            acknowledged=stories[a.id].acknowledged,
            age=now - a.opened_at,
            remaining=a.deadline_at - now if a.deadline_at and a.state != AlertState.RESOLVED.value else None,
            acknowledged_by=staff_text(a.acknowledged_by, staff_emails),
            acknowledged_via=acknowledged_via(a),
            resolved_by=staff_text(a.resolved_by, staff_emails),
            pages=page_rounds(session, a, vault=get_vault()),
        )
        for a in alerts
    ]
    return rows


def alert_forms(alerts: list[Alert], *, back: str, submitted: dict | None = None) -> dict[int, dict]:
    """Acknowledge and resolve forms for each alert, prefixed by its id so labels and ids stay unique."""
    forms = {}
    for a in alerts:
        forms[a.id] = {
            "ack": AcknowledgeForm(prefix=f"ack{a.id}", formdata=None, next=back),
            "resolve": ResolveForm(prefix=f"resolve{a.id}", formdata=None, next=back),
        }
    for (alert_id, kind), form in (submitted or {}).items():
        if alert_id in forms:
            forms[alert_id][kind] = form
    return forms


def queue(session, *, who: Principal, resolved: bool) -> list[Alert]:
    """Unresolved alerts (high priority, then nearest deadline, then oldest), or the latest resolved ones."""
    query = select(Alert).where(scope.site_filter(who, Alert.site_id))
    if resolved:
        query = (
            query.where(Alert.state == AlertState.RESOLVED.value)
            .order_by(Alert.resolved_at.desc())
            .limit(RESOLVED_SHOWN)
        )
    else:
        query = query.where(Alert.state != AlertState.RESOLVED.value).order_by(
            case((Alert.priority == "high", 0), else_=1),
            case((Alert.deadline_at.is_(None), 1), else_=0),
            Alert.deadline_at,
            Alert.opened_at,
            Alert.id,
        )
    return list(session.exec(query).all())


def _problems(submitted: dict | None) -> list[str]:
    """What went wrong with a failed form, for the summary at the top (its alert may have left the queue)."""
    problems = []
    for form in (submitted or {}).values():
        problems += list(form.form_errors) + [error for field in form for error in field.errors]
    return problems


def render_queue(*, submitted: dict | None = None, status: int = 200):
    """The queue page; `submitted` holds a form that failed, shown with its errors."""
    session = get_session()
    now = utcnow()
    show_resolved = request.args.get("show") == "resolved"
    alerts = queue(session, who=principal(), resolved=show_resolved)
    back = url_for("pages.alerts", show="resolved") if show_resolved else url_for("pages.alerts")
    return render_template(
        "alerts.html",
        rows=alert_rows(session, alerts, now=now),
        forms=alert_forms(alerts, back=back, submitted=submitted),
        show_resolved=show_resolved,
        now=now,
        failed=_problems(submitted),
    ), status


@bp.get("/alerts")
@staff_page()
def alerts():
    """Show the alert queue (open and acknowledged), or the latest resolved alerts."""
    return render_queue()


def _alert_action(alert_id: int, kind: str, form, change):
    alert = visible_alert_or_404(alert_id)
    if not form.validate_on_submit():
        if csrf_refused(form):
            abort(400)
        return render_queue(submitted={(alert.id, kind): form}, status=422)
    try:
        message = change(alert, utcnow())
    except DomainError as exc:
        get_session().rollback()
        message = domain_error_words(exc.message)
        if kind == "resolve" and exc.field == "note":
            form.note.errors = [*form.note.errors, message]
        else:
            form.form_errors.append(message)
        return render_queue(submitted={(alert.id, kind): form}, status=422)
    flash(message, "success")
    return redirect(safe_next(form.next.data, url_for("pages.alerts")), code=303)


@bp.post(f"/alerts/<{ID}:alert_id>/acknowledge")
@staff_page()
def acknowledge_alert(alert_id: int):
    """Acknowledge an open alert (someone is on it)."""
    form = AcknowledgeForm(prefix=f"ack{alert_id}")

    def change(alert: Alert, now: datetime) -> str:
        alert_ops.acknowledge_alert(get_session(), alert=alert, actor=principal().actor, now=now)
        return _("Alert acknowledged: %(kind)s.", kind=ALERT_KIND_LABELS.get(alert.kind, alert.kind))

    return _alert_action(alert_id, "ack", form, change)


@bp.post(f"/alerts/<{ID}:alert_id>/resolve")
@staff_page()
def resolve_alert(alert_id: int):
    """Resolve an alert with a note saying what was done."""
    form = ResolveForm(prefix=f"resolve{alert_id}")

    def change(alert: Alert, now: datetime) -> str:
        alert_ops.resolve_alert(get_session(), alert=alert, note=form.note.data, actor=principal().actor, now=now)
        return _("Alert resolved: %(kind)s.", kind=ALERT_KIND_LABELS.get(alert.kind, alert.kind))

    return _alert_action(alert_id, "resolve", form, change)
