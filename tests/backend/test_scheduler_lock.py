"""The one scheduler: a second copy waits for the lock (file lock on SQLite, advisory lock on
PostgreSQL) and takes over when the first stops; the jobs it schedules are the registry's."""

import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import create_engine, text

from backend.app import create_app
from backend.config import replace_settings
from backend.runtime.jobs import JOBS
from backend.runtime.scheduler import ADVISORY_LOCK_KEY, build_scheduler, leadership
from tests import conftest
from tests.conftest import PG_URL, fresh_database_url, migrate_database
from tests.sms_helpers import ROOT, wait_until

postgres_only = pytest.mark.skipif(
    not PG_URL, reason="the advisory lock is PostgreSQL's (SQLite's flock cannot be lost)"
)


@pytest.fixture
def two_apps(tmp_path):
    """Two app instances (as two scheduler processes would build) on one fresh database and instance dir."""
    with fresh_database_url(tmp_path) as url:
        migrate_database(url, tmp_path)
        apps = [create_app(conftest.test_settings(url, INSTANCE_DIR=str(tmp_path))) for _ in range(2)]
        try:
            yield apps
        finally:
            for app in apps:
                app.extensions["database"].engine.dispose()


def test_a_second_scheduler_waits_while_the_first_holds_leadership_then_takes_over(two_apps):
    first, second = two_apps
    events: list[str] = []
    first_holds, release_first, second_in = threading.Event(), threading.Event(), threading.Event()

    def run_first():
        with leadership(first, poll_seconds=0.05):
            events.append("first leads")
            first_holds.set()
            release_first.wait(10)
            events.append("first stops")

    def run_second():
        first_holds.wait(10)
        with leadership(second, poll_seconds=0.05):
            events.append("second leads")
            second_in.set()

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for t in threads:
        t.start()
    try:
        assert first_holds.wait(10)
        assert not second_in.wait(0.6), "a second scheduler started while the first held the lock"
        release_first.set()
        assert second_in.wait(5), "the second scheduler never took over"
    finally:
        release_first.set()
        for t in threads:
            t.join(10)
    assert events == ["first leads", "first stops", "second leads"]


def test_leadership_is_released_on_exit_so_either_process_can_lead_again(two_apps):
    first, second = two_apps
    order = []

    def take_turns():
        for app, name in ((first, "first"), (second, "second"), (first, "first")):
            with leadership(app, poll_seconds=0.05):
                order.append(name)

    worker = threading.Thread(target=take_turns, daemon=True)
    worker.start()
    worker.join(5)
    assert order == ["first", "second", "first"], "a released lock was still held"


def test_scheduler_runs_every_job_with_coalescing_and_no_overlap(app):
    scheduler = build_scheduler(app)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert list(jobs) == [job.name for job in JOBS]
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 30
    assert "dispatch_outbox" not in {job.id for job in build_scheduler(app, include_dispatch=False).get_jobs()}


def test_the_dispatch_job_runs_every_dispatch_poll_seconds(app):
    replace_settings(app.config, DISPATCH_POLL_SECONDS=2.5)
    [job] = [job for job in build_scheduler(app).get_jobs() if job.id == "dispatch_outbox"]
    assert job.trigger.interval.total_seconds() == 2.5


def test_scheduler_is_never_started_by_the_app_factory(app):
    import apscheduler.schedulers.base as base

    assert not any(isinstance(obj, base.BaseScheduler) for obj in app.extensions.values())


def _lock_holder(url: str) -> int | None:
    """The backend pid holding the scheduler's advisory lock, seen from another connection."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                # Only this test's database: another run's scheduler on the same server holds the same key.
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = :k AND granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"k": ADVISORY_LOCK_KEY},
            ).scalar()
    finally:
        engine.dispose()


def _end_backend(url: str, pid: int) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()


@postgres_only
def test_leadership_knows_when_its_lock_went_with_its_connection(two_apps):
    first, second = two_apps
    url = first.config["DATABASE_URL"]
    with leadership(first, poll_seconds=0.05) as still_leader:
        assert still_leader()
        _end_backend(url, _lock_holder(url))  # a PostgreSQL restart or failover does the same
        assert not still_leader()
        # Meanwhile another scheduler can take the lock: that is why the first must stop.
        with leadership(second, poll_seconds=0.05) as second_leads:
            assert second_leads()
    assert _lock_holder(url) is None


@postgres_only
def test_scheduler_process_exits_with_a_reason_when_its_lock_is_lost(tmp_path):
    with fresh_database_url(tmp_path) as url:
        migrate_database(url, tmp_path)
        env = {
            **os.environ,
            "APP_ENV": "test",
            "DATABASE_URL": url,
            "INSTANCE_DIR": str(tmp_path),
            "SCHEDULER_LOCK_CHECK_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler", "--no-dispatch"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            holder = wait_until(lambda: _lock_holder(url), timeout=30, what="the scheduler to take its lock")
            _end_backend(url, holder)
            output, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 1, output
        assert "scheduler lock was lost" in output and "supervisor" in output
        assert _lock_holder(url) is None
