"""Participant app activation and tokens: staff issue one-time codes, the app exchanges and refreshes them."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from backend.db import get_session
from backend.extensions import limiter
from backend.identity import app_tokens
from backend.identity.principal import UNMASKED
from backend.operations import app_access as access
from backend.web.api.app_schemas import (
    ActivateSchema,
    ActivationCodeRequestSchema,
    ActivationCodeSchema,
    DeviceRevokeResultSchema,
    DeviceRevokeSchema,
    DeviceSchema,
    RefreshSchema,
    TokenPairSchema,
)
from backend.web.api.errors import error_responses
from backend.web.auth import (
    bearer_token,
    current_principal,
    public,
    refuse_sign_in,
    require_participant,
    require_staff,
    visible_participant,
)
from backend.web.paths import ID
from schedules.dbtypes import utcnow

blp = Blueprint("app_auth", __name__, url_prefix="/api/v1", description="Participant app activation and tokens.")

ERRORS = {
    400: "malformed request",
    401: "not authenticated, or the code/token is not valid",
    403: "not allowed",
    404: "not found or not visible",
    409: "conflicts with current state",
    422: "invalid input",
    429: "too many attempts; wait a minute",
}


_errors = error_responses(blp, ERRORS)


@blp.route(f"/participants/<{ID}:participant_id>/activation-codes")
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
        issued = access.issue_activation_code(
            session, participant=participant, send_sms=data["send_sms"], actor=principal.actor, now=utcnow()
        )
        return issued


@blp.route(f"/participants/<{ID}:participant_id>/devices")
class Devices(MethodView):
    @blp.response(200, DeviceSchema(many=True))
    @_errors(401, 403, 404)
    @require_staff(*UNMASKED)
    def get(self, participant_id):
        """List the participant's app devices, newest first, signed-out ones included."""
        session = get_session()
        participant = visible_participant(participant_id)
        return app_tokens.devices_of(session, participant.id)


@blp.route(f"/participants/<{ID}:participant_id>/devices/revoke")
class DevicesRevoke(MethodView):
    @blp.arguments(DeviceRevokeSchema)
    @blp.response(200, DeviceRevokeResultSchema)
    @_errors(401, 403, 404, 422)
    @require_staff(*UNMASKED)
    def post(self, data, participant_id):
        """Sign out all the participant's app devices at once and withdraw unused activation codes (reason required)."""
        principal = current_principal()
        session = get_session()
        participant = visible_participant(participant_id, principal)
        devices, codes = access.sign_out_all_devices(
            session, participant=participant, reason=data["reason"], now=utcnow(), actor=principal.actor
        )
        return {"devices_revoked": devices, "codes_revoked": codes}


@blp.route("/app/activate")
class Activate(MethodView):
    decorators = [limiter.limit("5 per minute")]

    @blp.arguments(ActivateSchema)
    @blp.response(201, TokenPairSchema)
    @_errors(401, 403, 429)
    @blp.doc(security=[])
    @public
    def post(self, data):
        """Exchange an activation code for an access token (15 min) and a refresh token; the code is then spent.

        Five wrong tries of a code make it stop working. Send an Idempotency-Key: if the answer is
        lost on the way, a retry with the same key returns the same tokens."""
        try:
            pair = access.activate_app(get_session(), code=data["code"], device_name=data["device_name"], now=utcnow())
        except app_tokens.Refused as exc:
            refuse_sign_in(exc)
        return pair


@blp.route("/app/token/refresh")
class Refresh(MethodView):
    decorators = [limiter.limit("30 per minute")]

    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenPairSchema)
    @_errors(401, 403, 429)
    @blp.doc(security=[])
    @public
    def post(self, data):
        """Get a new token pair; the refresh token sent is spent, and sending a spent one again signs the device out.

        Send an Idempotency-Key: a retry after a lost answer then gets the same new pair instead of
        signing the device out."""
        try:
            pair = access.refresh_app_tokens(get_session(), refresh_token=data["refresh_token"], now=utcnow())
        except app_tokens.Refused as exc:
            refuse_sign_in(exc)
        return pair


@blp.route("/app/sign-out")
class SignOut(MethodView):
    @blp.response(204)
    @_errors(401, 403)
    @require_participant
    def post(self):
        """Sign this device out: its access and refresh tokens stop working."""
        principal = current_principal()
        access.sign_out_device(get_session(), access_token=bearer_token(), actor=principal.actor, now=utcnow())
        return None
