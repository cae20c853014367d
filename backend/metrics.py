"""Prometheus metrics of the web process and jobs."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

WEBHOOK_LATENCY = Histogram("trial_webhook_seconds", "Twilio webhook handling time", ["hook"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
JOB_DURATION = Histogram("trial_job_seconds", "Scheduled job run time", ["job"])
MESSAGES_PLANNED = Counter("trial_messages_planned_total", "Outbox rows planned", ["purpose"])
MESSAGES_SENT = Counter("trial_messages_sent_total", "Messages handed to the SMS provider")
MESSAGES_FAILED = Counter("trial_messages_failed_total", "Messages that failed for good", ["code"])
OUTBOX_DEPTH = Gauge("trial_outbox_due", "Planned messages that are due now")
OUTBOX_OLDEST_AGE = Gauge("trial_outbox_oldest_due_seconds", "Age of the oldest due planned message")
