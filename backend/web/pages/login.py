"""Staff sign-in and sign-out for the nurse pages (a signed session cookie, no bearer token)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from backend.db import get_session
from backend.extensions import limiter
from backend.identity.staff import authenticate_staff
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


def _login_email_key() -> str:
    return "page-login:" + (request.form.get("email") or "").strip().lower()[:254]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
@limiter.limit("20 per hour", methods=["POST"], key_func=_login_email_key)
def login():
    """Sign a staff member in with email and password."""
    target = safe_next(request.values.get("next"), url_for("pages.dashboard"))
    if request.method == "GET" and signed_in_staff() is not None:
        return redirect(target, code=303)
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        session = get_session()
        staff = authenticate_staff(session, email=form.email.data, password=form.password.data)
        if staff is not None:
            log_in(staff)
            return redirect(target, code=303)
        error = "Wrong email or password."
    elif csrf_refused(form):
        error = "The form expired. Please sign in again."
    status = 200 if request.method == "GET" else (400 if csrf_refused(form) else 401 if error else 422)
    return render_template("login.html", form=form, error=error, next=target), status


@bp.post("/logout")
def logout():
    """Sign out (a POST with a CSRF token, so another site cannot sign a nurse out)."""
    form = LogoutForm(prefix="logout")
    if not form.validate_on_submit():
        abort(400)
    log_out()
    flash("You are signed out.", "info")
    return redirect(url_for("pages.login"), code=303)
