"""The baseline for B2: a bare Flask endpoint at the same path, served by the same gunicorn config.

It parses the form and answers empty TwiML, as the real webhook does, and does nothing else:
no signature check, no database, no logging hook. Run by b2_inbound.py as `bare_app:app`.
"""

from flask import Flask, Response, request

app = Flask(__name__)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


@app.post("/sms/inbound")
def inbound():
    """Read the form, answer empty TwiML."""
    if not request.form.get("MessageSid"):
        return Response("MessageSid is required", status=400)
    return Response(EMPTY_TWIML, mimetype="application/xml")


@app.get("/healthz")
def healthz():
    """Alive."""
    return {"status": "ok"}
