"""Participant app activation and tokens: staff issue one-time codes, the app exchanges and refreshes them."""

from __future__ import annotations

from backend.web.api.errors import error_responses

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from backend.identity import app_tokens
from backend.web.errors import status_of
from backend.web.api.app_schemas import (
    MAX_ID,
    ActivateSchema,
    ActivationCodeRequestSchema,
    ActivationCodeSchema,
    DeviceRevokeResultSchema,
    DeviceRevokeSchema,
    DeviceSchema,
    RefreshSchema,
    TokenPairSchema,
)
from backend.identity.principal import UNMASKED
from backend.web.auth import current_principal, require_staff, visible_participant
from backend.db import get_database, get_session
from backend.extensions import limiter
from schedules.dbtypes import utcnow
from schedules.participants import messaging_allowed

blp = Blueprint("app_auth", __name__, url_prefix="/api/v1", description="Participant app activation and tokens.")

ERRORS = {400: "malformed request", 401: "not authenticated, or the code/token is not valid", 403: "not allowed",
          404: "not found or not visible", 409: "conflicts with current state", 422: "invalid input", 429: "too many attempts; wait a minute"}


_errors = error_responses(blp, ERRORS)


def _refuse(exc: app_tokens.Refused):
    """Answer a refused sign-in; what must outlive the refusal (a failed guess, a revoked family) is
    written in its own transaction, after the request's own work is rolled back (SQLite has one writer)."""
    get_session().rollback()
    if exc.consequence is not None:
        with get_database().session() as session:
            exc.consequence(session)
    abort(status_of(exc), message=exc.message)


@blp.route(f"/participants/<int(max={MAX_ID}):participant_id>/activation-codes")
class ActivationCodes(MethodView):
    @blp.arguments(ActivationCodeRequestSchema)
    @blp.response(201, ActivationCodeSchema)
    @_errors(401, 403, 404, 409, 422)
    @require_staff(*UNMASKED)
    def post(self, data, participant_id):
        """Create a one-time app activation code (shown once, valid 72 h); an unused older code stops working."""
        principal = current_principal()
        session = get_session()
        participant = visible_participant(participant_id, principal)
        now = utcnow()
        if data["send_sms"] and not messaging_allowed(participant, now=now):
            abort(409, message="send_sms: this participant cannot be sent SMS (opted out, no consent, or no longer in the study)",
                  errors={"json": {"send_sms": ["participant cannot be sent SMS"]}})
        code, row = app_tokens.create_activation_code(session, participant=participant, actor=principal.actor, now=now)
        if data["send_sms"]:
            app_tokens.queue_activation_sms(session, participant=participant, code=code, row=row, now=now)
        return {"participant_id": participant.id, "code": code, "expires_at": row.expires_at, "sent_by_sms": row.sent_by_sms}


@blp.route(f"/participants/<int(max={MAX_ID}):participant_id>/devices")
class Devices(MethodView):
    @blp.response(200, DeviceSchema(many=True))
    @_errors(401, 403, 404)
    @require_staff(*UNMASKED)
    def get(self, participant_id):
        """List the participant's app devices, newest first, signed-out ones included."""
        session = get_session()
        participant = visible_participant(participant_id)
        return app_tokens.devices_of(session, participant.id)


@blp.route(f"/participants/<int(max={MAX_ID}):participant_id>/devices/revoke")
class DevicesRevoke(MethodView):
    @blp.arguments(DeviceRevokeSchema)
    @blp.response(200, DeviceRevokeResultSchema)
    @_errors(401, 403, 404, 422)
    @require_staff(*UNMASKED)
    def post(self, data, participant_id):
        """Sign out every app device of the participant at once, and withdraw unused activation codes (reason required)."""
        principal = current_principal()
        session = get_session()
        participant = visible_participant(participant_id, principal)
        devices, codes = app_tokens.revoke_participant_devices(session, participant_id=participant.id, reason=data["reason"],
                                                               now=utcnow(), actor=principal.actor)
        return {"devices_revoked": devices, "codes_revoked": codes}


@blp.route("/app/activate")
class Activate(MethodView):
    decorators = [limiter.limit("5 per minute")]

    @blp.arguments(ActivateSchema)
    @blp.response(201, TokenPairSchema)
    @_errors(401, 403, 429)
    @blp.doc(security=[])
    def post(self, data):
        """Exchange an activation code for an access token (15 min) and a refresh token; the code is then spent.

        Five wrong tries of a code make it stop working. Send an Idempotency-Key: if the answer is
        lost on the way, a retry with the same key returns the same tokens."""
        try:
            pair = app_tokens.activate(get_session(), code=data["code"], device_name=data["device_name"], now=utcnow())
        except app_tokens.Refused as exc:
            _refuse(exc)
        return pair.as_dict()


@blp.route("/app/token/refresh")
class Refresh(MethodView):
    decorators = [limiter.limit("30 per minute")]

    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenPairSchema)
    @_errors(401, 403, 429)
    @blp.doc(security=[])
    def post(self, data):
        """Get a new token pair; the refresh token sent is spent, and sending a spent one again signs the device out.

        Send an Idempotency-Key: a retry after a lost answer then gets the same new pair instead of
        signing the device out."""
        try:
            pair = app_tokens.refresh(get_session(), refresh_token=data["refresh_token"], now=utcnow())
        except app_tokens.Refused as exc:
            _refuse(exc)
        return pair.as_dict()


@blp.route("/app/sign-out")
class SignOut(MethodView):
    @blp.response(204)
    @_errors(401, 403)
    def post(self):
        """Sign this device out: its access and refresh tokens stop working."""
        principal = current_principal()
        if principal.kind != "participant":
            abort(403, message="this endpoint is for the participant app")
        session = get_session()
        token = request.headers["Authorization"][7:].strip()
        device = app_tokens.device_of_access_token(session, token)
        if device is not None:
            app_tokens.revoke_device(session, device=device, reason="signed out in the app", now=utcnow(), actor=principal.actor)
        return None
