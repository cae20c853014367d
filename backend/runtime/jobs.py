"""Scheduled jobs: each runs in its own session, commits once, and says what it did."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from flask import Flask

from backend.config import Settings, settings_of
from backend.db import get_database
from backend.extensions import get_sender, get_vault
from backend.runtime.job_runs import RunRecorder
from backend.runtime.metrics import (
    JOB_DURATION,
    MESSAGES_FAILED,
    MESSAGES_PLANNED,
    MESSAGES_SENT,
)
from notifications.chase import chase_serious_alerts
from notifications.crash_rule import recover_stuck
from notifications.digest import send_daily_digest
from notifications.dispatch import DispatchConfig, Dispatcher, DispatchReport
from notifications.housekeeping import expire_stale
from notifications.planning import plan_messages
from notifications.rate_limit import SendLimiter, build_send_limiter
from notifications.status import replay_raced_callbacks, undelivered_dose_ids
from schedules.dbtypes import utcnow
from schedules.deviations import detect_deviations
from schedules.missed import flag_missed_doses

log = logging.getLogger("backend.runtime.jobs")


@dataclass(frozen=True)
class JobSpec:
    """A job: its name, what it does, how often the scheduler runs it (seconds)."""

    name: str
    run: Callable[[Flask], str]
    every_seconds: int
    description: str


def dispatch_config(settings: Settings) -> DispatchConfig:
    """The dispatcher's configuration from Settings, the only home of its defaults (every caller builds it here)."""
    return DispatchConfig(
        batch_size=settings.DISPATCH_BATCH_SIZE,
        max_attempts=settings.DISPATCH_MAX_ATTEMPTS,
        concurrency=settings.DISPATCH_CONCURRENCY,
        sending_stale_after=timedelta(seconds=settings.SENDING_STALE_AFTER_SECONDS),
        status_callback_url=settings.PUBLIC_BASE_URL.rstrip("/") + "/sms/status"
        if settings.SMS_BACKEND == "twilio"
        else None,
    )


def rate_limiter(app: Flask) -> SendLimiter | None:
    """The send-rate cap: shared through Redis when configured, per process otherwise."""
    if "send_rate_limiter" not in app.extensions:
        settings = settings_of(app)
        app.extensions["send_rate_limiter"] = build_send_limiter(
            rate_per_second=settings.SEND_RATE_PER_SECOND,
            storage_uri=settings.RATELIMIT_STORAGE_URI,
            key=settings.SEND_RATE_KEY,
        )
    return app.extensions["send_rate_limiter"]


def _plan(app: Flask) -> str:
    # A session per chunk of participants, each committed: a large trial never sits in one transaction.
    report = plan_messages(get_database(app).session, now=utcnow())
    for purpose, n in report.by_purpose.items():
        MESSAGES_PLANNED.labels(purpose).inc(n)
    return str(report)


def _expire(app: Flask) -> str:
    with get_database(app).session() as session:
        recovered = recover_stuck(
            session, now=utcnow(), stale_after=dispatch_config(settings_of(app)).sending_stale_after
        )
        expired = expire_stale(session, now=utcnow())
        replayed = replay_raced_callbacks(session, now=utcnow())
    return (
        f"expired {expired} stale message(s), put back {recovered} left sending by a crash, "
        f"applied {replayed} status callback(s) that raced their send"
    )


def _send_pool(app: Flask) -> ThreadPoolExecutor:
    """One pool per process for its whole life: idle polls keep threads and provider connections."""
    if "send_pool" not in app.extensions:
        app.extensions["send_pool"] = ThreadPoolExecutor(
            max_workers=max(1, settings_of(app).DISPATCH_CONCURRENCY), thread_name_prefix="sms"
        )
    return app.extensions["send_pool"]


def _count_sends(report: DispatchReport) -> None:
    MESSAGES_SENT.inc(report.sent)
    for code, n in report.failed_codes.items():
        MESSAGES_FAILED.labels(str(code)).inc(n)
    if report.failed > sum(report.failed_codes.values()):
        MESSAGES_FAILED.labels("none").inc(report.failed - sum(report.failed_codes.values()))


def dispatcher(app: Flask) -> Dispatcher:
    """A dispatcher wired to the app's database, sender, send-rate cap and metrics."""
    config = dispatch_config(settings_of(app))
    pool = _send_pool(app) if config.concurrency > 1 else None
    return Dispatcher(
        get_database(app).session,
        sender=get_sender(app),
        vault=get_vault(app),
        clock=utcnow,
        config=config,
        limiter=rate_limiter(app),
        pool=pool,
        on_record=_count_sends,
    )


def _dispatch(app: Flask) -> str:
    return str(dispatcher(app).run(until_idle=True))


def _missed(app: Flask) -> str:
    with get_database(app).session() as session:
        now = utcnow()
        report = flag_missed_doses(session, now=now, undelivered=lambda ids: undelivered_dose_ids(session, ids))
    # The deviation log follows in detect_deviations (hourly): recording it here doubled this job (B3: 81 ms ->
    # 178 ms at 1M rows), and the alerts a nurse acts on must not wait for the monitor's log.
    return str(report)


def _deviations(app: Flask) -> str:
    with get_database(app).session() as session:
        return str(detect_deviations(session, now=utcnow()))


def _chase(app: Flask) -> str:
    with get_database(app).session() as session:
        queued = chase_serious_alerts(session, now=utcnow(), vault=get_vault(app))
    return f"queued {queued} repeat on-call page(s) for unacknowledged suspected-serious alerts"


def _digest(app: Flask) -> str:
    with get_database(app).session() as session:
        settings = settings_of(app)
        queued = send_daily_digest(
            session,
            now=utcnow(),
            vault=get_vault(app),
            hour=settings.DIGEST_LOCAL_HOUR,
            when_empty=settings.DIGEST_WHEN_EMPTY,
        )
    return f"queued {queued} digest SMS"


def _purge(app: Flask) -> str:
    from backend.identity.app_tokens import purge_expired_tokens
    from backend.web.idempotency import purge_expired

    with get_database(app).session() as session:
        keys = purge_expired(session, now=utcnow())
        tokens = purge_expired_tokens(session, now=utcnow())
    return f"purged {keys} expired idempotency record(s) and {tokens} expired app token(s)"


def _verify_audit(app: Flask) -> str:
    from backend.audit_verify import describe, verify_chain
    from backend.operations.audit_chain import alert_broken_chain

    database = get_database(app)
    with database.reading() as session:
        report = verify_chain(session)
    if report.intact:
        return describe(report)
    with database.session() as session:
        alert, created = alert_broken_chain(session, report=report, now=utcnow())
    log.error("%s", describe(report), extra={"job": "verify_audit_chain"})
    return f"admin alert {alert.id} {'opened' if created else 'opened before'}: {describe(report)}"


# Natural order for `jobs run --all`: chase unacknowledged safety alerts, close windows, plan, then send what is due.
JOBS: list[JobSpec] = [
    JobSpec(
        "chase_serious_alerts",
        _chase,
        60,
        "page on-call again for suspected-serious alerts unacknowledged for the protocol's chase_every_minutes",
    ),
    JobSpec("flag_missed_doses", _missed, 60, "mark doses whose window closed unreported as missed; open alerts"),
    JobSpec(
        "detect_deviations",
        _deviations,
        3600,
        "derive the protocol-deviation log from the dose records; re-classify by the protocol's rules",
    ),
    JobSpec("plan_messages", _plan, 60, "plan reminders, nudges and VAS prompts for the next 36 hours"),
    JobSpec("send_daily_digest", _digest, 900, "queue each site's daily on-call summary of open alerts"),
    JobSpec(
        "expire_stale_messages",
        _expire,
        60,
        "expire stale messages, apply the crash rule, apply callbacks that raced their send",
    ),
    JobSpec("purge_expired_records", _purge, 3600, "drop expired idempotency records and app tokens"),
    JobSpec(
        "verify_audit_chain",
        _verify_audit,
        86400,
        "walk the audit trail's hash chain; a break opens a high-priority admin alert",
    ),
    # The scheduler runs this one every DISPATCH_POLL_SECONDS (default 5, as here for `jobs list`).
    JobSpec("dispatch_outbox", _dispatch, 5, "send due messages (safety alerts first)"),
]
BY_NAME = {job.name: job for job in JOBS}


# Sending is watched through the outbox's age (trial_outbox_oldest_due_seconds), whoever sends:
# with `scheduler --no-dispatch` the dispatch job never runs here, and that is not an outage.
WATCHED_JOBS = [job for job in JOBS if job.name != "dispatch_outbox"]


def run_recorder(app: Flask) -> RunRecorder:
    """The app's recorder of job outcomes (job_run)."""
    if "job_runs" not in app.extensions:
        database = get_database(app)
        app.extensions["job_runs"] = RunRecorder(database.session, database.dialect)
    return app.extensions["job_runs"]


def run_job(app: Flask, name: str) -> str:
    """Run one job now, keep its outcome in job_run, and return its one-line summary."""
    job = BY_NAME[name]
    started = time.perf_counter()
    try:
        with app.app_context():
            summary = job.run(app)
    except Exception as exc:
        # The class name only: an exception's text can carry bound values; the log has the traceback.
        run_recorder(app).record(name, at=utcnow(), seconds=time.perf_counter() - started, error=type(exc).__name__)
        raise
    elapsed = time.perf_counter() - started
    run_recorder(app).record(name, at=utcnow(), seconds=elapsed, summary=summary)
    JOB_DURATION.labels(name).observe(elapsed)
    # An idle dispatch poll runs every second or so: keep it out of the INFO log.
    level = logging.DEBUG if name == "dispatch_outbox" and summary.startswith("claimed 0,") else logging.INFO
    log.log(level, "job %s: %s (%.0f ms)", name, summary, elapsed * 1000, extra={"job": name})
    return summary
