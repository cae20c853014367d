"""Twilio webhooks: inbound messages and delivery status, both signature-checked."""

from __future__ import annotations

import logging
from functools import wraps

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from backend.config import settings_of
from backend.db import get_session
from backend.extensions import get_vault, limiter
from backend.operations.delivery import record_delivery_status
from backend.operations.sms_replies import handle_inbound
from backend.runtime.metrics import WEBHOOK_LATENCY
from backend.web.paths import MAX_ID
from notifications.models import InboundMessage
from schedules.dbtypes import utcnow

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)


def signed_url() -> str:
    """The URL Twilio signed: our public base URL (not what a proxy rewrote it to) plus path and query."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    query = request.query_string.decode()
    return f"{base}{request.path}" + (f"?{query}" if query else "")


def twilio_signed(view):
    """403 and nothing written unless X-Twilio-Signature matches the auth token."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        token = settings_of(current_app).TWILIO_AUTH_TOKEN
        signature = request.headers.get("X-Twilio-Signature", "")
        # Switching the check off is for local experiments only; production always checks.
        if settings_of(current_app).VALIDATE_TWILIO_SIGNATURE or settings_of(current_app).is_production:
            if (
                not token
                or not signature
                or not RequestValidator(token).validate(signed_url(), request.form.to_dict(flat=True), signature)
            ):
                log.warning("refused webhook %s: bad or missing signature", request.path)
                g.db_rollback = True
                abort(403)
        return view(*args, **kwargs)

    return wrapper


# A Twilio message id fits the column it is stored in; a longer one cannot be Twilio's (and would not fit).
MAX_SID = InboundMessage.__table__.c.message_sid.type.length


def _bad_sid(sid: str) -> Response | None:
    """A 400 for a MessageSid that cannot be Twilio's, else None."""
    if len(sid) > MAX_SID:
        return Response(f"MessageSid is not a Twilio message id (longer than {MAX_SID} characters)", status=400)
    return None


def _twiml(text: str | None) -> Response:
    reply = MessagingResponse()
    if text:
        reply.message(text)
    return Response(str(reply), mimetype="application/xml")


@bp.post("/sms/inbound")
@limiter.exempt
@twilio_signed
def inbound():
    """Take an inbound SMS: store it raw, act on it once per MessageSid, reply with TwiML."""
    with WEBHOOK_LATENCY.labels("inbound").time():
        # NUL cannot be stored in PostgreSQL text and never carries meaning in an SMS.
        form = {k: v.replace("\x00", "") for k, v in request.form.items()}
        sid = form.get("MessageSid") or form.get("SmsSid")
        if not sid or not form.get("From"):
            return Response("MessageSid and From are required", status=400)
        if refused := _bad_sid(sid):
            return refused
        params = {k: v for k, v in form.items() if k not in ("From", "To", "Body")}
        result = handle_inbound(
            get_session(),
            message_sid=sid,
            from_number=form["From"],
            body=form.get("Body", ""),
            params=params,
            vault=get_vault(),
            now=utcnow(),
            keyword_replies=settings_of(current_app).SMS_KEYWORD_REPLIES,
        )
        return _twiml(result.reply)


@bp.post("/sms/status")
@limiter.exempt
@twilio_signed
def status():
    """Take a delivery-status callback; repeated or late ones never move a message backwards."""
    with WEBHOOK_LATENCY.labels("status").time():
        form = request.form
        sid = form.get("MessageSid") or form.get("SmsSid")
        if not sid or not form.get("MessageStatus"):
            return Response("MessageSid and MessageStatus are required", status=400)
        if refused := _bad_sid(sid):
            return refused
        code = form.get("ErrorCode")
        outbox = request.args.get("outbox", "")  # ours, in the signed URL; anything else is ignored
        record_delivery_status(
            get_session(),
            message_sid=sid,
            status=form["MessageStatus"],
            error_code=_small_int(code),
            now=utcnow(),
            outbox_id=_small_int(outbox),
        )
        return Response(status=204)


def _small_int(text: str | None) -> int | None:
    """An ASCII number that fits the 32-bit columns it is stored in or looked up by, else None
    ('²' is a digit to str.isdigit, not to int; a larger number would overflow PostgreSQL's INTEGER)."""
    if not text or len(text) > 10 or not (text.isascii() and text.isdigit()):
        return None
    return int(text) if int(text) <= MAX_ID else None


def init_app(app: Flask) -> None:
    """Register the webhook routes (CSRF does not apply: Twilio signs them instead)."""
    app.register_blueprint(bp)
