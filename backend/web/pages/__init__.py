"""Nurse pages: server-rendered, session login with CSRF protection."""

from __future__ import annotations

from flask import Flask

from backend.config import settings_of
from backend.web import i18n, words
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
        language,
        login,
        participant,
        report,
        simulator,
    )
    from backend.web.pages.common import bp

    app.register_blueprint(bp)
    i18n.init_app(app)
    app.add_template_filter(words.duration_words, "duration")
    app.add_template_filter(display.percent_text, "percent")
    app.jinja_env.globals["ALERT_KIND_LABELS"] = display.ALERT_KIND_LABELS
    for helper in (
        words.status_words,
        words.participant_status_words,
        words.today_words,
        words.message_kind_words,
        words.outcome_words,
        words.warning_words,
        words.code_words,
        words.injection_site_words,
        words.deviation_words,
        words.codes_words,
        words.ae_term_words,
        words.yes_no_words,
        words.soc_words,
        words.role_words,
        words.field_words,
        words.value_words,
    ):
        app.jinja_env.globals[helper.__name__] = helper
    app.jinja_env.globals["SMS_SIMULATOR"] = settings_of(app).SMS_BACKEND == "console"
