"""HTTP only: the JSON API, nurse pages, Twilio webhooks, health and metrics; validate -> operation -> render."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register every HTTP entry point and its app-wide behaviour (errors, idempotency, sign-in resolvers)."""
    from backend.web import api, headers, health, idempotency, pages, participant_app, webhooks

    api.init_app(app)
    idempotency.init_app(app)
    webhooks.init_app(app)
    pages.init_app(app)
    participant_app.init_app(app)
    health.init_app(app)
    headers.init_app(app)
