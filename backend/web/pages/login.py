"""Staff sign-in and sign-out for the nurse pages (a signed session cookie, no bearer token)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from backend.db import get_session
from backend.extensions import limiter
from backend.identity.app_tokens import Refused
from backend.identity.staff import SignInLocked, sign_in_staff
from backend.web.auth import keep_consequence, lockout_policy
from backend.web.pages.common import (
    LogoutForm,
    bp,
    csrf_refused,
    log_in,
    log_out,
    safe_next,
    signed_in_staff,
)
from backend.web.pages.forms import LoginForm
from schedules.dbtypes import utcnow


@bp.route("/login", methods=["GET", "POST"])
# Per address; per account, wrong passwords lock the email for pages and API alike (identity.lockout).
@limiter.limit("10 per minute", methods=["POST"])
def login():
    """Sign a staff member in with email and password."""
    target = safe_next(request.values.get("next"), url_for("pages.dashboard"))
    if request.method == "GET" and signed_in_staff() is not None:
        return redirect(target, code=303)
    form = LoginForm()
    error, status = None, 200 if request.method == "GET" else 422
    if form.validate_on_submit():
        try:
            staff = sign_in_staff(
                get_session(),
                email=form.email.data,
                password=form.password.data,
                now=utcnow(),
                policy=lockout_policy(),
            )
        except SignInLocked as exc:
            error, status = _locked_text(exc.minutes), 429
        except Refused as exc:
            keep_consequence(exc)
            error, status = _("Wrong email or password."), 401
        else:
            log_in(staff)
            return redirect(target, code=303)
    elif csrf_refused(form):
        error, status = _("The form expired. Please sign in again."), 400
    return render_template("login.html", form=form, error=error, next=target), status


def _locked_text(minutes: int) -> str:
    return ngettext(
        "Too many wrong passwords for this account, so sign-in is locked for %(num)d more minute, "
        "whatever the password. Try again then.",
        "Too many wrong passwords for this account, so sign-in is locked for %(num)d more minutes, "
        "whatever the password. Try again then.",
        minutes,
    )


@bp.post("/logout")
def logout():
    """Sign out (a POST with a CSRF token, so another site cannot sign a nurse out)."""
    form = LogoutForm(prefix="logout")
    if not form.validate_on_submit():
        abort(400)
    log_out()
    flash(_("You are signed out."), "info")
    return redirect(url_for("pages.login"), code=303)
