"""Operations endpoints: liveness, readiness (database, migrations, phone keys), Prometheus metrics."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from backend.config import settings_of
from backend.db import get_session
from backend.db_roles import audit_privilege_problem
from backend.extensions import get_vault, limiter
from backend.key_check import keys_problem
from backend.runtime.job_runs import job_health, outbox_backlog
from backend.runtime.jobs import WATCHED_JOBS
from backend.runtime.metrics import JobCollector, OutboxCollector, render_latest
from schedules.dbtypes import utcnow

bp = Blueprint("ops", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
@limiter.exempt
def healthz():
    """Say the process is alive (no database call: a slow database must not get us restarted)."""
    return jsonify(status="ok")


def _head_revision(app: Flask) -> str | None:
    # The migration scripts ship with the code, so the head is fixed for the life of the process.
    if "migrations_head" not in app.extensions:
        from alembic.script import ScriptDirectory

        from backend.migrate import alembic_config

        app.extensions["migrations_head"] = ScriptDirectory.from_config(alembic_config(app)).get_current_head()
    return app.extensions["migrations_head"]


@bp.get("/readyz")
@limiter.exempt
def readyz():
    """Say whether the database answers, the schema is at the newest migration, the phone keys open the data and
    (production) the app's database role cannot rewrite the audit trail (503 with the reason if not)."""
    from alembic.runtime.migration import MigrationContext

    app = current_app._get_current_object()
    try:
        head = _head_revision(app)
        # The request's session: in tests it shares the test's transaction, in production it is a pooled connection.
        conn = get_session().connection()
        conn.execute(text("SELECT 1"))
        current = MigrationContext.configure(conn).get_current_revision()
    except Exception as exc:  # readiness must answer, not crash; the class name says enough, the text may hold the URL
        log.warning("not ready: database unreachable (%s)", type(exc).__name__)
        return jsonify(status="unavailable", database=f"unreachable: {type(exc).__name__}"), 503
    if current != head:
        reason = (
            f"database at {current or 'an empty schema'}, this release expects {head}: "
            "run `flask --app wsgi db upgrade`"
        )
        return jsonify(status="unavailable", database="ok", migrations=reason), 503
    migrations = f"current ({head})"
    # Other phone keys leave the database answering and every participant unreachable: not ready.
    try:
        problem = keys_problem(conn, get_vault(app))
        role_problem = audit_privilege_problem(conn) if settings_of(app).is_production else None
    except Exception as exc:  # as above: answer, do not crash
        log.warning("not ready: database unreachable (%s)", type(exc).__name__)
        return jsonify(status="unavailable", database=f"unreachable: {type(exc).__name__}"), 503
    if problem:
        log.warning("not ready: %s", problem)
        return jsonify(status="unavailable", database="ok", migrations=migrations, keys=problem), 503
    if role_problem:
        log.warning("not ready: %s", role_problem)
        return jsonify(status="unavailable", database="ok", migrations=migrations, keys="ok", role=role_problem), 503
    return jsonify(status="ok", database="ok", migrations=migrations, keys="ok")


def _read_outbox():
    now = utcnow()
    backlog = outbox_backlog(get_session(), now=now)
    return backlog.due, backlog.oldest_due_at, backlog.sending, now


def _read_jobs():
    return job_health(get_session(), WATCHED_JOBS, now=utcnow())


@bp.get("/metrics")
@limiter.exempt
def metrics():
    """Prometheus metrics of every process sharing PROMETHEUS_MULTIPROC_DIR, plus the outbox and job runs read now."""
    return Response(
        render_latest([OutboxCollector(_read_outbox), JobCollector(_read_jobs)]), mimetype=CONTENT_TYPE_LATEST
    )


def init_app(app: Flask) -> None:
    """Register the operations routes."""
    app.register_blueprint(bp)
