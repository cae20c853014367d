"""Long-running commands: the scheduler, dispatch workers, the embedded all-in-one server, demo data."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
import tempfile
import threading

import click
from flask import Flask, current_app
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from backend.config import settings_of
from backend.db import get_database
from backend.runtime.key_guard import refuse_unless_keys_open
from backend.runtime.logging_setup import configure_logging
from backend.runtime.metrics import MULTIPROC_ENV
from backend.runtime.role_guard import refuse_unless_runtime_role

log = logging.getLogger("backend.runtime")


@click.command("scheduler")
@click.option("--no-dispatch", is_flag=True, help="Leave sending to `flask dispatch` workers (scale-out).")
def scheduler_command(no_dispatch):
    """Run the one scheduler process (a second one waits for the lock)."""
    from backend.runtime.scheduler import build_scheduler, leadership

    app = current_app._get_current_object()
    configure_logging(settings_of(app).LOG_FORMAT)
    _require_database(app)
    refuse_unless_keys_open(app)  # after: the key check reads the database
    refuse_unless_runtime_role(app)
    include_dispatch = not no_dispatch and settings_of(app).SCHEDULER_RUNS_DISPATCH
    click.echo("taking the scheduler lock (while another scheduler holds it, this one waits)")
    lost = threading.Event()
    with leadership(app) as still_leader:
        scheduler = None

        def lock_lost():
            lost.set()
            scheduler.shutdown(wait=False)  # called from a job thread: waiting here would wait for itself

        scheduler = build_scheduler(
            app, include_dispatch=include_dispatch, still_leader=still_leader, on_lost=lock_lost
        )

        def stop(signum, _frame):
            # Let running jobs finish (a send in progress is recorded) before the lock is released.
            log.info("scheduler stopping on signal %s; letting running jobs finish", signum)
            if scheduler.running:
                scheduler.shutdown(wait=True)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        click.echo(f"scheduler running (dispatch {'in this process' if include_dispatch else 'by workers'})")
        # Start-up objects (the app, its modules) live as long as the process: keep them out of every
        # full garbage collection, which otherwise walks them all in the middle of a job (~0.1 s seen in B3).
        gc.freeze()
        scheduler.start()
    if lost.is_set():
        raise click.ClickException(
            "the scheduler lock was lost (its database connection went away); "
            "exiting so the supervisor starts a scheduler that takes the lock again"
        )
    click.echo("scheduler stopped")


@click.command("dispatch")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between polls when idle.")
def dispatch_command(once, poll):
    """Run a dispatch worker: claim due messages and send them (any number may run in parallel)."""
    from backend.runtime.jobs import dispatcher, run_job

    app = current_app._get_current_object()
    configure_logging(settings_of(app).LOG_FORMAT)
    _require_database(app)
    refuse_unless_keys_open(app)  # after: the key check reads the database
    refuse_unless_runtime_role(app)
    if once:
        click.echo(run_job(app, "dispatch_outbox"))
        return
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    gc.freeze()  # as the scheduler does: start-up objects out of the collector's way
    try:
        report = dispatcher(app).run(until_idle=False, stop=stopping, poll=poll)
    except (OperationalError, InterfaceError) as exc:
        # Sends in flight follow the crash rule; the supervisor's restart is the retry.
        raise _database_gone(app, exc, "lost the database") from exc
    click.echo(f"dispatcher stopped: {report}")


def _require_database(app: Flask) -> None:
    """Exit non-zero with a sentence when the database does not answer, so a supervisor tries again later."""
    try:
        with get_database(app).engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, InterfaceError) as exc:
        raise _database_gone(app, exc, "cannot reach the database") from exc


def _database_gone(app: Flask, exc: DBAPIError, what: str) -> click.ClickException:
    """The one-sentence exit of a process whose database went away (the URL without its password)."""
    url = get_database(app).engine.url.render_as_string(hide_password=True)
    reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    return click.ClickException(f"{what} at {url} ({reason}); exiting so the supervisor starts this process again")


@click.command("seed-demo")
@click.option("--force", is_flag=True, help="Seed even if participants exist.")
def seed_demo_command(force):
    """Load the protocol and seed a demo site, staff and participants in both arms."""
    from backend.runtime.demo import seed_demo

    for line in seed_demo(current_app._get_current_object(), force=force):
        click.echo(line)


@click.command("serve-embedded")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def serve_embedded_command(host, port):
    """The embedded default in one command: migrate, seed demo data, run web server and scheduler."""
    from backend import migrate
    from backend.runtime.demo import seed_demo
    from backend.runtime.embedded import listen_problem, serve

    # Before anything else: a taken port must not leave a migrated database and a scheduler running behind.
    problem = listen_problem(host, port)
    if problem:
        raise click.ClickException(problem)
    app = current_app._get_current_object()
    migrate.upgrade(app)
    for line in seed_demo(app, force=False):
        click.echo(line)
    env = dict(os.environ)
    own_metrics = None
    if not env.get(MULTIPROC_ENV):
        # One directory for the web workers and the scheduler: /metrics then shows the scheduler's sends too.
        own_metrics = env[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="trial-metrics-")
    try:
        failure = serve(host=host, port=port, env=env, echo=click.echo)
    finally:
        if own_metrics:
            shutil.rmtree(own_metrics, ignore_errors=True)
    if failure:
        # Non-zero, so a supervisor (or the person at the terminal) starts the whole thing again.
        raise click.ClickException(f"{failure}; stopped the rest of serve-embedded")
    click.echo("stopped")


def register(app: Flask) -> None:
    """Add the long-running commands to the app's CLI."""
    for command in (scheduler_command, dispatch_command, seed_demo_command, serve_embedded_command):
        app.cli.add_command(command)
