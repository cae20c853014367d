"""Prometheus metrics of the web, scheduler and dispatch processes, merged when they share a directory.

Single process (tests, `flask run`): prometheus_client's default in-memory registry.

Several processes (gunicorn workers, the scheduler, dispatch workers): set PROMETHEUS_MULTIPROC_DIR
to one writable directory for all of them before they start. Each process then writes its counters
and histograms to its own mmap file there, and /metrics in any web worker merges every file, so one
scrape sees what the scheduler planned and the dispatchers sent. The directory must be emptied when
the whole deployment (re)starts, never while processes still write to it (infra/README.md).

Files are named after the process identity `<host>-<pid>` rather than the bare pid: containers
sharing one volume all have small pids (often 1), and two processes writing one file corrupt it.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import timezone

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiproc_dir() -> str | None:
    """The shared metrics directory, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def process_identity(pid: int | None = None) -> str:
    """`<host>-<pid>`, the name of this process's metric files ('_' is the file-name separator)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40] or "host"
    return f"{host}-{pid if pid is not None else os.getpid()}"


if multiproc_dir():
    os.makedirs(multiproc_dir(), exist_ok=True)
    # Chosen before any metric below exists: each metric picks its value class when created.
    values.ValueClass = values.MultiProcessValue(process_identifier=process_identity)


WEBHOOK_LATENCY = Histogram(
    "trial_webhook_seconds",
    "Twilio webhook handling time",
    ["hook"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
HTTP_LATENCY = Histogram(
    "trial_http_request_seconds",
    "HTTP request time by route (commit included)",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
JOB_DURATION = Histogram(
    "trial_job_seconds",
    "Scheduled job run time",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
MESSAGES_PLANNED = Counter("trial_messages_planned_total", "Outbox rows planned", ["purpose"])
MESSAGES_SENT = Counter("trial_messages_sent_total", "Messages handed to the SMS provider")
MESSAGES_FAILED = Counter("trial_messages_failed_total", "Messages that failed for good", ["code"])


class OutboxCollector:
    """Outbox gauges read from the database at scrape time, so every worker reports the same truth."""

    def __init__(self, read):
        # read() -> (due_count, oldest_due_at | None, sending_count, now)
        self.read = read

    def collect(self):
        """Yield the outbox gauges (called by the registry on each scrape)."""
        due, oldest, sending, now = self.read()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=timezone.utc)
        depth = GaugeMetricFamily("trial_outbox_due", "Planned messages that are due now")
        depth.add_metric([], due)
        age = GaugeMetricFamily(
            "trial_outbox_oldest_due_seconds", "Age of the oldest due planned message (0 when none)"
        )
        age.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        in_flight = GaugeMetricFamily("trial_outbox_sending", "Messages claimed by a dispatcher and not yet recorded")
        in_flight.add_metric([], sending)
        yield from (depth, age, in_flight)

    def describe(self):
        """Nothing up front: the collector is registered per scrape."""
        return []


class JobCollector:
    """Job gauges read from job_run at scrape time: a scheduler that stopped cannot report that itself."""

    def __init__(self, read):
        # read() -> list of backend.runtime.job_runs.JobHealth for the watched jobs
        self.read = read

    def collect(self):
        """Yield last-success time, late and failing per watched job."""
        last = GaugeMetricFamily(
            "trial_job_last_success_timestamp_seconds",
            "When the job last succeeded (Unix time; absent if never)",
            labels=["job"],
        )
        late = GaugeMetricFamily(
            "trial_job_late",
            "1 when the job has not succeeded within three intervals (at least 10 min)",
            labels=["job"],
        )
        failing = GaugeMetricFamily("trial_job_failing", "1 when the job's most recent run failed", labels=["job"])
        for h in self.read():
            if h.last_succeeded_at is not None:
                last.add_metric([h.name], h.last_succeeded_at.timestamp())
            late.add_metric([h.name], 1.0 if h.late else 0.0)
            failing.add_metric([h.name], 1.0 if h.failing else 0.0)
        yield from (last, late, failing)

    def describe(self):
        """Nothing up front: the collector is registered per scrape."""
        return []


def render_latest(extra_collectors=()) -> bytes:
    """The exposition text: this process (or every process in the shared directory) plus extras."""
    from prometheus_client import REGISTRY, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    for collector in extra_collectors:
        registry.register(collector)
    if multiproc_dir():
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY) + generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    """Forget a dead process's live gauges (gunicorn's child_exit hook calls this)."""
    if multiproc_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(process_identity(pid), multiproc_dir())
