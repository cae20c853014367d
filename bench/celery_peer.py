"""B10's Celery peer: reminders sent the way Twilio's appointment-reminders tutorial for Flask sends them.

One Celery task per reminder, published with `apply_async(..., eta=due)`, Redis as the broker, no result
backend; the task calls `twilio.rest.Client(...).messages.create(to=..., from_=..., body=...)`. The tutorial's
task loads the appointment by id from the database; here the producer puts the rendered recipient and body
in the task's arguments beside the reminder's id, so this side does one database round trip less per message
than our outbox does (in Celery's favour).

Workers run it as `celery -A bench.celery_peer worker --pool threads -c 32` (bench/b10_celery.py starts them),
configured through environment variables so several runs can share one Redis server:

    B10_BROKER_URL          redis://...            B10_QUEUE                this run's queue name
    B10_KEY_PREFIX          this run's global_keyprefix for every Redis key
    B10_ACKS_LATE           "1" for task_acks_late=True (default: Celery's acks before execution)
    B10_VISIBILITY_TIMEOUT  seconds before Redis redelivers an unacknowledged task (default: Celery's 1 hour)
    TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER, TWILIO_API_BASE_URL (the stand-in)
"""

from __future__ import annotations

import os
import threading
from typing import Mapping
from urllib.parse import urlsplit, urlunsplit

from celery import Celery
from celery.signals import worker_ready
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

READY_LINE = "b10 celery worker ready"


class _StandInHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client with the scheme and host swapped for the stand-in's (the path is Twilio's)."""

    def __init__(self, base_url: str):
        super().__init__(pool_connections=True, timeout=10)
        self._base = urlsplit(base_url.rstrip("/"))
        self.session.trust_env = False  # loopback: never through an HTTP(S)_PROXY from the environment

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        url = urlunsplit((self._base.scheme, self._base.netloc, parts.path, parts.query, parts.fragment))
        return super().request(method, url, *args, **kwargs)


def create_celery(environ: Mapping[str, str]) -> Celery:
    """The Celery app and its one task, configured from `environ` (the worker's: os.environ)."""
    transport: dict = {"global_keyprefix": environ.get("B10_KEY_PREFIX", "bench-b10-")}
    if environ.get("B10_VISIBILITY_TIMEOUT"):
        transport["visibility_timeout"] = int(environ["B10_VISIBILITY_TIMEOUT"])
    celery = Celery("b10_celery_peer", broker=environ.get("B10_BROKER_URL", "redis://127.0.0.1:6379/0"))
    celery.conf.update(
        task_default_queue=environ.get("B10_QUEUE", "b10"),
        broker_transport_options=transport,
        task_acks_late=environ.get("B10_ACKS_LATE") == "1",
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        enable_utc=True,
    )
    sid, token = environ.get("TWILIO_ACCOUNT_SID", ""), environ.get("TWILIO_AUTH_TOKEN", "")
    from_number, base_url = environ.get("TWILIO_FROM_NUMBER", ""), environ.get("TWILIO_API_BASE_URL", "")
    # The tutorial makes one Client for its prefork workers; a thread pool gets one per thread, as our sender does
    # (the SDK's HTTP client keeps the last response on itself, so threads must not share one).
    local = threading.local()

    def twilio_client() -> Client:
        if not hasattr(local, "client"):
            local.client = Client(sid, token, http_client=_StandInHttpClient(base_url) if base_url else None)
        return local.client

    @celery.task(name="send_sms_reminder", ignore_result=True)
    def send_sms_reminder(reminder_id: int, to: str, body: str) -> None:
        """Send one reminder's SMS (the tutorial's task)."""
        twilio_client().messages.create(to=to, from_=from_number, body=body)

    return celery


celery = create_celery(os.environ)


@worker_ready.connect
def _announce(**_) -> None:
    print(READY_LINE, flush=True)  # the bench waits for this line in the worker's log (it runs at -l WARNING)
