"""Staff sign-in for the API: exchange email and password for an expiring bearer token."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlmodel import select

from backend.api.schemas import ApiErrorSchema, TokenRequestSchema, TokenSchema
from backend.auth import current_principal, issue_staff_token, require_staff
from backend.db import get_session
from backend.models import Staff, StaffToken
from backend.security import token_digest, verify_password
from backend.services import limiter
from schedules.dbtypes import utcnow

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Staff tokens.")

# A fixed hash to verify against when the email is unknown, so timing does not reveal accounts.
_DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1hLGmt2dHdC0Y8cBnv6xK8m3pX9JkQ0yQf2m8Qm0tqk"


@blp.route("/token")
class Token(MethodView):
    decorators = [limiter.limit("10 per minute")]

    @blp.arguments(TokenRequestSchema)
    @blp.response(201, TokenSchema)
    @blp.alt_response(401, schema=ApiErrorSchema, description="wrong email or password")
    @blp.alt_response(429, schema=ApiErrorSchema, description="too many attempts")
    def post(self, data):
        """Exchange staff email and password for a bearer token (shown once)."""
        session = get_session()
        staff = session.exec(select(Staff).where(Staff.email == data["email"].strip().lower())).first()
        valid = verify_password(staff.password_hash if staff else _DUMMY_HASH, data["password"])
        if staff is None or not valid or not staff.active:
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
        from flask import request

        current_principal()
        token = request.headers["Authorization"][7:].strip()
        row = get_session().exec(select(StaffToken).where(StaffToken.token_hash == token_digest(token))).first()
        row.revoked_at = utcnow()
        get_session().add(row)
