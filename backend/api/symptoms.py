"""Patient-global VAS and adverse events."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("symptoms", __name__, url_prefix="/api/v1", description="Patient-global VAS and adverse events.")
