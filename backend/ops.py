"""Operations endpoints: liveness, readiness (database and migrations), Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from backend.db import get_database, get_session
from backend.metrics import OUTBOX_DEPTH, OUTBOX_OLDEST_AGE
from backend.services import limiter
from notifications.models import OutboundMessage, OutboxStatus
from schedules.dbtypes import utcnow

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@limiter.exempt
def healthz():
    """Say the process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
@limiter.exempt
def readyz():
    """Say whether the database answers and the schema is at the newest migration."""
    from backend.migrate import is_current

    try:
        with get_database().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = is_current(current_app._get_current_object())
    except Exception as exc:  # readiness must answer, not crash
        return jsonify(status="unavailable", database=f"unreachable: {type(exc).__name__}"), 503
    if not current:
        return jsonify(status="unavailable", database="ok", migrations="behind: run `flask --app wsgi db upgrade`"), 503
    return jsonify(status="ok", database="ok", migrations="current")


@bp.get("/metrics")
@limiter.exempt
def metrics():
    """Prometheus metrics, with the outbox depth and oldest due age read now."""
    now = utcnow()
    session = get_session()
    due = session.execute(select(func.count(), func.min(OutboundMessage.next_attempt_at)).where(
        OutboundMessage.status == OutboxStatus.PLANNED.value, OutboundMessage.next_attempt_at <= now)).one()
    OUTBOX_DEPTH.set(due[0])
    oldest = due[1]
    if oldest is not None and oldest.tzinfo is None:
        from datetime import timezone

        oldest = oldest.replace(tzinfo=timezone.utc)
    OUTBOX_OLDEST_AGE.set((now - oldest).total_seconds() if oldest else 0)
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Register the operations routes."""
    app.register_blueprint(bp)
