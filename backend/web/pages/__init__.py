"""Nurse pages: server-rendered, session login with CSRF protection."""

from __future__ import annotations

from flask import Flask

from backend.config import settings_of
from backend.web.pages import display


def init_app(app: Flask) -> None:
    """Register the nurse pages, their template helpers and their login."""
    # Importing the view modules attaches their routes to the one blueprint.
    from backend.web.pages import (  # noqa: F401
        adverse_event,
        alerts,
        app_access,
        dashboard,
        deviations,
        login,
        participant,
        report,
        simulator,
    )
    from backend.web.pages.common import bp

    app.register_blueprint(bp)
    app.add_template_filter(display.local_text, "local")
    app.add_template_filter(display.local_date_text, "local_date")
    app.add_template_filter(display.duration_text, "duration")
    app.add_template_filter(display.percent_text, "percent")
    app.jinja_env.globals["ALERT_KIND_LABELS"] = display.ALERT_KIND_LABELS
    app.jinja_env.globals["SMS_SIMULATOR"] = settings_of(app).SMS_BACKEND == "console"
