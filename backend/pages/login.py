"""Staff sign-in and sign-out for the nurse pages (a signed session cookie, no bearer token)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from sqlmodel import select

from backend.db import get_session
from backend.models import Staff
from backend.pages.common import LogoutForm, bp, csrf_refused, log_in, log_out, safe_next, signed_in_staff
from backend.pages.forms import LoginForm
from backend.security import verify_password
from backend.services import limiter

# Verified against when the email is unknown, so the response time does not reveal which accounts exist.
_DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1hLGmt2dHdC0Y8cBnv6xK8m3pX9JkQ0yQf2m8Qm0tqk"


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
        staff = session.exec(select(Staff).where(Staff.email == form.email.data.strip().lower())).first()
        valid = verify_password(staff.password_hash if staff else _DUMMY_HASH, form.password.data)
        if staff is not None and valid and staff.active:
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
