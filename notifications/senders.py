"""Outbound SMS: one sender interface with Twilio, console and recording backends."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from notifications.provider_errors import is_retryable_http, is_unsubscribed

logger = logging.getLogger("notifications.sms")

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class SendResult:
    """What the provider said when it took a message."""

    provider_sid: str
    status: str  # provider's initial status: 'queued', 'accepted' or 'sent'


class SmsSendError(Exception):
    """A send that did not reach the provider or was refused."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        transient: bool,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.transient = transient
        self.retry_after = retry_after

    @property
    def opted_out(self) -> bool:
        """True when the recipient replied STOP and Twilio refuses to message them."""
        return is_unsubscribed(self.code)


class SmsSender(Protocol):
    """Anything that can hand one SMS to a provider."""

    name: str

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Hand one SMS to the provider or raise SmsSendError."""
        ...


class _RoutedHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, optionally aimed at another base URL, with no retries."""

    def __init__(self, *, base_url: str | None, timeout: float):
        super().__init__(pool_connections=True, timeout=timeout)
        self._base = urlsplit(base_url.rstrip("/")) if base_url else None
        # We own retries (the outbox decides), so the transport must never resend a create.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        if self._base is not None and self._base.hostname in _LOOPBACK_HOSTS:
            # A local stand-in must not be sent through an HTTP(S)_PROXY from the environment.
            self.session.trust_env = False
        self.last_response: TwilioResponse | None = None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        """Send through the SDK's client after swapping the scheme and host if configured."""
        if self._base is not None:
            parts = urlsplit(url)
            url = urlunsplit(
                (self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query, parts.fragment)
            )
        self.last_response = None
        response = super().request(method, url, *args, **kwargs)
        # Kept so a refused send can report Retry-After, which the SDK exception drops.
        self.last_response = response
        return response


class TwilioSmsSender:
    """Send through Twilio's Programmable Messaging API with the official SDK."""

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_base_url: str | None = None,
        validity_period_seconds: int | None = None,
        timeout_seconds: float = 10.0,
    ):
        if not account_sid or not auth_token:
            raise ValueError("TwilioSmsSender needs both an account SID and an auth token.")
        if not from_number and not messaging_service_sid:
            raise ValueError("TwilioSmsSender needs a from number or a messaging service SID.")
        if validity_period_seconds is not None and validity_period_seconds <= 0:
            raise ValueError("The validity period must be a positive number of seconds.")
        if timeout_seconds <= 0:
            raise ValueError("The Twilio timeout must be a positive number of seconds.")
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._from_number = from_number or None
        self._messaging_service_sid = messaging_service_sid or None
        self._api_base_url = api_base_url or None
        self._validity_period = validity_period_seconds
        self._timeout = timeout_seconds
        # TwilioHttpClient stores each response on itself before returning it, so two threads
        # sharing one client can swap responses (and message SIDs). One client per thread.
        self._local = threading.local()

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            http_client = _RoutedHttpClient(base_url=self._api_base_url, timeout=self._timeout)
            client = Client(self._account_sid, self._auth_token, http_client=http_client)
            self._local.client = client
        return client

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Create one Twilio message; raise SmsSendError if it was not accepted."""
        kwargs: dict[str, Any] = {"to": to, "body": body}
        if self._messaging_service_sid:
            kwargs["messaging_service_sid"] = self._messaging_service_sid
        else:
            kwargs["from_"] = self._from_number
        if status_callback:
            kwargs["status_callback"] = status_callback
        if self._validity_period is not None:
            kwargs["validity_period"] = self._validity_period
        client = self._client()
        try:
            message = client.messages.create(**kwargs)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _refusal(exc, client.http_client.last_response) from exc
        except requests.Timeout as exc:
            # Ambiguous: Twilio may have created the message before we stopped waiting.
            raise SmsSendError(f"Twilio did not answer within {self._timeout:g} s", transient=True) from exc
        except requests.RequestException as exc:
            raise SmsSendError(f"Could not reach Twilio ({type(exc).__name__})", transient=True) from exc
        return SendResult(provider_sid=message.sid, status=str(message.status))


def _refusal(exc: TwilioRestException | TwilioServiceException, response: TwilioResponse | None) -> SmsSendError:
    """Map a Twilio error response to SmsSendError without echoing the number or body."""
    status = int(exc.status)
    # The SDK falls back to the HTTP status when the body has no Twilio code.
    code = exc.code if exc.code is not None and exc.code != status else None
    retry_after = None
    if response is not None and status == 429:
        retry_after = _seconds(response.headers.get("Retry-After"))
    # Twilio's own message can quote the recipient's number, so it is not repeated here.
    described = f"error {code}" if code is not None else "no error code"
    return SmsSendError(
        f"Twilio refused the message: HTTP {status}, {described}",
        code=code,
        http_status=status,
        transient=is_retryable_http(status),
        retry_after=retry_after,
    )


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP-date; the caller's own backoff applies


class ConsoleSmsSender:
    """Pretend to send: nothing leaves the machine, one log line without number or text."""

    name = "console"

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Log that a message would have been sent and return a fake SID."""
        sid = "CONSOLE" + secrets.token_hex(16)
        logger.info("SMS not sent (console backend): sid=%s body_length=%d", sid, len(body))
        return SendResult(provider_sid=sid, status="sent")


class RecordingSmsSender:
    """Keep sent messages in memory for tests, and fail on request."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str | None]] = []
        self.attempts = 0
        self._failures: list[SmsSendError] = []
        self._lock = threading.Lock()

    def fail_next(self, error: SmsSendError, count: int = 1) -> None:
        """Raise ``error`` for the next ``count`` sends instead of recording them."""
        with self._lock:
            self._failures.extend([error] * count)

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Record the message, or raise the next scripted failure."""
        with self._lock:
            self.attempts += 1
            if self._failures:
                raise self._failures.pop(0)
            self.sent.append((to, body, status_callback))
        return SendResult(provider_sid="REC" + secrets.token_hex(16), status="queued")


def build_sender(settings: Mapping[str, Any]) -> SmsSender:
    """Pick the SMS backend named by settings['SMS_BACKEND'] (default 'console')."""
    backend = str(settings.get("SMS_BACKEND") or "console").strip().lower()
    if backend == "console":
        return ConsoleSmsSender()
    if backend == "recording":
        return RecordingSmsSender()
    if backend != "twilio":
        raise ValueError(f"SMS_BACKEND must be 'console', 'twilio' or 'recording', not {backend!r}.")
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        if not settings.get(key):
            raise ValueError(f"SMS_BACKEND is 'twilio' but {key} is not set.")
    if not settings.get("TWILIO_FROM_NUMBER") and not settings.get("TWILIO_MESSAGING_SERVICE_SID"):
        raise ValueError(
            "SMS_BACKEND is 'twilio' but neither TWILIO_FROM_NUMBER nor TWILIO_MESSAGING_SERVICE_SID is set."
        )
    timeout = _number(settings, "TWILIO_TIMEOUT", float)
    return TwilioSmsSender(
        account_sid=settings["TWILIO_ACCOUNT_SID"],
        auth_token=settings["TWILIO_AUTH_TOKEN"],
        from_number=settings.get("TWILIO_FROM_NUMBER") or None,
        messaging_service_sid=settings.get("TWILIO_MESSAGING_SERVICE_SID") or None,
        api_base_url=settings.get("TWILIO_API_BASE_URL") or None,
        validity_period_seconds=_number(settings, "TWILIO_VALIDITY_PERIOD", int),
        timeout_seconds=10.0 if timeout is None else timeout,
    )


def _number(settings: Mapping[str, Any], key: str, kind: type) -> Any:
    value = settings.get(key)
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number of seconds, got {value!r}.") from None
