"""A measuring fixture for bench/b2_ceiling.py, not the product: the real app with `/sms/inbound` cut down
to what any webhook must do before answering (check the signature, store the raw row once per MessageSid).

It answers empty TwiML and acts on nothing, so it shows the most a store-first, act-later design could reach
under the same gunicorn configuration. Run by b2_ceiling.py as `store_only_app:app`.
"""

import json

from flask import Response, request
from sqlalchemy.dialects.postgresql import insert

from backend.db import get_database
from backend.extensions import get_vault
from backend.web.webhooks import twilio_signed
from notifications.models import InboundMessage
from schedules.dbtypes import utcnow
from schedules.phones import normalize_e164
from wsgi import app

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
STORE = insert(InboundMessage.__table__).on_conflict_do_nothing(index_elements=["message_sid"])
engine = get_database(app).engine


@twilio_signed
def store_only():
    """Signature checked by the decorator; one INSERT in its own transaction; empty TwiML."""
    form = {k: v.replace("\x00", "") for k, v in request.form.items()}
    params = {k: v for k, v in form.items() if k not in ("From", "To", "Body")}
    with engine.begin() as conn:
        conn.execute(
            STORE,
            {
                "message_sid": form["MessageSid"],
                "from_hash": get_vault().lookup_hash(normalize_e164(form["From"])),
                "body": form.get("Body", ""),
                "params_json": json.dumps(params, ensure_ascii=False),
                "received_at": utcnow(),
                "intent": "",
                "outcome": "",
                "needs_review": False,
                "reply_body": "",
            },
        )
    return Response(EMPTY_TWIML, mimetype="application/xml")


app.view_functions["webhooks.inbound"] = store_only
