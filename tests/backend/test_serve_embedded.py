"""`make run`'s command for real: serve-embedded migrates, seeds the demo trial, starts gunicorn and the
scheduler, and one /metrics shows both (the scheduler's job runs included); Ctrl-C or SIGTERM stops everything
within 10 s; a taken port, a gunicorn that cannot bind or a dead scheduler ends it non-zero, leaving nothing behind."""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from tests.sms_helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


def test_serve_embedded_runs_web_and_scheduler_and_metrics_cover_both(tmp_path):
    port = _free_port()
    own_tmp = tmp_path / "tmp"  # its TMPDIR: only its own metrics directory is looked for (others run in parallel)
    own_tmp.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PROMETHEUS_", "DATABASE_URL", "TEST_DATABASE_URL", "APP_ENV"))
    }
    env.update(INSTANCE_DIR=str(tmp_path), SMS_BACKEND="console", GUNICORN_WORKERS="2", TMPDIR=str(own_tmp))
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "serve-embedded", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base, metrics = f"http://127.0.0.1:{port}", None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            metrics = _get(base + "/metrics")
            # The scheduler is another process: its job histogram reaches the web workers' /metrics only
            # through the shared multi-process directory serve-embedded sets up.
            if metrics and 'trial_job_seconds_count{job="plan_messages"}' in metrics:
                break
            time.sleep(0.5)
        assert metrics and 'trial_job_seconds_count{job="plan_messages"}' in metrics, metrics
        assert 'trial_job_late{job="plan_messages"} 0.0' in metrics
        assert json.loads(_get(base + "/readyz") or "{}").get("status") == "ok"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "nurse@demo.local" in out and f"http://127.0.0.1:{port}/" in out
    assert not list(own_tmp.glob("trial-metrics-*"))  # its metrics directory is removed


# --- under a supervisor: signals, exit status, nothing left behind ----------------------------------------------
TAG_VAR = "SERVE_EMBEDDED_TEST_TAG"  # inherited by every process serve-embedded starts, grandchildren included


class Embedded:
    """One serve-embedded process on a free port and a temp instance dir, its output collected line by line."""

    def __init__(self, tmp_path: Path, port: int | None = None):
        self.port = port or _free_port()
        self.tag = secrets.token_hex(8)
        self.tmp = tmp_path / "tmp"  # its TMPDIR: the metrics directory it creates is found here, and only its own
        self.tmp.mkdir()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PROMETHEUS_", "DATABASE_URL", "TEST_DATABASE_URL", "APP_ENV"))
        }
        env.update(
            INSTANCE_DIR=str(tmp_path / "instance"),
            SMS_BACKEND="console",
            GUNICORN_WORKERS="2",
            TMPDIR=str(self.tmp),
            PYTHONUNBUFFERED="1",
            **{TAG_VAR: self.tag},
        )
        self.instance = tmp_path / "instance"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "serve-embedded", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, into: list[str]) -> None:
        for line in stream:
            into.append(line)
            self.lines.put(line)

    def output(self) -> str:
        """Everything it and its children printed so far (stdout, then stderr)."""
        return "".join(self.out) + "".join(self.err)

    def wait_for_line(self, text: str, timeout: float = 90) -> None:
        """Block until a line containing `text` was printed."""
        wait_until(lambda: text in self.output(), timeout=timeout, interval=0.05, what=f"{text!r} in {self.output()}")

    def wait_until_serving(self) -> list[int]:
        """Wait for the URL line and for all five processes (itself, scheduler, gunicorn and 2 workers); their pids."""
        self.wait_for_line(f"on http://127.0.0.1:{self.port}/")
        return wait_until(lambda: len(_tagged(self.tag)) == 5 and _tagged(self.tag), timeout=60, what="5 processes")

    def exit_status(self, timeout: float) -> int:
        """Its exit status, failing the test if it is still running after `timeout` seconds."""
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve-embedded still running after {timeout:g} s:\n{self.output()}") from None
        for reader in self._readers:
            reader.join(timeout=10)
        return status

    def metrics_dirs(self) -> list[Path]:
        """The Prometheus multi-process directories it created that still exist."""
        return list(self.tmp.glob("trial-metrics-*"))

    def close(self) -> None:
        """Leave nothing running whatever the test did (SIGKILL to anything still carrying its tag)."""
        for pid in _tagged(self.tag):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)


def _tagged(tag: str) -> list[int]:
    """Live processes whose environment carries the tag: serve-embedded and all it started, orphans included."""
    marker = f"{TAG_VAR}={tag}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()  # empty for a zombie: it counts as gone
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                pids.append(int(entry.name))
    return sorted(pids)


def _children(pid: int) -> dict[int, str]:
    """The direct children of a process, by pid, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found[int(entry.name)] = cmdline
    return found


def test_sigterm_stops_every_process_of_it_within_10_s_and_removes_its_metrics_directory(tmp_path):
    embedded = Embedded(tmp_path)
    try:
        pids = embedded.wait_until_serving()
        assert len(embedded.metrics_dirs()) == 1
        started = time.monotonic()
        embedded.proc.send_signal(signal.SIGTERM)  # to serve-embedded alone, as `kill`, docker and systemd's main pid
        status = embedded.exit_status(timeout=10)
        left = _tagged(embedded.tag)  # it waits for its children, and gunicorn for its workers, before exiting
        assert time.monotonic() - started < 10
        assert status == 0, embedded.output()
        assert left == [], f"still running after serve-embedded exited: {left} (of {pids})"
        assert embedded.metrics_dirs() == []
        assert "stopping on SIGTERM" in embedded.output()
    finally:
        embedded.close()


def test_a_taken_port_exits_non_zero_with_a_sentence_before_migrating_or_starting_anything(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        embedded = Embedded(tmp_path, port=taken.getsockname()[1])
        try:
            status = embedded.exit_status(timeout=60)
        finally:
            embedded.close()
    assert status == 1, embedded.output()
    assert f"port {embedded.port} on 127.0.0.1 is taken by another process" in "".join(embedded.err)
    assert "http://" not in embedded.output()  # no URL for a server that is not there
    assert not (embedded.instance / "trial_companion.db").exists()  # nothing migrated, nothing seeded
    assert embedded.metrics_dirs() == [] and _tagged(embedded.tag) == []


def test_gunicorn_unable_to_bind_after_the_check_ends_it_non_zero_and_stops_the_scheduler(tmp_path):
    embedded = Embedded(tmp_path)
    try:
        # The demo login is printed after the port check and before gunicorn starts: take the port then.
        embedded.wait_for_line("nurse@demo.local")
        with socket.create_server(("127.0.0.1", embedded.port)):
            status = embedded.exit_status(timeout=40)  # gunicorn tries for about 5 s before it gives up
    finally:
        embedded.close()
    assert status == 1, embedded.output()
    assert f"the web server could not start on 127.0.0.1:{embedded.port}" in "".join(embedded.err)
    assert "Trial Companion on http://" not in embedded.output()
    assert embedded.metrics_dirs() == [] and _tagged(embedded.tag) == []


def test_a_dead_scheduler_ends_it_non_zero_and_stops_the_web_server(tmp_path):
    embedded = Embedded(tmp_path)
    try:
        embedded.wait_until_serving()
        (scheduler,) = [pid for pid, cmd in _children(embedded.proc.pid).items() if " scheduler" in cmd]
        os.kill(scheduler, signal.SIGKILL)
        status = embedded.exit_status(timeout=15)
    finally:
        embedded.close()
    assert status == 1, embedded.output()
    assert "the scheduler was killed by SIGKILL unexpectedly" in "".join(embedded.err)
    assert _get(f"http://127.0.0.1:{embedded.port}/healthz") is None  # the web server went with it
    assert embedded.metrics_dirs() == [] and _tagged(embedded.tag) == []
