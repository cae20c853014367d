"""Logs: one line per event, a request id on each, JSON when LOG_FORMAT=json, no personal data."""

from __future__ import annotations

import json
import logging
import time
import uuid

from flask import Flask, g, has_request_context, request


class RequestIdFilter(logging.Filter):
    """Adds the current request id (or '-') to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    """Structured JSON lines; only fields we chose, never request bodies."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key in ("path", "method", "status", "duration_ms", "job"):
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Set up the root logger once for web, scheduler and dispatch processes."""
    root = logging.getLogger()
    if getattr(root, "_trial_configured", False):
        return
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    root._trial_configured = True


def init_app(app: Flask) -> None:
    """Request ids and an access line per request (path only: no query strings, no bodies)."""
    if not app.testing:
        configure_logging(app.config.get("LOG_FORMAT", "text"))
    log = logging.getLogger("backend.access")

    @app.before_request
    def _start():
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        duration = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        log.info("%s %s %s", request.method, request.path, response.status_code,
                 extra={"path": request.path, "method": request.method, "status": response.status_code, "duration_ms": round(duration, 1)})
        return response
