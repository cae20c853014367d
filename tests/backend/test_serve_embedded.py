"""`make run`'s command for real: serve-embedded migrates, seeds the demo trial, starts gunicorn and the
scheduler, and one /metrics shows both (the scheduler's job runs included); Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

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
    dirs_before = set(Path(tempfile.gettempdir()).glob("trial-metrics-*"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PROMETHEUS_", "DATABASE_URL", "TEST_DATABASE_URL", "APP_ENV"))
    }
    env.update(INSTANCE_DIR=str(tmp_path), SMS_BACKEND="console", GUNICORN_WORKERS="2")
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
    assert set(Path(tempfile.gettempdir()).glob("trial-metrics-*")) <= dirs_before  # its metrics directory is removed
