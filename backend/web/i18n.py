"""The nurse pages' language (zh-CN or en, Flask-Babel catalogues) and how dates and times read in it."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from babel.dates import format_date, format_datetime
from flask import Flask, g, request, session
from flask_babel import Babel, get_locale

from backend.db import get_session
from backend.identity.staff import staff_language
from schedules.calendar import to_local
from schedules.models import Site
from schedules.protocol import SUPPORTED_LANGUAGES

TRANSLATIONS = Path(__file__).parent / "translations"
# Our language codes are the protocol's (BCP 47); Babel's catalogues and formats use its own locale names.
BABEL_LOCALES = {"zh-CN": "zh_Hans_CN", "en": "en"}
# Before sign-in the page follows ?lang= (kept for the session) or the browser's preference.
SESSION_LANGUAGE = "page_language"


def page_language() -> str:
    """The language of this page: the signed-in staff member's (their own, else their site's), else the one
    chosen on the login page, else the browser's first supported preference, else English."""
    if "page_language" in g:
        return g.page_language
    staff = g.get("page_staff")
    if staff is not None:
        site = get_session().get(Site, staff.site_id) if staff.site_id else None
        language = staff_language(staff, site)
    else:
        wanted = request.args.get("lang") or session.get(SESSION_LANGUAGE)
        if wanted in SUPPORTED_LANGUAGES:
            session[SESSION_LANGUAGE] = wanted
            language = wanted
        else:
            best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
            language = "zh-CN" if best in ("zh-CN", "zh") else "en"
    g.page_language = language
    return language


def _babel_locale() -> str:
    return BABEL_LOCALES[page_language()]


# A ward reads the 24-hour clock; English keeps the unambiguous ISO date.
DATETIME_PATTERNS = {"zh-CN": "yyyy年M月d日 HH:mm", "en": "yyyy-MM-dd HH:mm"}
DATE_PATTERNS = {"zh-CN": "yyyy年M月d日", "en": "yyyy-MM-dd"}


def local_text(instant: datetime | None, zone: str) -> str:
    """An instant as wall time in `zone` with the zone named: '2026年3月4日 12:00 (Asia/Shanghai)'."""
    if instant is None:
        return "—"
    pattern = DATETIME_PATTERNS[page_language()]
    return f"{format_datetime(to_local(instant, zone), pattern, locale=get_locale())} ({zone})"


def local_date_text(instant: datetime | None, zone: str) -> str:
    """The local calendar date of an instant in `zone`: '2026年3月4日' / '2026-03-04'."""
    if instant is None:
        return "—"
    return format_datetime(to_local(instant, zone), DATE_PATTERNS[page_language()], locale=get_locale())


def local_day_text(day: date) -> str:
    """A calendar date (already local) in the page's language: '2026年3月4日' / '2026-03-04'."""
    return format_date(day, DATE_PATTERNS[page_language()], locale=get_locale())


def init_app(app: Flask) -> None:
    """Load the catalogues; every template gets `_`, `ngettext` and the page's language."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    Babel(app, locale_selector=_babel_locale)
    app.add_template_filter(local_text, "local")
    app.add_template_filter(local_date_text, "local_date")
    app.add_template_filter(local_day_text, "day")
    app.jinja_env.globals["page_language"] = page_language
