"""The SMS scenario, in real time, against a running up-local.sh deployment (run by infra/e2e-local.sh).

It talks to the stack only the way an operator or Twilio would: the CLI with the deployment's env file,
signed webhooks and /readyz, /metrics over HTTP, the stand-in's /_standin/ endpoints, signals to the
dispatcher processes, and SQL against the deployment's database as its runtime role (read-only, except for
inserting due outbox rows, as a planner would, for the bulk and retry steps, and the last step's attempts
to change the audit trail, which must all be refused).

    .venv/bin/python infra/e2e_local.py --state /tmp/trial-e2e-xxxx

Prints one line per step; exit 0 and PASS when every step held, exit 1 naming the step that did not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import psycopg
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from schedules.phones import PhoneVault  # noqa: E402  (needs ROOT on the path; only to encrypt bulk recipients)

ZONE = "Asia/Shanghai"
PHONE = "+8613812345678"
STUDY = "NCT04237987"
# The deployment's first staff account, made as an operator bootstraps one; every later change names it (--as).
ADMIN, ADMIN_PASSWORD = "e2e-admin@example.org", "e2e-Admin-" + secrets.token_hex(8)
AS_ADMIN = ["--as", ADMIN, "--reason", "end-to-end check"]
CRASH_TOTAL, BULK_TOTAL = 500, 2000
# The first dose's reminder also asks the first weekly VAS prompt (same hour): one SMS of purpose dose_and_vas.
REMINDERS = "('dose_reminder', 'dose_and_vas')"


class StepFailed(Exception):
    """A check of the scenario did not hold; the message says what was expected and what was seen."""


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll until predicate returns something truthy; StepFailed after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StepFailed(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def check(condition: bool, message: str) -> None:
    """Raise StepFailed(message) unless condition holds."""
    if not condition:
        raise StepFailed(message)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of the deployment's env file (what `set -a; . env` loads)."""
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


class Stack:
    """The deployment's public surfaces: CLI, HTTP, stand-in, processes, database."""

    def __init__(self, state: Path):
        self.state = state
        self.env = read_env_file(state / "env")
        self.web = self.env["PUBLIC_BASE_URL"].rstrip("/")
        self.standin = self.env["TWILIO_API_BASE_URL"].rstrip("/")
        self.python = os.environ.get("PYTHON", str(ROOT / ".venv" / "bin" / "python"))
        self.db = psycopg.connect(self.env["DATABASE_URL"], autocommit=True)
        self.vault = PhoneVault(
            encryption_keys=self.env["PHONE_ENCRYPTION_KEY"].split(","), hash_key=self.env["PHONE_HASH_KEY"]
        )
        self.validator = RequestValidator(self.env["TWILIO_AUTH_TOKEN"])

    def process_env(self) -> dict[str, str]:
        """The environment every process of the deployment runs with."""
        return {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}

    # -- CLI -----------------------------------------------------------------------------------
    def cli(self, *commands: list[str], env: dict[str, str] | None = None) -> None:
        """Run `python -m flask --app wsgi <command>` in the deployment's env (plus `env`), all at once; StepFailed if
        one fails."""
        procs = [
            (
                args,
                subprocess.Popen(
                    [self.python, "-m", "flask", "--app", "wsgi", *args],
                    cwd=ROOT,
                    env={**self.process_env(), **(env or {})},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
            for args in commands
        ]
        for args, proc in procs:
            output, _ = proc.communicate(timeout=90)
            if proc.returncode != 0:
                raise StepFailed(f"`flask {' '.join(args[:2])}` exited {proc.returncode}: {output.strip()[-400:]}")

    # -- HTTP ----------------------------------------------------------------------------------
    @staticmethod
    def http(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body) of a GET, or of a POST when data is given; HTTP errors are answers too."""
        request = urllib.request.Request(
            url, data=data, headers=headers or {}, method="POST" if data is not None else "GET"
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def post_signed(self, path: str, params: dict[str, str], *, sign: str | None = None) -> tuple[int, bytes]:
        """POST form params to a webhook, signed as Twilio signs them (against PUBLIC_BASE_URL), or with `sign`."""
        signature = self.validator.compute_signature(self.web + path, params) if sign is None else sign
        return self.http(
            self.web + path,
            data=urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        )

    def inbound(self, body: str, *, sid: str | None = None) -> dict[str, str]:
        """Form fields of an inbound SMS from the participant, as Twilio posts them."""
        return {
            "MessageSid": sid or "SM" + secrets.token_hex(16),
            "AccountSid": self.env["TWILIO_ACCOUNT_SID"],
            "From": PHONE,
            "To": self.env["TWILIO_FROM_NUMBER"],
            "Body": body,
            "NumMedia": "0",
        }

    # -- the stand-in --------------------------------------------------------------------------
    def messages(self) -> list[dict[str, Any]]:
        """Every create the stand-in accepted since its last reset."""
        return json.loads(self.http(self.standin + "/_standin/messages")[1])

    def stats(self) -> dict[str, int]:
        """{"requests_seen": n, "messages": n} of the stand-in."""
        return json.loads(self.http(self.standin + "/_standin/stats")[1])

    def control(self, command: dict[str, Any]) -> None:
        """Program the stand-in (reset, fail_next, hang_next, latency_ms)."""
        status, body = self.http(
            self.standin + "/_standin/control",
            data=json.dumps(command).encode(),
            headers={"Content-Type": "application/json"},
        )
        check(status == 200, f"the stand-in refused control {command}: {status} {body[:200]!r}")

    # -- database ------------------------------------------------------------------------------
    def rows(self, query: str, *params: Any) -> list[tuple]:
        """Rows of a read-only query."""
        return self.db.execute(query, params).fetchall()

    def one(self, query: str, *params: Any) -> Any:
        """The single value of a query."""
        row = self.db.execute(query, params).fetchone()
        return None if row is None else row[0]

    def table_counts(self) -> dict[str, int]:
        """Row count of every table of the deployment."""
        tables = [
            t
            for (t,) in self.rows(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
            )
        ]
        return {t: self.one(f'SELECT count(*) FROM "{t}"') for t in tables}

    def queue_due(
        self,
        bodies: list[str],
        *,
        phones: list[str] | None = None,
        participant: tuple[int, int] | None = None,
        purpose: str = "staff_alert",
    ) -> None:
        """Insert outbox rows due now, like the planner: to given numbers or to a participant (their phone on file)."""
        now = datetime.now(timezone.utc) - timedelta(seconds=1)
        participant_id, site_id = participant or (None, None)
        rows = [
            (
                participant_id,
                site_id,
                self.vault.encrypt(phones[i]) if phones else "",
                purpose,
                "e2e",
                f"e2e:{secrets.token_hex(8)}",
                body,
                now,
            )
            for i, body in enumerate(bodies)
        ]
        with self.db.cursor() as cur:
            cur.executemany(
                "INSERT INTO outboundmessage (participant_id, site_id, recipient_ciphertext, purpose, ref_type,"
                " dedupe_key, language, body, priority, due_at, next_attempt_at, status, provider_status, attempts,"
                " recoveries, last_error, claimed_by, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, 'en', %s, 5, %s, %s, 'planned', '', 0, 0, '', '', %s)",
                [(*r[:7], r[7], r[7], r[7]) for r in rows],
            )

    def statuses(self, like: str) -> Counter:
        """Outbox status counts of the rows whose body matches a LIKE pattern."""
        return Counter(
            dict(self.rows("SELECT status, count(*) FROM outboundmessage WHERE body LIKE %s GROUP BY status", like))
        )

    # -- processes -----------------------------------------------------------------------------
    def pid(self, name: str) -> int:
        """Pid (= process group) up-local.sh recorded for a process."""
        return int((self.state / "pids" / name).read_text().strip())

    def dispatcher_ids(self, name: str) -> list[str]:
        """Worker ids a dispatcher's log announced ("dispatcher <id> ready"), oldest first."""
        return re.findall(r"dispatcher (\S+) ready", (self.state / "logs" / f"{name}.log").read_text())

    def start_dispatcher(self, name: str) -> int:
        """Start a dispatcher exactly as up-local.sh does: supervised, own process group, log appended, pid recorded."""
        with open(self.state / "logs" / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                ["infra/supervise.sh", name, self.python, "-m", "flask", "--app", "wsgi", "dispatch"],
                cwd=ROOT,
                env=self.process_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (self.state / "pids" / name).write_text(f"{proc.pid}\n")
        return proc.pid


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[int]:
    """Pids of a process's children."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def reply_text(body: bytes) -> str:
    """The text of a TwiML reply ('' when it says nothing)."""
    return " ".join((m.text or "") for m in ET.fromstring(body).iter("Message"))


class Scenario:
    """The steps, sharing what earlier steps set up (participant, dose, reminder)."""

    def __init__(self, stack: Stack):
        self.s = stack
        self.participant_id = self.site_id = self.dose_id = 0
        self.reminder_sid = ""
        self.local_date = ""

    # 0 ------------------------------------------------------------------------------------------
    def shape(self) -> str:
        """web (2 workers), scheduler, two dispatchers and the stand-in are running."""
        s = self.s
        for name in ("standin", "web", "scheduler", "dispatch@1", "dispatch@2"):
            check(alive(s.pid(name)), f"{name} (pid {s.pid(name)}) is not running")
        workers = children(s.pid("web"))
        check(len(workers) == 2, f"gunicorn has {len(workers)} worker(s), expected 2")
        ids = [s.dispatcher_ids(f"dispatch@{i}") for i in (1, 2)]
        check(all(ids), "a dispatcher never logged 'dispatcher <id> ready'")
        url = s.env["DATABASE_URL"].rsplit("@", 1)[-1]
        return (
            f"web (gunicorn + {len(workers)} workers), scheduler, dispatchers {ids[0][-1]} and {ids[1][-1]}, "
            f"on {url} and {s.env['RATELIMIT_STORAGE_URI']}"
        )

    # 1 ------------------------------------------------------------------------------------------
    def reminder(self) -> str:
        """Enrolled via the CLI, reminder due now: exactly one reminder reaches the stand-in, sent by a dispatcher."""
        s = self.s
        # The first admin before anything: protocol, site and enrollment are changes made for a person.
        s.cli(
            ["staff", "create", "--email", ADMIN, "--role", "admin", "--reason", "end-to-end check: first admin"],
            env={"STAFF_PASSWORD": ADMIN_PASSWORD},
        )
        # Independent of each other, so side by side (each CLI start costs seconds on a busy machine).
        # No on-call number: the daily digest (08:00 local) then has no one to go to and stays out of the counts.
        s.cli(
            ["protocol", "load", f"protocols/{STUDY}.toml", *AS_ADMIN],
            [
                "sites",
                "create",
                "--code",
                "PKUPH",
                "--name",
                "PKU People's Hospital",
                "--tz",
                ZONE,
                "--phone",
                "+861088325555",
                *AS_ADMIN,
            ],
        )
        local = datetime.now(ZoneInfo(ZONE))
        self.local_date = local.date().isoformat()
        s.cli(
            [
                "participants",
                "enroll",
                "--study",
                STUDY,
                "--code",
                "E2E-001",
                "--arm",
                "il2",
                "--site",
                "PKUPH",
                "--phone",
                PHONE,
                "--tz",
                ZONE,
                "--lang",
                "en",
                "--reminder-time",
                local.strftime("%H:%M"),
                "--first-dose",
                self.local_date,
                *AS_ADMIN,
            ]
        )
        self.participant_id, self.site_id = s.rows("SELECT id, site_id FROM participant WHERE study_code = 'E2E-001'")[
            0
        ]
        self.dose_id = s.one("SELECT id FROM dose WHERE participant_id = %s AND seq = 1", self.participant_id)

        def sent_reminder():
            row = s.rows(
                "SELECT provider_sid, claimed_by, created_at FROM outboundmessage"
                f" WHERE purpose IN {REMINDERS} AND ref_id = %s"
                " AND provider_sid IS NOT NULL",
                self.dose_id,
            )
            return row[0] if row else None

        self.reminder_sid, claimed_by, planned_at = wait_until(
            sent_reminder, timeout=10, what="the reminder to be recorded as sent"
        )
        time.sleep(2)  # two more polls of each dispatcher: a second copy would show up now
        reminders = [m for m in s.messages() if m["To"] == PHONE and m["sid"] in self.reminder_sids()]
        check(len(reminders) == 1, f"{len(reminders)} reminders reached the stand-in, expected exactly 1")
        check(
            reminders[0]["sid"] == self.reminder_sid, "the reminder the stand-in got is not the one the outbox recorded"
        )
        dispatchers = {i for n in (1, 2) for i in s.dispatcher_ids(f"dispatch@{n}")}
        check(
            claimed_by in dispatchers,
            f"the reminder was claimed by {claimed_by!r}, not by one of the dispatchers {sorted(dispatchers)}",
        )
        # Planned by the enrol command, in the database's clock; received by the stand-in, same machine.
        after = (datetime.fromisoformat(reminders[0]["received_at"]) - planned_at).total_seconds()
        check(after < 5, f"the reminder reached the stand-in {after:.1f} s after it was planned, expected within 5 s")
        return (
            f"reminder for {self.local_date} reached the stand-in {after:.1f} s after enrolment planned it, "
            f"via {claimed_by}"
        )

    def reminder_sids(self) -> set[str]:
        """Provider SIDs of the participant's dose reminders."""
        return {
            sid
            for (sid,) in self.s.rows(
                f"SELECT provider_sid FROM outboundmessage WHERE participant_id = %s AND purpose IN {REMINDERS}"
                " AND provider_sid IS NOT NULL",
                self.participant_id,
            )
        }

    # 2 ------------------------------------------------------------------------------------------
    def confirm(self) -> str:
        """Signed "1" reads the dose back as taken and cancels the nudge; a replay has no second effect."""
        s = self.s
        params = s.inbound("1")
        status, body = s.post_signed("/sms/inbound", params)
        check(status == 200, f'signed "1" got HTTP {status}, expected 200')
        reply = reply_text(body)
        expected = f"Thank you. Recorded: injection for {self.local_date} taken."
        check(reply.startswith(expected), f"the TwiML reply reads {reply!r}, expected it to start with {expected!r}")
        state, source = s.rows("SELECT state, source FROM dose WHERE id = %s", self.dose_id)[0]
        check((state, source) == ("taken", "sms"), f"the dose is {state!r} from {source!r}, expected taken from sms")
        nudges = [
            st
            for (st,) in s.rows(
                "SELECT status FROM outboundmessage WHERE purpose = 'dose_nudge' AND ref_id = %s", self.dose_id
            )
        ]
        check(nudges == ["cancelled"], f"the dose's nudge rows are {nudges}, expected one, cancelled")

        before = s.table_counts()
        status, again = s.post_signed("/sms/inbound", params)  # Twilio retrying the webhook
        check(
            status == 200 and reply_text(again) == reply,
            f"the replayed request got {status} {reply_text(again)!r}, expected the same reply",
        )
        after = s.table_counts()
        changed = {t: (n, after[t]) for t, n in before.items() if after[t] != n}
        check(not changed, f"the replayed request changed row counts (before, after): {changed}")
        inbound = s.one("SELECT count(*) FROM inboundmessage WHERE message_sid = %s", params["MessageSid"])
        taken = s.one("SELECT count(*) FROM doseevent WHERE dose_id = %s AND to_state = 'taken'", self.dose_id)
        check(
            (inbound, taken) == (1, 1),
            f"{inbound} inbound row(s) and {taken} taken event(s) after the replay, expected 1 and 1",
        )
        return f"reply {reply!r}; nudge cancelled; replay: same reply, 1 inbound row, 1 taken event, no table changed"

    def bad_signature(self) -> str:
        """A wrong or missing signature gets 403 and writes nothing in any table."""
        s = self.s
        before = s.table_counts()
        params = s.inbound("1")
        forged = s.validator.compute_signature(s.web + "/sms/inbound", {**params, "Body": "2"})
        answers = [
            s.post_signed("/sms/inbound", params, sign=forged)[0],
            s.post_signed("/sms/inbound", params, sign="")[0],
            s.post_signed(
                "/sms/status", {"MessageSid": self.reminder_sid, "MessageStatus": "undelivered"}, sign="bogus"
            )[0],
        ]
        check(answers == [403, 403, 403], f"wrong/missing signatures got {answers}, expected 403 each")
        after = s.table_counts()
        changed = {t: (n, after[t]) for t, n in before.items() if after[t] != n}
        check(not changed, f"refused webhooks changed row counts (before, after): {changed}")
        return f"403 x3 (forged inbound, unsigned inbound, forged status); {len(before)} tables unchanged"

    # 7 ------------------------------------------------------------------------------------------
    def status_order(self) -> str:
        """Status callbacks "delivered" then a late "sent": the message stays delivered."""
        s = self.s
        codes = [
            s.post_signed(
                "/sms/status",
                {"MessageSid": self.reminder_sid, "MessageStatus": st, "AccountSid": s.env["TWILIO_ACCOUNT_SID"]},
            )[0]
            for st in ("delivered", "sent")
        ]
        check(codes == [204, 204], f"the status callbacks got {codes}, expected 204 and 204")
        row = s.rows("SELECT status, provider_status FROM outboundmessage WHERE provider_sid = %s", self.reminder_sid)[
            0
        ]
        check(
            row == ("delivered", "delivered"),
            f"the reminder is {row} after delivered+sent, expected ('delivered', 'delivered')",
        )
        callbacks = s.rows(
            "SELECT status, applied FROM statuscallback WHERE message_sid = %s ORDER BY id", self.reminder_sid
        )
        check(
            callbacks == [("delivered", True), ("sent", False)],
            f"callbacks recorded as {callbacks}, expected delivered applied, sent not",
        )
        return "delivered applied, the late 'sent' kept but not applied; reminder stays delivered"

    # 3 ------------------------------------------------------------------------------------------
    def stop_start(self) -> str:
        """STOP opts out: what is queued for them is cancelled, not sent, until START. Twilio answers both
        keywords itself (SMS_KEYWORD_REPLIES=twilio, the default), so our answers are empty and none is logged."""
        s = self.s
        status, body = s.post_signed("/sms/inbound", s.inbound("STOP"))
        check(status == 200 and reply_text(body) == "", f"STOP got {status} {reply_text(body)!r}, expected no reply")
        check(
            s.one("SELECT opted_out FROM participant WHERE id = %s", self.participant_id) is True,
            "STOP did not opt the participant out",
        )
        planned = s.one(
            "SELECT count(*) FROM outboundmessage WHERE participant_id = %s AND status = 'planned'", self.participant_id
        )
        check(planned == 0, f"{planned} message(s) still planned for the participant after STOP")
        help_reply = reply_text(s.post_signed("/sms/inbound", s.inbound("HELP"))[1])
        check(help_reply == "", f"HELP while opted out was answered {help_reply!r}, expected no reply")
        to_phone = sum(m["To"] == PHONE for m in s.messages())

        s.queue_due(
            ["e2e: queued while opted out"], participant=(self.participant_id, self.site_id), purpose="activation"
        )
        held = wait_until(
            lambda: [
                r
                for r in s.rows(
                    "SELECT status, claimed_by FROM outboundmessage WHERE body = 'e2e: queued while opted out'"
                )
                if r[0] not in ("planned", "sending")
            ],
            timeout=10,
            what="a dispatcher to handle the message queued while opted out",
        )
        check(held[0][0] == "cancelled", f"the message queued while opted out ended {held[0][0]!r}, expected cancelled")
        check(
            sum(m["To"] == PHONE for m in s.messages()) == to_phone,
            "something reached the participant's number while opted out",
        )

        status, body = s.post_signed("/sms/inbound", s.inbound("START"))
        check(status == 200 and reply_text(body) == "", f"START got {status} {reply_text(body)!r}, expected no reply")
        replies = s.one(
            "SELECT count(*) FROM outboundmessage WHERE participant_id = %s AND purpose = 'reply'"
            " AND body LIKE 'You are %%'",
            self.participant_id,
        )
        check(replies == 0, f"{replies} keyword answer(s) of ours logged; the carrier answers STOP and START")
        check(
            s.one("SELECT opted_out FROM participant WHERE id = %s", self.participant_id) is False,
            "START did not opt the participant in",
        )
        s.queue_due(["e2e: queued after START"], participant=(self.participant_id, self.site_id), purpose="activation")
        wait_until(
            lambda: any(m["Body"] == "e2e: queued after START" and m["To"] == PHONE for m in s.messages()),
            timeout=10,
            what="the message queued after START to reach the stand-in",
        )
        return (
            f"opted out; queued message cancelled by {held[0][1]}, nothing sent to the number; "
            "after START the next one arrived"
        )

    # 4 ------------------------------------------------------------------------------------------
    def retries(self) -> str:
        """500 then 200: sent once after 2 attempts; a 21610 refusal opts the participant out with no retry."""
        s = self.s
        s.control({"fail_next": {"status": 500, "message": "e2e: refused once"}})
        s.queue_due(["e2e: 500 then 200"], phones=["+8613900000001"])
        wait_until(
            lambda: s.rows(
                "SELECT 1 FROM outboundmessage WHERE body = 'e2e: 500 then 200' AND attempts = 1 AND status = 'planned'"
            ),
            timeout=10,
            what="the first attempt to be refused and a retry scheduled",
        )

        # While that retry waits out its backoff (5 s): Twilio says the participant has unsubscribed.
        s.control({"fail_next": {"status": 400, "code": 21610, "message": "Attempt to send to unsubscribed recipient"}})
        s.queue_due(["e2e: refused with 21610"], participant=(self.participant_id, self.site_id), purpose="activation")
        refused = wait_until(
            lambda: s.rows(
                "SELECT status, attempts, last_error_code FROM outboundmessage WHERE body = 'e2e: refused with 21610'"
                " AND status NOT IN ('planned', 'sending')"
            ),
            timeout=10,
            what="the 21610 refusal to be recorded",
        )
        refused_at = time.monotonic()
        check(refused[0] == ("failed", 1, 21610), f"the refused message is {refused[0]}, expected ('failed', 1, 21610)")
        check(
            s.one("SELECT opted_out FROM participant WHERE id = %s", self.participant_id) is True,
            "21610 did not opt the participant out",
        )
        alerts = s.one(
            "SELECT count(*) FROM alert WHERE participant_id = %s AND kind = 'opted_out'", self.participant_id
        )
        check(alerts == 2, f"{alerts} opted-out alert(s), expected 2 (the STOP and the 21610)")

        row = wait_until(
            lambda: s.rows(
                "SELECT attempts, sent_at - created_at FROM outboundmessage WHERE body = 'e2e: 500 then 200'"
                " AND status = 'sent'"
            ),
            timeout=20,
            what="the refused-once message to be sent on its retry",
        )[0]
        check(row[0] == 2, f"the refused-once message was sent after {row[0]} attempts, expected 2")
        time.sleep(
            max(0.0, refused_at + 6.5 - time.monotonic())
        )  # past the 5 s backoff (and a 1 s poll) a retry would have had
        bodies = Counter(m["Body"] for m in s.messages())
        check(
            bodies["e2e: 500 then 200"] == 1,
            f"the refused-once message reached the stand-in {bodies['e2e: 500 then 200']} times, expected once",
        )
        again = s.rows("SELECT status, attempts FROM outboundmessage WHERE body = 'e2e: refused with 21610'")[0]
        check(
            again == ("failed", 1) and bodies["e2e: refused with 21610"] == 0, f"the 21610 message was retried: {again}"
        )
        return (
            f"500 then 200: sent once, 2 attempts, {row[1].total_seconds():.1f} s after queueing; "
            "21610: failed after 1 attempt, participant opted out, nurses alerted, no retry in 6.5 s"
        )

    # 5 ------------------------------------------------------------------------------------------
    def crash(self) -> str:
        """SIGKILL one dispatcher mid-run, restart it: every message arrives, duplicates <= what it had in 'sending'."""
        s = self.s
        s.control({"reset": True})
        victim = s.dispatcher_ids("dispatch@1")[-1]
        pid = s.pid("dispatch@1")
        s.queue_due(
            [f"e2e crash {i}" for i in range(CRASH_TOTAL)], phones=[f"+86139{i:08d}" for i in range(CRASH_TOTAL)]
        )
        wait_until(
            lambda: (
                s.stats()["messages"] >= CRASH_TOTAL // 5
                and s.one("SELECT count(*) FROM outboundmessage WHERE status = 'sending' AND claimed_by = %s", victim)
            ),
            timeout=20,
            interval=0.02,
            what=f"dispatch@1 ({victim}) to be mid-batch with a fifth of the messages out",
        )
        os.killpg(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: not alive(pid), timeout=10, what="the killed dispatcher to be gone")
        in_flight = s.one("SELECT count(*) FROM outboundmessage WHERE status = 'sending' AND claimed_by = %s", victim)
        reached = s.stats()["messages"]
        check(
            reached < CRASH_TOTAL,
            f"all {CRASH_TOTAL} had reached the stand-in before the kill landed; nothing was left to recover",
        )

        # Restart once its rows count as stale (SENDING_STALE_AFTER_SECONDS): the new process takes them back
        # at start-up.
        stale = float(s.env.get("SENDING_STALE_AFTER_SECONDS", "300"))
        check(
            stale <= 30,
            f"SENDING_STALE_AFTER_SECONDS is {stale:g}; the crash step needs a small value (infra/e2e-local.sh sets 5)",
        )
        time.sleep(max(0.0, killed_at + stale + 0.5 - time.monotonic()))
        new_pid = s.start_dispatcher("dispatch@1")
        restarted = wait_until(
            lambda: [i for i in s.dispatcher_ids("dispatch@1") if i != victim],
            timeout=20,
            what="the restarted dispatcher to log 'ready'",
        )[-1]
        wait_until(
            lambda: s.statuses("e2e crash %") == Counter(sent=CRASH_TOTAL),
            timeout=40,
            what=f"all {CRASH_TOTAL} messages to be recorded as sent after the restart",
        )
        received = Counter(m["Body"] for m in s.messages() if m["Body"].startswith("e2e crash "))
        missing = CRASH_TOTAL - len(received)
        check(missing == 0, f"{missing} of {CRASH_TOTAL} messages never reached the stand-in")
        duplicates = sum(received.values()) - CRASH_TOTAL
        check(
            duplicates <= in_flight,
            f"{duplicates} duplicates, more than the {in_flight} the killed dispatcher had in 'sending'",
        )
        recoveries = s.one("SELECT max(recoveries) FROM outboundmessage WHERE body LIKE 'e2e crash %%'")
        check(recoveries <= 1, f"a message was recovered {recoveries} times, expected at most once")
        check(alive(new_pid), "the restarted dispatcher is not running")
        return (
            f"killed {victim} with {reached}/{CRASH_TOTAL} out and {in_flight} in 'sending'; restarted as {restarted}; "
            f"all {CRASH_TOTAL} arrived, {duplicates} duplicate(s) (<= {in_flight})"
        )

    # 6 ------------------------------------------------------------------------------------------
    def fan_out(self) -> str:
        """2,000 due messages, two dispatchers: each reaches the stand-in exactly once and both took part."""
        s = self.s
        s.control({"reset": True})
        workers = {s.dispatcher_ids(f"dispatch@{i}")[-1] for i in (1, 2)}
        s.queue_due([f"e2e bulk {i}" for i in range(BULK_TOTAL)], phones=[f"+86137{i:08d}" for i in range(BULK_TOTAL)])
        started = time.monotonic()
        wait_until(
            lambda: s.statuses("e2e bulk %") == Counter(sent=BULK_TOTAL),
            timeout=60,
            interval=0.25,
            what=f"all {BULK_TOTAL} messages to be recorded as sent",
        )
        elapsed = time.monotonic() - started
        received = Counter(m["Body"] for m in s.messages() if m["Body"].startswith("e2e bulk "))
        check(len(received) == BULK_TOTAL, f"{BULK_TOTAL - len(received)} of {BULK_TOTAL} never reached the stand-in")
        twice = sum(1 for n in received.values() if n > 1)
        check(twice == 0, f"{twice} message(s) reached the stand-in more than once")
        claimed = dict(
            s.rows("SELECT claimed_by, count(*) FROM outboundmessage WHERE body LIKE 'e2e bulk %%' GROUP BY claimed_by")
        )
        check(set(claimed) == workers, f"claimed by {claimed}, expected both running dispatchers {sorted(workers)}")
        attempts = s.one("SELECT max(attempts) FROM outboundmessage WHERE body LIKE 'e2e bulk %%'")
        check(attempts == 1, f"a message took {attempts} attempts, expected 1 each")
        split = " + ".join(str(claimed[w]) for w in sorted(workers))
        return (
            f"{BULK_TOTAL} sent exactly once in {elapsed:.1f} s ({BULK_TOTAL / elapsed:.0f} msg/s, "
            f"cap {s.env.get('SEND_RATE_PER_SECOND')}/s), split {split} between the two dispatchers"
        )

    # 8 ------------------------------------------------------------------------------------------
    def ops(self) -> str:
        """/readyz is 200 with status ok; /metrics counts sends and shows the outbox gauges."""
        s = self.s
        status, body = s.http(s.web + "/readyz")
        ready = json.loads(body)
        check(status == 200 and ready.get("status") == "ok", f"/readyz answered {status} {ready}")
        status, body = s.http(s.web + "/metrics")
        check(status == 200, f"/metrics answered {status}")
        text = body.decode()
        sent = sum(float(v) for v in re.findall(r"^trial_messages_sent_total(?:\{[^}]*\})? (\S+)$", text, re.M))
        check(sent > 0, "/metrics shows trial_messages_sent_total 0 or not at all")
        gauges = {
            g: re.search(rf"^{g}(?:\{{[^}}]*\}})? (\S+)$", text, re.M)
            for g in ("trial_outbox_due", "trial_outbox_sending")
        }
        check(all(gauges.values()), f"/metrics lacks {[g for g, m in gauges.items() if not m]}")
        return (
            f"/readyz ok ({ready.get('migrations')}); trial_messages_sent_total {sent:g}, "
            f"trial_outbox_due {gauges['trial_outbox_due'].group(1)}, "
            f"trial_outbox_sending {gauges['trial_outbox_sending'].group(1)}"
        )

    # 9 ------------------------------------------------------------------------------------------
    def roles(self) -> str:
        """Every process connects as the runtime role, which may not disable, truncate, update or delete audit rows."""
        s = self.s
        runtime = s.one("SELECT current_user")
        users = Counter(
            dict(s.rows("SELECT usename, count(*) FROM pg_stat_activity WHERE datname = current_database() GROUP BY 1"))
        )
        check(set(users) == {runtime}, f"connections to the database as {dict(users)}, expected only {runtime}")
        owner = s.one("SELECT tableowner FROM pg_tables WHERE tablename = 'audit_entry'")
        check(owner != runtime, f"the runtime role {runtime} owns audit_entry")
        before = s.one("SELECT count(*) FROM audit_entry")
        check(before > 0, "the scenario left no audit rows")
        refused = []
        for statement in (
            "ALTER TABLE audit_entry DISABLE TRIGGER USER",
            "TRUNCATE audit_entry",
            "UPDATE audit_entry SET reason = 'forged'",
            "DELETE FROM audit_entry",
        ):
            try:
                s.db.execute(statement)
            except psycopg.errors.InsufficientPrivilege:
                refused.append(statement.split()[0])
                continue
            raise StepFailed(f"the runtime role {runtime} was allowed to {statement!r}")
        check(s.one("SELECT count(*) FROM audit_entry") == before, "the audit trail changed")
        return (
            f"{sum(users.values())} connections, all as {runtime} (audit_entry owned by {owner}); "
            f"{', '.join(refused)} of {before} audit rows refused"
        )


STEPS = [
    ("stack shape", Scenario.shape),
    ("1 reminder due now reaches the stand-in once, via a dispatcher", Scenario.reminder),
    ("2 signed '1' confirms the dose, replay has no second effect", Scenario.confirm),
    ("2 bad signatures get 403 and write nothing", Scenario.bad_signature),
    ("7 delivered then a late 'sent' stays delivered", Scenario.status_order),
    ("3 STOP silences the number until START", Scenario.stop_start),
    ("4 500 then 200 is sent once after 2 attempts; 21610 opts out, no retry", Scenario.retries),
    ("5 SIGKILL a dispatcher mid-run, restart it: nothing lost, duplicates bounded", Scenario.crash),
    ("6 2,000 due messages through both dispatchers exactly once", Scenario.fan_out),
    ("8 /readyz and /metrics", Scenario.ops),
    ("9 least privilege: the runtime role cannot change the audit trail", Scenario.roles),
]


def main(argv: list[str] | None = None) -> int:
    """Run every step in order; stop at the first that fails and name it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, type=Path, help="the deployment's TRIAL_LOCAL_DIR")
    args = parser.parse_args(argv)
    scenario = Scenario(Stack(args.state))
    started = time.monotonic()
    for name, step in STEPS:
        t0 = time.monotonic()
        try:
            detail = step(scenario)
        except StepFailed as exc:
            print(f"FAIL  step '{name}': {exc}", flush=True)
            return 1
        except (
            Exception
        ) as exc:  # a broken surface (HTTP down, bad JSON) fails the step, with the trace for whoever reads it
            traceback.print_exc()
            print(f"FAIL  step '{name}': {type(exc).__name__}: {exc}", flush=True)
            return 1
        print(f"ok    {name} ({time.monotonic() - t0:.1f} s): {detail}", flush=True)
    print(f"PASS: all {len(STEPS)} steps held in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
