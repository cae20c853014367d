"""The nurse alert queue."""

from __future__ import annotations

from flask import g, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import case
from sqlmodel import Session, select

from backend.db import get_session
from backend.identity import scope
from backend.identity.principal import ASSESSOR_ALERT_KINDS, UNMASKED, Principal
from backend.operations.alerts import acknowledge_alert, resolve_alert
from backend.web.api.errors import error_responses
from backend.web.api.symptom_schemas import (
    AlertQuerySchema,
    AlertResolveSchema,
    AlertSchema,
    MaskedAlertSchema,
)
from backend.web.auth import current_principal, require_staff
from backend.web.paths import ID
from schedules.dbtypes import utcnow
from schedules.models import HIGH, Alert, AlertState, Dose, Participant, Site

blp = Blueprint("alerts", __name__, url_prefix="/api/v1", description="The nurse alert queue.")

UNRESOLVED = (AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value)


_errors = error_responses(blp)


def _load_references(session: Session, alerts: list[Alert]) -> None:
    """Load the alerts' participants and sites in two queries, so dumping them reads no more rows."""
    participant_ids = {a.participant_id for a in alerts if a.participant_id}
    participants = (
        session.exec(select(Participant).where(Participant.id.in_(participant_ids))).all() if participant_ids else []
    )
    site_ids = {a.site_id for a in alerts if a.site_id is not None}
    sites = session.exec(select(Site).where(Site.id.in_(site_ids))).all() if site_ids else []
    dose_ids = {a.ref_id for a in alerts if a.ref_type == "dose" and a.ref_id is not None}
    doses = session.exec(select(Dose).where(Dose.id.in_(dose_ids))).all() if dose_ids else []
    # The session's identity map holds rows weakly: keep them until the response is dumped.
    g.alert_references = (participants, sites, doses)


def _visible_alert(session: Session, principal: Principal, alert_id: int) -> Alert:
    """The alert if the caller may see it: 404 outside their site, 403 for the assessor on a dosing alert."""
    alert = session.get(Alert, alert_id)
    if alert is None or not principal.can_see_site(alert.site_id):
        abort(404, message="no such alert")
    if principal.masked and alert.kind not in ASSESSOR_ALERT_KINDS:
        abort(403, message="the masked assessor sees adverse-event alerts only")
    return alert


def _as_seen_by(principal: Principal, alerts, *, many: bool):
    """The masked assessor's alerts are dumped by their own schema (a Response passes AlertSchema untouched)."""
    return jsonify(MaskedAlertSchema(many=many).dump(alerts)) if principal.masked else alerts


@blp.route("/alerts")
class AlertList(MethodView):
    @require_staff(masked_safe=True)
    @blp.arguments(AlertQuerySchema, location="query")
    @blp.response(200, AlertSchema(many=True))
    @_errors(401, 403, 422)
    def get(self, args):
        """The caller's site queue, high priority first, then oldest (unresolved only unless `state` says otherwise)."""
        principal = current_principal()
        session = get_session()
        kinds = args["kind"]
        if principal.masked:
            if kinds and set(kinds) - set(ASSESSOR_ALERT_KINDS):
                abort(403, message="the masked assessor sees adverse-event alerts only")
            kinds = kinds or list(ASSESSOR_ALERT_KINDS)
        # Outer: an alert without a site (about the whole system) is in an admin's queue too.
        query = select(Alert).outerjoin(Site, Alert.site_id == Site.id)
        query = query.where(Alert.state.in_(args["state"] or UNRESOLVED))
        query = query.where(scope.site_filter(principal, Alert.site_id))
        if args["site"]:
            query = query.where(Site.code == args["site"])
        if kinds:
            query = query.where(Alert.kind.in_(kinds))
        if args["priority"]:
            query = query.where(Alert.priority == args["priority"])
        query = query.order_by(case((Alert.priority == HIGH, 0), else_=1), Alert.opened_at, Alert.id).limit(
            args["limit"]
        )
        alerts = list(session.exec(query).all())
        _load_references(session, alerts)
        return _as_seen_by(principal, alerts, many=True)


@blp.route(f"/alerts/<{ID}:alert_id>")
class AlertDetail(MethodView):
    @require_staff(masked_safe=True)
    @blp.response(200, AlertSchema)
    @_errors(401, 403, 404)
    def get(self, alert_id):
        """One alert."""
        session = get_session()
        principal = current_principal()
        return _as_seen_by(principal, _visible_alert(session, principal, alert_id), many=False)


@blp.route(f"/alerts/<{ID}:alert_id>/acknowledge")
class AlertAcknowledge(MethodView):
    @require_staff(*UNMASKED)
    @blp.response(200, AlertSchema)
    @_errors(401, 403, 404, 409)
    def post(self, alert_id):
        """Mark an open alert as being worked on (who and when are recorded)."""
        principal = current_principal()
        session = get_session()
        alert = acknowledge_alert(
            session, alert=_visible_alert(session, principal, alert_id), actor=principal.actor, now=utcnow()
        )
        return alert


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
        alert = resolve_alert(
            session,
            alert=_visible_alert(session, principal, alert_id),
            note=data["note"],
            actor=principal.actor,
            now=utcnow(),
        )
        return alert
