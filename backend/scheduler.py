"""The one scheduler process: APScheduler running the jobs, guarded so a second copy waits."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
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
        with _advisory_lock(database.engine, poll_seconds=poll_seconds):
            yield
        return
    with _file_lock(app.config["SCHEDULER_LOCK_FILE"], poll_seconds=poll_seconds):
        yield


@contextmanager
def _advisory_lock(engine, *, poll_seconds: float) -> Iterator[None]:
    conn = engine.connect()
    try:
        waiting = False
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar():
            conn.rollback()
            if not waiting:
                log.warning("another scheduler holds the lock; waiting")
                waiting = True
            time.sleep(poll_seconds)
        conn.commit()
        try:
            yield
        finally:
            # close() only returns the connection to the pool, whose session would keep the
            # lock: release it explicitly (a crashed process loses it with its connection).
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.commit()
    finally:
        conn.close()


@contextmanager
def _file_lock(path: str, *, poll_seconds: float) -> Iterator[None]:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    # Opened without truncating: a waiting scheduler must not wipe the holder's pid from the file.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    log.warning("another scheduler holds %s; waiting", path)
                    waiting = True
                time.sleep(poll_seconds)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)  # the kernel drops the lock with the descriptor, also when the process dies


# Chosen on purpose: every run handles everything that is due, so a backlog of missed runs after
# a stall (suspended VM, long GC, slow database) is worth exactly one run: coalesce=True.
# max_instances=1: a slow run is never overlapped by itself (two overlapping dispatch runs would
# only compete for the same rows). misfire_grace_time=30 s: a run more than 30 s late is dropped;
# the next one, at most one interval later, does its work. Staleness of the messages themselves
# is the outbox's business (not_after), not the scheduler's.
JOB_OPTIONS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}


def build_scheduler(app: Flask, *, include_dispatch: bool = True) -> BlockingScheduler:
    """The scheduler with every job as an interval job, each first run right at start-up
    (a restarted scheduler catches up at once instead of one interval later)."""
    scheduler = BlockingScheduler(executors={"default": ThreadPoolExecutor(4)}, job_defaults=JOB_OPTIONS, timezone="UTC")
    start = datetime.now(timezone.utc)
    for job in JOBS:
        if job.name == "dispatch_outbox" and not include_dispatch:
            continue
        seconds = app.config.get("DISPATCH_POLL_SECONDS", job.every_seconds) if job.name == "dispatch_outbox" else job.every_seconds
        scheduler.add_job(_safe_run, "interval", seconds=seconds, args=[app, job.name], id=job.name, name=job.description,
                          next_run_time=start, **JOB_OPTIONS)
    return scheduler


def _safe_run(app: Flask, name: str) -> None:
    try:
        run_job(app, name)
    except Exception:  # one failing run must not stop the scheduler; the next run retries
        log.exception("job %s failed", name)
