"""B9's load generators: participants replying to the reminders they got, and nurses reading their pages.

Both run as threads in the bench process. The reply generator polls the Twilio stand-in for what it
accepted (``/_standin/messages?since=N``), picks a share of the reminders and answers each once, as a
signed Twilio webhook, after a random delay; a few answers are posted again with the same MessageSid
(Twilio's retries), which must be processed once. A nurse signs in like a browser (GET the form, POST
it with its CSRF token, keep the session cookie) and loads the dashboard and the alert queue in turn.
"""

from __future__ import annotations

import heapq
import http.client
import http.cookiejar
import json
import random
import re
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import datetime

# What participants answer, with weights: a dose taken ("1" / "YES"), not taken, a VAS score, an adverse
# event, opt-out. A bare number is a score only right after a VAS prompt, so scores carry their "V".
AE_TEXTS = (
    "AE headache and mild fever since this afternoon",
    "AE 注射部位红肿",
    "AE rash on both arms",
    "不良反应 恶心 呕吐",
)
MIX = (("taken", 45), ("yes", 15), ("not_taken", 5), ("vas", 22), ("ae", 8), ("stop", 5))
OUR_NUMBER = "+15005550006"  # the number the reminders come from (common.twilio_env) and replies go to


def reply_body(kind: str, rng: random.Random) -> str:
    """One reply of this kind, as a participant would type it."""
    if kind == "taken":
        return "1"
    if kind == "yes":
        return "YES"
    if kind == "not_taken":
        return "2"
    if kind == "vas":
        return f"V {rng.randint(0, 20) / 2:g}"
    if kind == "ae":
        return rng.choice(AE_TEXTS)
    return "STOP"


class ReplyGenerator:
    """Answers a share of the reminders the stand-in accepted, each once after a random delay within `within` s,
    and replays `replay_share` of the answers (same MessageSid, 1-5 s later)."""

    def __init__(
        self,
        *,
        standin_url: str,
        port: int,
        token: str,
        public_base_url: str,
        reminder_bodies: set[str],
        share: float,
        within: float,
        replay_share: float,
        senders: int = 8,
        poll: float = 0.5,
        seed: int = 9,
    ):
        from twilio.request_validator import RequestValidator

        self.standin_url, self.port = standin_url, port
        self.validator = RequestValidator(token)
        self.signed_url = public_base_url.rstrip("/") + "/sms/inbound"
        self.reminder_bodies = reminder_bodies
        self.share, self.within, self.replay_share = share, within, replay_share
        self.poll = poll
        self.rng = random.Random(seed)
        self.seen = 0  # stand-in messages read so far (the next `since`)
        self.reminders_seen = 0
        self.answered: set[str] = set()  # phones already given their one answer
        self.kinds: Counter[str] = Counter()
        self.replays_planned = 0
        self.posted: list[dict] = []  # one per POST: sid, kind, replay, status, latency_s, late_s
        self.poll_errors = 0
        self._queue: list[tuple[float, int, dict]] = []  # (send at, tiebreak, request)
        self._count = 0
        self._cv = threading.Condition()
        self._no_more = threading.Event()  # no new replies will be planned
        self._planning_done = False
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="reply-poller", daemon=True)
        self._senders = [threading.Thread(target=self._send_loop, daemon=True) for _ in range(senders)]

    # -- planning -------------------------------------------------------------------------------------------
    def _poll_once(self) -> None:
        url = f"{self.standin_url}/_standin/messages?since={self.seen}"
        try:
            messages = json.loads(urllib.request.urlopen(url, timeout=30).read())
        except OSError:
            self.poll_errors += 1
            return
        self.seen += len(messages)
        now = time.monotonic()
        for message in messages:
            phone = message.get("To") or ""
            if phone not in self.reminder_bodies:  # participants' phones: what they get now is the reminder
                continue
            self.reminders_seen += 1
            if phone in self.answered or self.rng.random() >= self.share:
                continue
            self.answered.add(phone)
            kind = self.rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
            self.kinds[kind] += 1
            sid = f"SM{len(self.answered):032x}"
            request = {"sid": sid, "kind": kind, "phone": phone, "body": reply_body(kind, self.rng), "replay": False}
            at = now + self.rng.uniform(0, self.within)
            self._push(at, request)
            if self.rng.random() < self.replay_share:
                self.replays_planned += 1
                self._push(at + self.rng.uniform(1, 5), {**request, "replay": True})

    def _push(self, at: float, request: dict) -> None:
        with self._cv:
            self._count += 1
            heapq.heappush(self._queue, (at, self._count, request))
            self._cv.notify()

    def _poll_loop(self) -> None:
        while not self._no_more.is_set():
            self._poll_once()
            self._no_more.wait(self.poll)
        self._poll_once()  # what arrived between the last poll and finish()
        with self._cv:
            self._planning_done = True
            self._cv.notify_all()

    # -- sending --------------------------------------------------------------------------------------------
    def _next(self) -> tuple[float, dict] | None:
        with self._cv:
            while not self._stop.is_set():
                if self._queue and self._queue[0][0] <= time.monotonic():
                    at, _, request = heapq.heappop(self._queue)
                    return at, request
                if not self._queue and self._planning_done:
                    return None
                wait = self._queue[0][0] - time.monotonic() if self._queue else 0.5
                self._cv.wait(max(0.001, min(wait, 0.5)))
        return None

    def _send_loop(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while (item := self._next()) is not None:
            at, request = item
            params = {
                "MessageSid": request["sid"],
                "SmsSid": request["sid"],
                "AccountSid": "AC" + "0" * 32,
                "From": request["phone"],
                "To": OUR_NUMBER,
                "Body": request["body"],
                "NumMedia": "0",
                "NumSegments": "1",
                "SmsStatus": "received",
                "ApiVersion": "2010-04-01",
            }
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": self.validator.compute_signature(self.signed_url, params),
            }
            started = time.monotonic()
            # A keep-alive connection the server closed while idle fails at once (BrokenPipe, RemoteDisconnected):
            # sent again on a new one, as Twilio retries; the same MessageSid keeps it harmless.
            for attempt in range(2):
                try:
                    conn.request("POST", "/sms/inbound", urllib.parse.urlencode(params), headers)
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                    break
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    status = type(exc).__name__
            done = time.monotonic()
            with self._cv:
                self.posted.append(
                    {
                        "sid": request["sid"],
                        "kind": request["kind"],
                        "replay": request["replay"],
                        "status": status,
                        "attempts": attempt + 1,
                        "latency_s": done - started,
                        "late_s": started - at,  # how far behind its planned moment the generator sent it
                    }
                )
        conn.close()

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> "ReplyGenerator":
        """Begin polling and sending."""
        self._poller.start()
        for thread in self._senders:
            thread.start()
        return self

    def finish(self, timeout: float) -> bool:
        """Plan nothing more (after one last poll), send what is planned, and return whether all went out in time."""
        self._no_more.set()
        self._poller.join(timeout=60)
        deadline = time.monotonic() + timeout
        for thread in self._senders:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        finished = not any(t.is_alive() for t in self._senders)
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        return finished


class Nurse:
    """A signed-in nurse who loads each of `pages` every `every` seconds until stopped."""

    _CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')

    def __init__(self, *, base_url: str, email: str, password: str, pages: dict[str, str], every: float):
        self.base_url, self.email, self.password = base_url.rstrip("/"), email, password
        self.pages, self.every = pages, every
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.samples: dict[str, list[tuple[float, int | str]]] = {name: [] for name in pages}  # (latency, status)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"nurse-{email}", daemon=True)

    def log_in(self) -> None:
        """GET the sign-in form, POST it with its CSRF token; raises unless the dashboard follows."""
        with self.opener.open(self.base_url + "/login", timeout=30) as response:
            html = response.read().decode()
        found = self._CSRF.search(html)
        if not found:
            raise RuntimeError("no csrf_token on the sign-in page")
        form = {"csrf_token": found.group(1) or found.group(2), "email": self.email, "password": self.password}
        with self.opener.open(self.base_url + "/login", data=urllib.parse.urlencode(form).encode(), timeout=30) as r:
            r.read()
            if urllib.parse.urlsplit(r.geturl()).path.startswith("/login"):
                raise RuntimeError(f"sign-in refused for {self.email}")

    def _load(self, path: str) -> tuple[float, int | str]:
        started = time.monotonic()
        try:
            with self.opener.open(self.base_url + path, timeout=60) as response:
                response.read()
                status: int | str = response.status
                if urllib.parse.urlsplit(response.geturl()).path.startswith("/login"):
                    status = "signed out"
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:
            status = type(exc).__name__
        return time.monotonic() - started, status

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            for name, path in self.pages.items():
                self.samples[name].append(self._load(path))
            self._stop.wait(max(0.0, self.every - (time.monotonic() - began)))

    def start(self) -> "Nurse":
        """Sign in, then begin loading pages."""
        self.log_in()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the page load in progress."""
        self._stop.set()
        self._thread.join(timeout=120)


def max_in_window(stamps: list[float], width: float = 1.0) -> int:
    """The most timestamps within any window of `width` seconds (sliding, start at a timestamp)."""
    ordered, best, lo = sorted(stamps), 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def timestamp(iso: str) -> float:
    """Seconds since the epoch of an ISO time the stand-in recorded."""
    return datetime.fromisoformat(iso).timestamp()
