"""Safe retries: every POST under /api/v1 accepts an `Idempotency-Key` header.

The first successful (2xx) response to a key is stored with the request's fingerprint, in the same
transaction as the change it reports, so either both commit or neither does. A retry with the same
key by the same principal gets that response back (header `Idempotent-Replayed: true`) and changes
nothing; the same key with a different request is refused with 422. Refused requests (4xx/5xx)
write nothing, so retrying them simply runs them again. Keys are scoped to the principal (not the
token), so a retry after refreshing an expired access token still matches. Stored bodies may hold
tokens: they are encrypted with a key derived from SECRET_KEY and the request itself, which the
database does not hold. Records expire after RECORD_TTL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta

from cryptography.fernet import Fernet
from flask import Flask, Response, current_app, g, jsonify, request
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from werkzeug.exceptions import HTTPException

from backend.identity.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
PREFIX = "/api/v1/"
RECORD_TTL = timedelta(hours=24)
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
KEY_RULE = "must be 1 to 255 visible ASCII characters (a UUID is a good choice)"

PARAMETER = {
    "description": (
        "Makes a retry safe: send a new unique value (e.g. a UUID) with each new POST "
        "and the same value when retrying it. "
        "A retry gets the first successful response back (with header `Idempotent-Replayed: true`) "
        "and changes nothing; "
        "the same key with a different request is refused with 422. Keys are remembered for 24 hours per caller."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[\x21-\x7e]+$"},
    "example": "5f0c2b9e-6f1d-4a57-9a63-2f7c1f2b8e41",
}


def _error(status: int, message: str, field: str = "") -> Response:
    from backend.web.errors import error_body

    body = error_body(status, message)
    if field:
        body["errors"] = {"headers": {field: [message]}}
    response = jsonify(body)
    response.status_code = status
    return response


def _canonical_body() -> bytes:
    """JSON bodies compare by content (key order and spacing do not matter); anything else byte for byte."""
    raw = request.get_data(cache=True)
    if request.is_json:
        try:
            return json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        except ValueError:
            pass
    return raw


def fingerprint(secret_key: str, method: str, path: str, query: str, body: bytes) -> str:
    """HMAC-SHA-256 (keyed with SECRET_KEY) of what makes two requests 'the same request'. Keyed, because a body
    may hold a password (a re-entered one at sign-off): a plain hash in the database could be guessed offline."""
    digest = hmac.new(secret_key.encode(), digestmod=hashlib.sha256)
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _cipher(secret_key: str, scope: str, key: str, body: bytes) -> Fernet:
    material = b"\0".join([b"idempotent-response", scope.encode(), key.encode(), body])
    return Fernet(base64.urlsafe_b64encode(hmac.new(secret_key.encode(), material, hashlib.sha256).digest()))


def _scope() -> str | None:
    """Who the key belongs to; None when the caller cannot be identified (the view will answer 401)."""
    if not request.headers.get("Authorization"):
        return "anonymous"
    from backend.web.auth import current_principal

    try:
        principal = current_principal()
    except HTTPException:
        return None
    return f"{principal.kind}:{principal.id}"


def find_record(session: Session, *, scope: str, key: str) -> IdempotencyRecord | None:
    """The stored record of a key for a principal, if any."""
    return session.exec(
        select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    ).first()


def purge_expired(session: Session, *, now: datetime) -> int:
    """Delete records older than their time to live (a job may call this daily)."""
    rows = session.exec(select(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)).all()
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)


def _before_request():
    if request.method != "POST" or not request.path.startswith(PREFIX) or HEADER not in request.headers:
        return None
    if request.url_rule is None or "\x00" in request.path:
        return None  # no such route (404/405 follows): nothing to remember
    key = request.headers[HEADER]
    if not KEY_PATTERN.match(key):
        return _error(422, f"{HEADER} {KEY_RULE}", HEADER)
    scope = _scope()
    if scope is None:
        return None
    from backend.db import get_session
    from schedules.dbtypes import utcnow

    session, now = get_session(), utcnow()
    body = _canonical_body()
    secret = current_app.config["SECRET_KEY"]
    fp = fingerprint(secret, request.method, request.path, request.query_string.decode("latin-1"), body)
    record = find_record(session, scope=scope, key=key)
    if record is not None and record.expires_at <= now:
        session.delete(record)
        session.flush()
        record = None
    if record is not None:
        if not hmac.compare_digest(record.fingerprint, fp):
            return _error(
                422, f"this {HEADER} was already used for a different request; use a new key for a new request", HEADER
            )
        if record.status_code is None:
            return _error(409, f"a request with this {HEADER} is still being processed; retry in a moment", HEADER)
        return _replay(record, _cipher(current_app.config["SECRET_KEY"], scope, key, body))
    record = IdempotencyRecord(
        scope=scope,
        key=key,
        fingerprint=fp,
        method=request.method,
        path=request.path[:300],
        created_at=now,
        expires_at=now + RECORD_TTL,
    )
    try:
        # Inserted before the work: a concurrent twin waits on the unique key instead of repeating the work.
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        return _error(
            409, f"a request with this {HEADER} is being processed or has just completed; retry in a moment", HEADER
        )
    g.idempotency = (record, _cipher(current_app.config["SECRET_KEY"], scope, key, body))
    return None


def _replay(record: IdempotencyRecord, cipher: Fernet) -> Response:
    body = cipher.decrypt(record.body_ciphertext.encode()) if record.body_ciphertext else b""
    response = Response(body, status=record.status_code, content_type=record.content_type or None)
    if record.location:
        response.headers["Location"] = record.location
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _after_request(response: Response) -> Response:
    state = g.pop("idempotency", None)
    if state is None or not (200 <= response.status_code < 300) or g.get("db_rollback"):
        return response  # a refused request rolls back, taking its pending record with it
    record, cipher = state
    from backend.db import get_session

    body = response.get_data()
    record.status_code = response.status_code
    record.content_type = (response.content_type or "")[:100]
    record.location = (response.headers.get("Location") or "")[:300]
    record.body_ciphertext = cipher.encrypt(body).decode() if body else ""
    get_session().add(record)
    return response


def _document(spec) -> None:
    """Describe the header on every POST under /api/v1, already registered or registered later."""
    spec.components.parameter("IdempotencyKey", "header", {"name": HEADER, **PARAMETER})
    ref = {"$ref": "#/components/parameters/IdempotencyKey"}

    def add(path: str, operations: dict, param) -> None:
        if path.startswith(PREFIX) and "post" in operations:
            params = operations["post"].setdefault("parameters", [])
            if ref not in params and "IdempotencyKey" not in params:
                params.append(param)

    # Operations already in the spec are final ($ref form); later ones get the component id, which
    # apispec resolves when it cleans them.
    for path, operations in getattr(spec, "_paths", {}).items():
        add(path, operations, ref)

    from apispec import BasePlugin

    class IdempotencyKeyPlugin(BasePlugin):
        def operation_helper(self, path=None, operations=None, **kwargs):
            add(path or "", operations or {}, "IdempotencyKey")

    plugin = IdempotencyKeyPlugin()
    plugin.init_spec(spec)
    spec.plugins.append(plugin)


def init_app(app: Flask) -> None:
    """Install the Idempotency-Key handling for POSTs under /api/v1 and document the header."""
    if app.extensions.get("idempotency"):
        return
    app.extensions["idempotency"] = True
    app.before_request(_before_request)
    # Registered after backend.db's commit hook, so it runs before it: the record joins the commit.
    app.after_request(_after_request)
    api = app.extensions.get("smorest_api")
    if api is not None:
        _document(api.spec)
