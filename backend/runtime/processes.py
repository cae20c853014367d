"""Long-running commands: the scheduler, dispatch workers, the embedded all-in-one server, demo data."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import click
from flask import Flask, current_app

from backend.config import settings_of
from backend.runtime.key_guard import refuse_unless_keys_open
from backend.runtime.logging_setup import configure_logging
from backend.runtime.metrics import MULTIPROC_ENV

log = logging.getLogger("backend.runtime")


@click.command("scheduler")
@click.option("--no-dispatch", is_flag=True, help="Leave sending to `flask dispatch` workers (scale-out).")
def scheduler_command(no_dispatch):
    """Run the one scheduler process (a second one waits for the lock)."""
    from backend.runtime.scheduler import build_scheduler, leadership

    app = current_app._get_current_object()
    refuse_unless_keys_open(app)
    configure_logging(settings_of(app).LOG_FORMAT)
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
    refuse_unless_keys_open(app)
    configure_logging(settings_of(app).LOG_FORMAT)
    if once:
        click.echo(run_job(app, "dispatch_outbox"))
        return
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    gc.freeze()  # as the scheduler does: start-up objects out of the collector's way
    report = dispatcher(app).run(until_idle=False, stop=stopping, poll=poll)
    click.echo(f"dispatcher stopped: {report}")


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

    app = current_app._get_current_object()
    migrate.upgrade(app)
    for line in seed_demo(app, force=False):
        click.echo(line)
    env = dict(os.environ)
    own_metrics = None
    if not env.get(MULTIPROC_ENV):
        # One directory for the web workers and the scheduler: /metrics then shows the scheduler's sends too.
        own_metrics = env[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="trial-metrics-")
    scheduler = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"], env=env)
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "infra/gunicorn.conf.py", "--bind", f"{host}:{port}", "wsgi:app"],
        env=env,
    )
    click.echo(f"Trial Companion on http://{host}:{port}/  (API docs: /api/docs, nurse pages: /)")
    try:
        while web.poll() is None and scheduler.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in (web, scheduler):
            if proc.poll() is None:
                proc.terminate()
        for proc in (web, scheduler):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if own_metrics:
            shutil.rmtree(own_metrics, ignore_errors=True)


def register(app: Flask) -> None:
    """Add the long-running commands to the app's CLI."""
    for command in (scheduler_command, dispatch_command, seed_demo_command, serve_embedded_command):
        app.cli.add_command(command)
