"""A local stand-in for the part of Twilio's REST API that we call (message create).

Runs in-process for tests (``with TwilioStandIn() as standin: ...``) or in the foreground for
benchmarks and multi-process tests (``python -m notifications.twilio_standin --port 8099``).
Other processes steer it through ``/_standin/control`` and read what it accepted from
``/_standin/messages`` (``?since=N``: only those from the N-th on, for cheap polling).
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import re
import secrets
import sys
import threading
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

_CREATE_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account_sid>[^/]+)/Messages\.json$")
_MESSAGES_PATH = "/_standin/messages"
_CONTROL_PATH = "/_standin/control"
_STATS_PATH = "/_standin/stats"
_FIELDS = ("To", "From", "MessagingServiceSid", "Body", "StatusCallback", "ValidityPeriod")


class TwilioStandIn:
    """Local HTTP server answering Twilio's ``Messages.json`` create like Twilio would."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0):
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        # One FIFO of programmed behaviours so tests can script "hang, then 500, then ok".
        self._actions: collections.deque[dict[str, Any]] = collections.deque()
        self._latency_s = latency_ms / 1000.0
        self._requests_seen = 0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "TwilioStandIn":
        """Bind the socket and serve from a daemon thread; returns self."""
        self._stopping.clear()
        self._server = _Server((self._host, self._port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="twilio-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release any request still hanging."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def serve_forever(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Bind, call ``on_ready(url)``, then serve in the calling thread (for the CLI)."""
        self._server = _Server((self._host, self._port), _Handler, self)
        if on_ready is not None:
            on_ready(self.url)
        try:
            self._server.serve_forever(poll_interval=0.5)
        finally:
            self._stopping.set()
            self._server.server_close()

    def __enter__(self) -> "TwilioStandIn":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to give the SDK instead of ``https://api.twilio.com``."""
        if self._server is None:
            raise RuntimeError("TwilioStandIn is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- programming and inspection ----------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Snapshot of accepted message creates, oldest first."""
        return self.messages_since(0)

    def messages_since(self, start: int) -> list[dict[str, Any]]:
        """Accepted message creates from index ``start`` (0-based, oldest first) on."""
        with self._lock:
            return [dict(m) for m in self._messages[start:]]

    def fail_next(
        self,
        *,
        status: int,
        code: int | None = None,
        message: str = "",
        count: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``count`` creates with a Twilio JSON error instead of accepting them."""
        action = {"kind": "fail", "status": int(status), "code": code, "message": message, "retry_after": retry_after}
        with self._lock:
            self._actions.extend(dict(action) for _ in range(count))

    def hang_next(self, seconds: float, count: int = 1) -> None:
        """Accept the next ``count`` creates but answer only after ``seconds``.

        The message is recorded before the pause, like a real provider that got the request
        while the client gave up waiting: a timed-out send may still have been delivered.
        """
        with self._lock:
            self._actions.extend({"kind": "hang", "seconds": float(seconds)} for _ in range(count))

    def set_latency(self, ms: float) -> None:
        """Delay every create answer by ``ms`` milliseconds."""
        with self._lock:
            self._latency_s = float(ms) / 1000.0

    def reset(self) -> None:
        """Forget recorded messages, pending behaviours, latency and the request count."""
        with self._lock:
            self._messages.clear()
            self._actions.clear()
            self._latency_s = 0.0
            self._requests_seen = 0

    def requests_seen(self) -> int:
        """Number of create requests received, refused ones included."""
        with self._lock:
            return self._requests_seen

    # -- used by the handler -----------------------------------------------------------------

    def _next_action(self, *, authenticated: bool) -> tuple[dict[str, Any] | None, float]:
        # Unauthenticated requests are counted but must not use up a scripted behaviour.
        with self._lock:
            self._requests_seen += 1
            action = self._actions.popleft() if self._actions and authenticated else None
            return action, self._latency_s

    def _record(self, account_sid: str, form: dict[str, str]) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        record = {field: form.get(field) for field in _FIELDS}
        record["sid"] = "SM" + secrets.token_hex(16)
        record["account_sid"] = account_sid
        record["received_at"] = now.isoformat()
        with self._lock:
            self._messages.append(record)
        return _message_resource(record, now)

    def _wait(self, seconds: float) -> None:
        # An Event rather than time.sleep so stop() does not wait for hanging requests.
        if seconds > 0:
            self._stopping.wait(seconds)

    def _apply_control(self, command: dict[str, Any]) -> None:
        if command.get("reset"):
            self.reset()
        if "latency_ms" in command:
            self.set_latency(float(command["latency_ms"]))
        if "fail_next" in command:
            self.fail_next(**command["fail_next"])
        if "hang_next" in command:
            self.hang_next(**command["hang_next"])


def _message_resource(record: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Shape a recorded create as Twilio's Message resource JSON."""
    body = record["Body"] or ""
    sid, account_sid = record["sid"], record["account_sid"]
    uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"
    # GSM-7 fits 160 chars (153 per part); anything else is UCS-2 at 70 (67 per part).
    single, multi = (160, 153) if body.isascii() else (70, 67)
    segments = 1 if len(body) <= single else -(-len(body) // multi)
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": format_datetime(now),
        "date_sent": None,
        "date_updated": format_datetime(now),
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": record["From"],
        "messaging_service_sid": record["MessagingServiceSid"],
        "num_media": "0",
        "num_segments": str(segments),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if record["MessagingServiceSid"] and not record["From"] else "queued",
        "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        "to": record["To"],
        "uri": uri,
    }


def _error_body(status: int, code: int | None, message: str) -> dict[str, Any]:
    code = code if code is not None else status
    return {
        "code": code,
        "message": message or f"Stand-in refused the request with HTTP {status}",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Bench clients open many connections at once; the default backlog of 5 drops them.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type, standin: TwilioStandIn):
        self.standin = standin
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-connection (the crash benchmarks SIGKILL senders) is no error of the stand-in's.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK's pooled session reuses connections
    # Headers and body in one buffered write, sent at once: split small writes meet the
    # client's delayed ACK and cost 40 ms per request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # Request lines carry account SIDs and thousands of lines per second; stay quiet.
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        parts = urlsplit(self.path)
        path = parts.path
        standin = self.server.standin
        if path == _MESSAGES_PATH:
            since = parse_qs(parts.query, keep_blank_values=True).get("since", ["0"])[-1]
            if not (since.isascii() and since.isdigit()):
                message = f"since must be a whole number >= 0, not {since!r}"
                self._send_json(400, {"ok": False, "error": message})
                return
            self._send_json(200, standin.messages_since(int(since)))
        elif path == _STATS_PATH:
            self._send_json(200, {"requests_seen": standin.requests_seen(), "messages": len(standin.messages)})
        else:
            self._send_json(404, _error_body(404, 20404, "The requested resource was not found"))

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        raw = self._read_body()
        path = urlsplit(self.path).path
        if path == _CONTROL_PATH:
            self._control(raw)
            return
        match = _CREATE_PATH.match(path)
        if match is None:
            self._send_json(404, _error_body(404, 20404, "The requested resource was not found"))
            return
        self._create(match["account_sid"], raw)

    def _control(self, raw: bytes) -> None:
        try:
            command = json.loads(raw or b"{}")
            self.server.standin._apply_control(command)
        except (ValueError, TypeError) as exc:
            self._send_json(400, {"ok": False, "error": str(exc)})
            return
        self._send_json(200, {"ok": True})

    def _create(self, account_sid: str, raw: bytes) -> None:
        standin = self.server.standin
        authenticated = _has_basic_auth(self.headers.get("Authorization", ""))
        action, latency_s = standin._next_action(authenticated=authenticated)
        if not authenticated:
            self._send_json(401, _error_body(401, 20003, "Authenticate"))
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        if action is not None and action["kind"] == "fail":
            standin._wait(latency_s)
            headers = {}
            if action["retry_after"] is not None:
                headers["Retry-After"] = f"{action['retry_after']:g}"
            self._send_json(action["status"], _error_body(action["status"], action["code"], action["message"]), headers)
            return
        problem = _validate(form)
        if problem is not None:
            standin._wait(latency_s)
            self._send_json(400, _error_body(400, *problem))
            return
        resource = standin._record(account_sid, form)
        delay = latency_s + (action["seconds"] if action is not None else 0.0)
        standin._wait(delay)
        self._send_json(201, resource)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (timeout test); nothing left to tell it.
            self.close_connection = True


def _has_basic_auth(header: str) -> bool:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return False
    try:
        user, sep, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except ValueError:
        return False
    return bool(user and sep and password)


def _validate(form: dict[str, str]) -> tuple[int, str] | None:
    """Return Twilio's (code, message) for a create it would refuse, else None."""
    if not form.get("To"):
        return 21604, "A 'To' phone number is required."
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return 21603, "A 'From' phone number is required."
    if not form.get("Body"):
        return 21602, "Message body is required."
    return None


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    standin = TwilioStandIn(host=args.host, port=args.port, latency_ms=args.latency_ms)

    def announce(url: str) -> None:
        # The first stdout line tells a parent process which port was bound (--port 0).
        print(f"twilio stand-in listening on {url}", flush=True)

    try:
        standin.serve_forever(on_ready=announce)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
