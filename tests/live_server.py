"""A real gunicorn (infra/gunicorn.conf.py, as deployed) serving wsgi:app on a test's own database, for the
tests that need several worker processes, real HTTP and real commits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.conftest import PUBLIC_BASE_URL, TWILIO_TOKEN

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_environ(url: str, instance_dir: Path, **extra) -> dict:
    """The environment of the app processes: the values tests.conftest.test_settings gives an in-process app."""
    # Nothing of the suite's own run (its database, a metrics directory) leaks into the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "TEST_DATABASE_URL", "GUNICORN_"))}
    env.update(
        APP_ENV="test",
        DATABASE_URL=url,
        SMS_BACKEND="recording",
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        INSTANCE_DIR=str(instance_dir),
        SEND_RATE_PER_SECOND="0",
        DISPATCH_CONCURRENCY="1",
        LOG_FORMAT="text",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_flask(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `flask --app wsgi <args>` as an operator would, in the repository, with its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def flask_cli(env: dict, *args: str) -> str:
    """Run `flask --app wsgi <args>`; its output, or the test fails with it."""
    done = run_flask(env, *args)
    assert done.returncode == 0, f"flask {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


@dataclass
class LiveServer:
    """A running gunicorn: where it listens and what it logged."""

    base_url: str
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        """Everything gunicorn and its workers wrote to stderr/stdout so far."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def live_server(env: dict, log_path: Path, *, workers: int = 4, threads: int = 4) -> Iterator[LiveServer]:
    """gunicorn with `workers` x `threads` on a free port, up once /readyz answers; stopped (by its pid) after."""
    port = free_port()
    env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
    }
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "infra/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", log_path, process)
    try:
        _wait_ready(server, workers, timeout=60)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: LiveServer, workers: int, *, timeout: float) -> None:
    """Wait until /readyz says ok and every worker has booted (a request must not wait on a booting one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"gunicorn exited {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.base_url + "/readyz", timeout=5) as response:
                if response.status == 200 and server.log().count("Booting worker") >= workers:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"gunicorn was not ready after {timeout:g} s:\n{server.log()}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM gunicorn's master (it stops its own workers); kill its process group if it will not stop."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
