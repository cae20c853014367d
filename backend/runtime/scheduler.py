"""The one scheduler process: APScheduler running the jobs, guarded so a second copy waits."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable, Iterator

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.config import settings_of
from backend.db import get_database
from backend.runtime.jobs import JOBS, run_job

log = logging.getLogger("backend.runtime.scheduler")
ADVISORY_LOCK_KEY = 4_237_987  # any constant; one per deployment database
StillLeader = Callable[[], bool]


@contextmanager
def leadership(app: Flask, *, poll_seconds: float = 5.0) -> Iterator[StillLeader]:
    """Hold the single-scheduler lock for the life of the block, waiting while another holds it;
    yields a check that says whether the lock is still ours.
    PostgreSQL: a session advisory lock on a dedicated connection. SQLite: an flock on a file."""
    database = get_database(app)
    if database.dialect == "postgresql":
        with _advisory_lock(database.engine, poll_seconds=poll_seconds) as still_leader:
            yield still_leader
        return
    with _file_lock(settings_of(app).SCHEDULER_LOCK_FILE, poll_seconds=poll_seconds):
        yield lambda: True  # an flock lives as long as our descriptor: it cannot be lost behind our back


@contextmanager
def _advisory_lock(engine, *, poll_seconds: float) -> Iterator[StillLeader]:
    conn = engine.connect()
    lost = []

    def still_leader() -> bool:
        # The lock lives in the lock connection's session: if PostgreSQL restarted, a failover
        # happened or an admin ended the backend, the lock is gone and another scheduler may have it.
        try:
            held = (
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                        " AND classid = 0 AND objid = :k AND granted"
                    ),
                    {"k": ADVISORY_LOCK_KEY},
                ).scalar()
                == 1
            )
            conn.rollback()
        except DBAPIError:
            held = False
        if not held:
            lost.append(True)
        return held

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
            yield still_leader
        finally:
            if lost:
                conn.invalidate()  # nothing to release; never hand this session back to the pool
            else:
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


def build_scheduler(
    app: Flask,
    *,
    include_dispatch: bool = True,
    still_leader: StillLeader | None = None,
    on_lost: Callable[[], None] | None = None,
) -> BlockingScheduler:
    """The scheduler with every job as an interval job, each first run right at start-up
    (a restarted scheduler catches up at once instead of one interval later). With `still_leader`,
    the lock is checked every SCHEDULER_LOCK_CHECK_SECONDS and `on_lost` is called when it is gone."""
    scheduler = BlockingScheduler(
        executors={"default": ThreadPoolExecutor(4)}, job_defaults=JOB_OPTIONS, timezone="UTC"
    )
    start = datetime.now(timezone.utc)
    if still_leader is not None:

        def check() -> None:
            if not still_leader():
                log.critical(
                    "scheduler lock lost (database connection gone); stopping so the supervisor restarts this scheduler"
                )
                if on_lost is not None:
                    on_lost()

        scheduler.add_job(
            check,
            "interval",
            seconds=settings_of(app).SCHEDULER_LOCK_CHECK_SECONDS,
            id="leadership_check",
            name="check that this process still holds the scheduler lock",
            **JOB_OPTIONS,
        )
    for job in JOBS:
        if job.name == "dispatch_outbox" and not include_dispatch:
            continue
        seconds = settings_of(app).DISPATCH_POLL_SECONDS if job.name == "dispatch_outbox" else job.every_seconds
        scheduler.add_job(
            _safe_run,
            "interval",
            seconds=seconds,
            args=[app, job.name],
            id=job.name,
            name=job.description,
            next_run_time=start,
            **JOB_OPTIONS,
        )
    return scheduler


def _safe_run(app: Flask, name: str) -> None:
    try:
        run_job(app, name)
    except Exception:  # one failing run must not stop the scheduler; the next run retries
        log.exception("job %s failed", name)
