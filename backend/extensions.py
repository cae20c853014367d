"""Per-app service objects (phone vault, SMS sender, rate limiter), built once from settings."""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from backend.config import Settings, settings_of
from notifications.senders import SmsSender, build_sender
from schedules.phones import PhoneVault

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def build_vault(settings: Settings) -> PhoneVault:
    """The phone vault for these settings; several comma-separated keys allow rotation (newest first)."""
    keys = [k.strip() for k in settings.PHONE_ENCRYPTION_KEY.split(",") if k.strip()]
    return PhoneVault(encryption_keys=keys, hash_key=settings.PHONE_HASH_KEY)


def init_app(app: Flask) -> None:
    """Attach vault, sender and limiter to the app."""
    settings = settings_of(app)
    app.extensions["phone_vault"] = build_vault(settings)
    app.extensions["sms_sender"] = None  # built lazily: the web process rarely sends
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.RATELIMIT_STORAGE_URI)
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter.init_app(app)


def get_vault(app: Flask | None = None) -> PhoneVault:
    """The app's PhoneVault."""
    return (app or current_app).extensions["phone_vault"]


def get_sender(app: Flask | None = None) -> SmsSender:
    """The app's SMS sender, chosen by SMS_BACKEND."""
    app = app or current_app
    if app.extensions.get("sms_sender") is None:
        app.extensions["sms_sender"] = build_sender(app.config)
    return app.extensions["sms_sender"]


def set_sender(app: Flask, sender: SmsSender) -> None:
    """Replace the sender (tests use a recording sender or the Twilio stand-in)."""
    app.extensions["sms_sender"] = sender
