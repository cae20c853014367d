"""Logs: one line per event, a request id on each, JSON when LOG_FORMAT=json, no personal data.

What keeps personal data out: we log paths (never query strings or bodies), ids and counts; the
Twilio SDK's per-request chatter is silenced; and as a last net every line is scrubbed of
E.164-looking numbers and of SQLAlchemy's echoed statement parameters before it is written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request

from backend.config import settings_of

# +86 138 1234 5678, +8613812345678, whatsapp:+44...: 8 to 15 digits after a plus.
_PHONE = re.compile(r"\+\d(?:[\s-]?\d){6,14}")
# SQLAlchemy errors repeat the bound values (phone hashes, ciphertexts, SMS bodies) on this line.
_SQL_PARAMS = re.compile(r"^\[parameters: .*$", re.MULTILINE)
_FIELDS = ("path", "method", "status", "duration_ms", "job", "route")
_QUIET = {
    "alembic": logging.WARNING,
    "twilio.http_client": logging.WARNING,
    "urllib3": logging.WARNING,
    "apscheduler.executors.default": logging.WARNING,
}


def redact(text: str) -> str:
    """Mask anything shaped like a phone number and drop echoed SQL parameters."""
    return _SQL_PARAMS.sub("[parameters: redacted]", _PHONE.sub("+[phone]", text))


class RequestIdFilter(logging.Filter):
    """Adds the current request id (or '-') to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    """Structured JSON lines; only fields we chose, never request bodies."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "msg": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key in _FIELDS:
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal, scrubbed like the JSON ones."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        return redact(super().format(record))


def make_formatter(fmt: str) -> logging.Formatter:
    """The formatter for LOG_FORMAT ('json' or 'text')."""
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Set up the root logger once for web, scheduler and dispatch processes."""
    root = logging.getLogger()
    if getattr(root, "_trial_configured", False):
        return
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(make_formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet_level in _QUIET.items():
        logging.getLogger(name).setLevel(quiet_level)
    root._trial_configured = True


def gunicorn_logconfig(fmt: str | None = None) -> dict:
    """logging.config dict for gunicorn's own logger, in the app's format (used by infra/gunicorn.conf.py)."""
    fmt = fmt or os.environ.get("LOG_FORMAT", "text")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"app": {"()": make_formatter, "fmt": fmt}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "app",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "handlers": ["console"], "propagate": False},
        },
        "root": {"level": "INFO", "handlers": []},
    }


def init_app(app: Flask) -> None:
    """Request ids, a latency metric and an access line per request (path only: no query strings, no bodies)."""
    from backend.runtime.metrics import HTTP_LATENCY

    if not app.testing:
        configure_logging(settings_of(app).LOG_FORMAT)
    log = logging.getLogger("backend.access")

    @app.before_request
    def _start():
        # A proxy's id links our line to its own; bounded and restricted so a client cannot forge log content.
        incoming = re.sub(r"[^A-Za-z0-9._-]", "", request.headers.get("X-Request-Id", ""))[:64]
        g.request_id = incoming or uuid.uuid4().hex
        g.started = time.perf_counter()

    # Registered before the database's commit hook, so it runs after it: the time includes the commit.
    @app.after_request
    def _finish(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HTTP_LATENCY.labels(request.method, route, str(response.status_code)).observe(elapsed)
        # The calendar feed's URL is its secret: log the route, never the concrete path.
        path = route if "<string:secret>" in route else request.path
        log.info(
            "%s %s %s",
            request.method,
            path,
            response.status_code,
            extra={
                "path": path,
                "route": route,
                "method": request.method,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )
        return response
