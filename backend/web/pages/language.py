"""The language switch: a signed-in staff member's choice is kept on their account, a visitor's in the session."""

from __future__ import annotations

from flask import abort, g, redirect, request, session, url_for

from backend.db import get_session
from backend.identity.staff import set_staff_language
from backend.web.i18n import SESSION_LANGUAGE, page_language
from backend.web.pages.common import bp, principal, safe_next
from backend.web.pages.forms import LanguageForm


@bp.post("/language")
def language():
    """Show the pages in the chosen language from now on."""
    form = LanguageForm(prefix="language")
    if not form.validate_on_submit():
        abort(400)
    if g.get("page_staff") is not None:
        set_staff_language(get_session(), staff=g.page_staff, language=form.language.data, actor=principal().actor)
    session[SESSION_LANGUAGE] = form.language.data
    return redirect(safe_next(form.next.data, url_for("pages.dashboard")), code=303)


@bp.app_template_global()
def language_form() -> LanguageForm:
    """A language switch for the header, set to the page's language."""
    form = LanguageForm(prefix="language")
    form.language.data = page_language()
    form.next.data = _back_here()
    return form


def _back_here() -> str:
    """Where the switch returns to: this page (a GET) with its filters, but never a `next` it was given, which
    the login page may not trust (a form post cannot be come back to: nothing)."""
    if request.method != "GET":
        return ""
    here = request.path if "next" in request.args else request.full_path.rstrip("?")
    return safe_next(here, "")
