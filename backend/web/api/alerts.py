"""The nurse alert queue."""

from __future__ import annotations

from backend.web.api.errors import error_responses

from datetime import datetime

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import case
from sqlmodel import Session, select

from backend.web.api.symptom_schemas import AlertQuerySchema, AlertResolveSchema, AlertSchema
from backend.identity.principal import UNMASKED, Principal
from backend.web.auth import current_principal, require_staff
from backend.db import get_session
from backend.identity import scope
from backend.operations.alerts import acknowledge_alert, resolve_alert
from schedules.alerts import HIGH
from schedules.dbtypes import utcnow
from schedules.models import Alert, AlertKind, AlertState, Participant, Site

# Ids are 32-bit columns: a larger number in the path is simply not found (rather than a database overflow).
ID = "int(max=2147483647)"
blp = Blueprint("alerts", __name__, url_prefix="/api/v1", description="The nurse alert queue.")

# The masked assessor sees adverse events; every other kind tells of dosing or messaging, which would unmask the arm.
ASSESSOR_KINDS = (AlertKind.ADVERSE_EVENT.value, AlertKind.SERIOUS_AE.value)
UNRESOLVED = (AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value)


_errors = error_responses(blp)


def alert_view(alert: Alert, *, study_code: str | None, site_code: str, now: datetime) -> dict:
    """An alert as the API shows it, with its age and the time left to its deadline."""
    return {
        "id": alert.id, "kind": alert.kind, "priority": alert.priority, "state": alert.state, "site": site_code,
        "participant_id": alert.participant_id, "study_code": study_code, "summary": alert.summary, "annotation": alert.annotation,
        "ref_type": alert.ref_type, "ref_id": alert.ref_id, "opened_at": alert.opened_at,
        "age_seconds": max(0, int((now - alert.opened_at).total_seconds())), "deadline_at": alert.deadline_at,
        "seconds_to_deadline": int((alert.deadline_at - now).total_seconds()) if alert.deadline_at else None,
        "acknowledged_at": alert.acknowledged_at, "acknowledged_by": alert.acknowledged_by, "resolved_at": alert.resolved_at,
        "resolved_by": alert.resolved_by, "resolution_note": alert.resolution_note,
    }


def _one(session: Session, alert: Alert) -> dict:
    participant = session.get(Participant, alert.participant_id) if alert.participant_id else None
    return alert_view(alert, study_code=participant.study_code if participant else None, site_code=session.get(Site, alert.site_id).code,
                      now=utcnow())


def _visible_alert(session: Session, principal: Principal, alert_id: int) -> Alert:
    """The alert if the caller may see it: 404 outside their site, 403 for the assessor on a dosing alert."""
    alert = session.get(Alert, alert_id)
    if alert is None or not principal.can_see_site(alert.site_id):
        abort(404, message="no such alert")
    if principal.masked and alert.kind not in ASSESSOR_KINDS:
        abort(403, message="the masked assessor sees adverse-event alerts only")
    return alert


@blp.route("/alerts")
class AlertList(MethodView):
    @require_staff()
    @blp.arguments(AlertQuerySchema, location="query")
    @blp.response(200, AlertSchema(many=True))
    @_errors(401, 403, 422)
    def get(self, args):
        """The caller's site queue, high priority first, then oldest first (unresolved alerts unless `state` says otherwise)."""
        principal = current_principal()
        session = get_session()
        kinds = args["kind"]
        if principal.masked:
            if kinds and set(kinds) - set(ASSESSOR_KINDS):
                abort(403, message="the masked assessor sees adverse-event alerts only")
            kinds = kinds or list(ASSESSOR_KINDS)
        query = (select(Alert, Participant.study_code, Site.code).join(Site, Alert.site_id == Site.id)
                 .outerjoin(Participant, Alert.participant_id == Participant.id)
                 .where(Alert.state.in_(args["state"] or UNRESOLVED)))
        query = query.where(scope.site_filter(principal, Alert.site_id))
        if args["site"]:
            query = query.where(Site.code == args["site"])
        if kinds:
            query = query.where(Alert.kind.in_(kinds))
        if args["priority"]:
            query = query.where(Alert.priority == args["priority"])
        query = query.order_by(case((Alert.priority == HIGH, 0), else_=1), Alert.opened_at, Alert.id).limit(args["limit"])
        now = utcnow()
        return [alert_view(alert, study_code=code, site_code=site_code, now=now) for alert, code, site_code in session.exec(query).all()]


@blp.route(f"/alerts/<{ID}:alert_id>")
class AlertDetail(MethodView):
    @require_staff()
    @blp.response(200, AlertSchema)
    @_errors(401, 403, 404)
    def get(self, alert_id):
        """One alert."""
        session = get_session()
        return _one(session, _visible_alert(session, current_principal(), alert_id))


@blp.route(f"/alerts/<{ID}:alert_id>/acknowledge")
class AlertAcknowledge(MethodView):
    @require_staff(*UNMASKED)
    @blp.response(200, AlertSchema)
    @_errors(401, 403, 404, 409)
    def post(self, alert_id):
        """Mark an open alert as being worked on (who and when are recorded)."""
        principal = current_principal()
        session = get_session()
        alert = acknowledge_alert(session, alert=_visible_alert(session, principal, alert_id), actor=principal.actor, now=utcnow())
        return _one(session, alert)


@blp.route(f"/alerts/<{ID}:alert_id>/resolve")
class AlertResolve(MethodView):
    @require_staff(*UNMASKED)
    @blp.arguments(AlertResolveSchema)
    @blp.response(200, AlertSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, alert_id):
        """Close an alert with a note saying what was done."""
        principal = current_principal()
        session = get_session()
        alert = resolve_alert(session, alert=_visible_alert(session, principal, alert_id), note=data["note"], actor=principal.actor, now=utcnow())
        return _one(session, alert)
