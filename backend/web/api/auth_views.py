"""Staff sign-in for the API: exchange email and password for an expiring bearer token."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.db import get_session
from backend.extensions import limiter
from backend.identity.app_tokens import Refused
from backend.identity.staff import (
    issue_staff_token,
    revoke_staff_token,
    sign_in_staff,
)
from backend.web.api.schemas import ApiErrorSchema, TokenRequestSchema, TokenSchema
from backend.web.auth import bearer_token, lockout_policy, public, refuse_sign_in, require_staff
from schedules.dbtypes import utcnow

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Staff tokens.")


@blp.route("/token")
class Token(MethodView):
    decorators = [limiter.limit("10 per minute")]

    @blp.arguments(TokenRequestSchema)
    @blp.response(201, TokenSchema)
    @blp.alt_response(401, schema=ApiErrorSchema, description="wrong email or password")
    @blp.alt_response(
        429,
        schema=ApiErrorSchema,
        description="too many attempts: from this address (a minute), or wrong passwords for this account from "
        "anywhere (locked for STAFF_LOCKOUT_MINUTES, whatever the password; Retry-After says how long)",
    )
    @blp.doc(security=[])
    @public
    def post(self, data):
        """Exchange staff email and password for a bearer token (shown once).

        STAFF_LOCKOUT_ATTEMPTS wrong passwords for one account within STAFF_LOCKOUT_MINUTES, from any
        address, lock its sign-in (pages and API) for STAFF_LOCKOUT_MINUTES: 429 with Retry-After."""
        session = get_session()
        now = utcnow()
        try:
            staff = sign_in_staff(
                session, email=data["email"], password=data["password"], now=now, policy=lockout_policy()
            )
        except Refused as exc:
            refuse_sign_in(exc)
        ttl = timedelta(hours=current_app.config["STAFF_TOKEN_TTL_HOURS"])
        token, row = issue_staff_token(session, staff=staff, now=now, ttl=ttl, label="api")
        return {"token": token, "expires_at": row.expires_at, "role": staff.role}


@blp.route("/token/revoke")
class Revoke(MethodView):
    @blp.response(204)
    @blp.alt_response(401, schema=ApiErrorSchema, description="not authenticated")
    @require_staff(masked_safe=True)
    def post(self):
        """Revoke the token used for this request."""
        revoke_staff_token(get_session(), token=bearer_token(), now=utcnow())
