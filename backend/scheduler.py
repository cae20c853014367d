"""The one scheduler process: APScheduler running the jobs, guarded so a second copy waits."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from typing import Iterator

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy import text

from backend.db import get_database
from backend.jobs import JOBS, run_job

log = logging.getLogger("backend.scheduler")
ADVISORY_LOCK_KEY = 4_237_987  # any constant; one per deployment database


@contextmanager
def leadership(app: Flask, *, poll_seconds: float = 5.0) -> Iterator[None]:
    """Hold the single-scheduler lock for the life of the block, waiting while another holds it.
    PostgreSQL: a session advisory lock on a dedicated connection. SQLite: an flock on a file."""
    database = get_database(app)
    if database.dialect == "postgresql":
        conn = database.engine.connect()
        try:
            while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar():
                log.warning("another scheduler holds the lock; waiting")
                conn.rollback()
                time.sleep(poll_seconds)
            conn.commit()
            yield
        finally:
            conn.close()  # closing the session releases the advisory lock
        return
    path = app.config["SCHEDULER_LOCK_FILE"]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                log.warning("another scheduler holds %s; waiting", path)
                time.sleep(poll_seconds)
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def build_scheduler(app: Flask, *, include_dispatch: bool = True) -> BlockingScheduler:
    """The scheduler with every job as an interval job.

    coalesce=True: after a stall, a backlog of missed runs collapses into one run, since each run
    handles everything due anyway. max_instances=1: a slow run is never overlapped by itself.
    misfire_grace_time=30 s: a run more than 30 s late is skipped; the next one does its work."""
    scheduler = BlockingScheduler(
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )
    for job in JOBS:
        if job.name == "dispatch_outbox" and not include_dispatch:
            continue
        seconds = app.config.get("DISPATCH_POLL_SECONDS", job.every_seconds) if job.name == "dispatch_outbox" else job.every_seconds
        scheduler.add_job(_safe_run, "interval", seconds=seconds, args=[app, job.name], id=job.name, name=job.description)
    return scheduler


def _safe_run(app: Flask, name: str) -> None:
    try:
        run_job(app, name)
    except Exception:  # one failing run must not stop the scheduler; the next run retries
        log.exception("job %s failed", name)
