"""The nurse alert queue."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("alerts", __name__, url_prefix="/api/v1", description="The nurse alert queue.")
