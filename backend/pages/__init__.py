"""Nurse pages: server-rendered, session login with CSRF protection."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the nurse pages."""
