"""Staff sign-in for the API: exchange email and password for an expiring bearer token."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from backend.db import get_session
from backend.extensions import limiter
from backend.identity.staff import (
    authenticate_staff,
    issue_staff_token,
    revoke_staff_token,
)
from backend.web.api.schemas import ApiErrorSchema, TokenRequestSchema, TokenSchema
from backend.web.auth import bearer_token, public, require_staff
from schedules.dbtypes import utcnow

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Staff tokens.")


@blp.route("/token")
class Token(MethodView):
    decorators = [limiter.limit("10 per minute")]

    @blp.arguments(TokenRequestSchema)
    @blp.response(201, TokenSchema)
    @blp.alt_response(401, schema=ApiErrorSchema, description="wrong email or password")
    @blp.alt_response(429, schema=ApiErrorSchema, description="too many attempts")
    @blp.doc(security=[])
    @public
    def post(self, data):
        """Exchange staff email and password for a bearer token (shown once)."""
        session = get_session()
        staff = authenticate_staff(session, email=data["email"], password=data["password"])
        if staff is None:
            abort(401, message="wrong email or password")
        now = utcnow()
        ttl = timedelta(hours=current_app.config["STAFF_TOKEN_TTL_HOURS"])
        token, row = issue_staff_token(session, staff=staff, now=now, ttl=ttl, label="api")
        return {"token": token, "expires_at": row.expires_at, "role": staff.role}


@blp.route("/token/revoke")
class Revoke(MethodView):
    @blp.response(204)
    @blp.alt_response(401, schema=ApiErrorSchema, description="not authenticated")
    @require_staff()
    def post(self):
        """Revoke the token used for this request."""
        revoke_staff_token(get_session(), token=bearer_token(), now=utcnow())
