"""The participant app: who am I, schedule, reports, messages, calendar."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("app_participant", __name__, url_prefix="/api/v1", description="The participant app: who am I, schedule, reports, messages, calendar.")
