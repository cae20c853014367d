"""Participant app activation and tokens."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("app_auth", __name__, url_prefix="/api/v1", description="Participant app activation and tokens.")
