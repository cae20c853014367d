"""Shared pieces of the SMS end-to-end tests: the Twilio stand-in behind the real SDK, signed
webhook posts, running every job in order, and reading back what reached the stand-in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, select
from twilio.request_validator import RequestValidator

from backend.config import replace_settings
from backend.extensions import set_sender
from backend.runtime.jobs import JOBS, run_job
from notifications.models import OutboundMessage
from notifications.senders import TwilioSmsSender
from notifications.twilio_standin import TwilioStandIn
from tests.conftest import PUBLIC_BASE_URL, TWILIO_TOKEN

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
FROM_NUMBER = "+15005550006"
PHONE = "+8613812345678"


@pytest.fixture(scope="module")
def standin():
    """One in-process Twilio stand-in per test module, reset before each test."""
    with TwilioStandIn() as server:
        yield server


@pytest.fixture
def twilio(app, standin):
    """The app sends through the real Twilio SDK to the stand-in; returns the stand-in."""
    standin.reset()
    set_sender(app, twilio_sender(standin))
    return standin


@pytest.fixture
def we_answer_keywords(app):
    """SMS_KEYWORD_REPLIES=us: our TwiML answers STOP, START and HELP (by default the carrier does)."""
    replace_settings(app.config, SMS_KEYWORD_REPLIES="us")
    return app


def twilio_sender(standin: TwilioStandIn, **overrides) -> TwilioSmsSender:
    """A TwilioSmsSender aimed at the stand-in."""
    options = dict(
        account_sid=ACCOUNT_SID,
        auth_token=TWILIO_TOKEN,
        from_number=FROM_NUMBER,
        api_base_url=standin.url,
        timeout_seconds=5.0,
    )
    options.update(overrides)
    return TwilioSmsSender(**options)


def signature(path: str, params: dict) -> str:
    """The X-Twilio-Signature Twilio would send for a POST to our public URL."""
    return RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + path, params)


def post_signed(client, path: str, params: dict, *, sign: str | None = None):
    """POST form params to a webhook with a correct signature (or the one given)."""
    return client.post(
        path, data=params, headers={"X-Twilio-Signature": signature(path, params) if sign is None else sign}
    )


_sids = iter(range(1, 10**9))


def inbound_params(body: str, *, sender: str = PHONE, sid: str | None = None) -> dict:
    """Form fields of an inbound SMS as Twilio posts them."""
    return {
        "MessageSid": sid or f"SM{next(_sids):032d}",
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": FROM_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }


def reply_text(response) -> str:
    """The text of a TwiML reply ('' when the reply says nothing)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(response.data)
    return " ".join((m.text or "") for m in root.iter("Message"))


def run_all_jobs(app) -> list[str]:
    """`jobs run --all`: every job once, in natural order."""
    return [run_job(app, job.name) for job in JOBS]


def run_jobs_across(app, clock, start: datetime, end: datetime, step: timedelta, *, at_each=None) -> None:
    """Advance frozen time from start to end in steps, running every job at each step."""
    now = start
    while now <= end:
        clock.move_to(now)
        if at_each is not None:
            at_each(now)
        run_all_jobs(app)
        now += step


def fresh(database) -> Session:
    """A new session on the test's database (no stale identity map)."""
    return database.sessions()


def outbox_by_sid(database) -> dict[str, OutboundMessage]:
    """Outbox rows keyed by their provider SID."""
    with fresh(database) as s:
        return {
            r.provider_sid: r
            for r in s.exec(select(OutboundMessage).where(OutboundMessage.provider_sid.is_not(None))).all()
        }


# A dose reminder goes alone, or together with a VAS prompt due in the same hour (on the first-dose
# date, for one: VAS prompts count from it).
DOSE_REMINDERS = ("dose_reminder", "dose_and_vas")


def received(
    standin: TwilioStandIn, database, purpose: str | tuple[str, ...] | None = None
) -> list[tuple[datetime, OutboundMessage]]:
    """(time the stand-in got it, outbox row) for each message the stand-in accepted, optionally of one purpose
    (or any of several)."""
    rows = outbox_by_sid(database)
    wanted = (purpose,) if isinstance(purpose, str) else purpose
    out = []
    for message in standin.messages:
        row = rows.get(message["sid"])
        assert row is not None, "the stand-in accepted a message the outbox does not know"
        if wanted is None or row.purpose in wanted:
            out.append((datetime.fromisoformat(message["received_at"]), row))
    return out


def table_counts(database) -> dict[str, int]:
    """Row count of every table the database has."""
    with fresh(database) as s:
        present = set(inspect(s.connection()).get_table_names())
        return {
            t.name: s.execute(sa_select(func.count()).select_from(t)).scalar_one()
            for t in SQLModel.metadata.sorted_tables
            if t.name in present
        }


# --- worker processes against a committed database ----------------------------------------------
def worker_env(url: str, standin: TwilioStandIn, tmp_path, **extra) -> dict:
    """Environment of a `flask dispatch` process sending to the stand-in."""
    env = dict(os.environ)
    env.update(
        {
            "APP_ENV": "test",
            "DATABASE_URL": url,
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_BASE_URL": standin.url,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "INSTANCE_DIR": str(tmp_path),
            "SEND_RATE_PER_SECOND": "0",
            "LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_worker(env: dict, *args: str, log_path=None) -> subprocess.Popen:
    """Start `flask --app wsgi dispatch` in its own process group."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "dispatch", "--poll", "0.1", *args],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(proc: subprocess.Popen, *, sig=signal.SIGTERM, timeout: float = 15) -> None:
    """Stop one worker we started (by its pid), killing it if it will not stop."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll predicate until it returns something truthy; fail the test after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
