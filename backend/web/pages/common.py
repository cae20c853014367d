"""What every nurse page shares: the blueprint, the session login, site scoping and page errors."""

from __future__ import annotations

from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from werkzeug.exceptions import HTTPException, abort

from backend.config import settings_of
from backend.db import get_session
from backend.identity import scope
from backend.identity.principal import UNMASKED, Principal
from backend.identity.staff import PAGE_SESSION, issue_staff_token, revoke_staff_token, staff_from_token
from backend.models import Staff
from backend.runtime.job_runs import nurse_warnings
from backend.runtime.jobs import WATCHED_JOBS
from schedules.dbtypes import utcnow
from schedules.models import Alert, Participant

bp = Blueprint("pages", __name__)

SESSION_TOKEN = "session_token"

# Pages load only what the app serves itself: no CDN, no inline script, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def log_in(staff: Staff) -> None:
    """Start a fresh session for this staff member (nothing from before the login survives).

    The cookie holds a new random token whose hash is a StaffToken row (lifetime STAFF_TOKEN_TTL_HOURS),
    so the server decides whether the session is still open, not the cookie."""
    session.clear()
    lifetime = timedelta(hours=settings_of(current_app).STAFF_TOKEN_TTL_HOURS)
    token, _ = issue_staff_token(get_session(), staff=staff, now=utcnow(), ttl=lifetime, label=PAGE_SESSION)
    session[SESSION_TOKEN] = token


def log_out() -> None:
    """End the session on the server (its token is revoked: a copy of the cookie stops working too)."""
    token = session.get(SESSION_TOKEN)
    if token:
        revoke_staff_token(get_session(), token=token, now=utcnow())
    session.clear()


def signed_in_staff() -> Staff | None:
    """The staff member of this browser session, if the session is still open and the account active."""
    if "page_staff" in g:
        return g.page_staff
    staff = None
    token = session.get(SESSION_TOKEN)
    if token:
        staff, _ = staff_from_token(get_session(), token, now=utcnow(), page_session=True)
        if staff is None:
            session.clear()
    g.page_staff = staff
    return staff


def principal() -> Principal:
    """The signed-in staff member as a Principal (role and site), for scoping and audit."""
    staff = g.page_staff
    return Principal("staff", staff.id, staff.role, staff.site_id)


def staff_page(*, masked_safe: bool = False):
    """Decorator: a signed-in staff member, else to the login page. The masked assessor gets 403 unless the page
    declares itself `masked_safe` (it renders a masked template of its own: see backend.web.masking)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if signed_in_staff() is None:
                # Only a page can be come back to after signing in; a form post cannot be replayed.
                back = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for("pages.login", next=back), code=303)
            if not masked_safe and g.page_staff.role not in UNMASKED:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def safe_next(target: str | None, default: str) -> str:
    """Only same-site paths are followed after a form, so a link cannot bounce a nurse elsewhere."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    # A control character (a CR/LF smuggled in as %0D%0A) could never be sent in a Location header.
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return default
    return target


def visible_participant_or_404(participant_id: int) -> Participant:
    """The participant if the signed-in staff member's site covers them; 404 otherwise (nothing revealed)."""
    participant = scope.visible_participant(get_session(), principal(), participant_id)
    if participant is None:
        abort(404)
    return participant


def visible_alert_or_404(alert_id: int) -> Alert:
    """The alert if it belongs to a site the signed-in staff member covers; 404 otherwise."""
    alert = get_session().get(Alert, alert_id)
    if alert is None or not principal().can_see_site(alert.site_id):
        abort(404)
    return alert


def csrf_refused(form: FlaskForm) -> bool:
    """True when the form failed only because its CSRF token was missing, stale or foreign."""
    token = getattr(form, "csrf_token", None)
    return bool(form.meta.csrf and token is not None and token.errors)


class LogoutForm(FlaskForm):
    """The sign-out button: a POST with a CSRF token, nothing else."""


@bp.app_template_global()
def logout_form() -> LogoutForm:
    """A fresh sign-out form for the navigation bar."""
    return LogoutForm(prefix="logout")


@bp.before_request
def _load_staff():
    # Resolve the session once, before the views run, so every template can show who is signed in.
    signed_in_staff()


@bp.context_processor
def _system_warnings():
    # Only for signed-in staff: the login page says nothing about the system's state to strangers.
    if g.get("page_staff") is None or g.get("page_error"):
        return {"system_warnings": []}
    masked = g.page_staff.role not in UNMASKED
    return {"system_warnings": nurse_warnings(get_session(), WATCHED_JOBS, now=utcnow(), masked=masked)}


@bp.after_request
def _page_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # Clinical data: never kept in a shared browser's or proxy's cache.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


_ERROR_TEXT = {
    400: (
        "The form could not be accepted",
        "It may have expired or not come from this site. Reload the page and try again.",
    ),
    403: ("Not for your role", "Your role does not give access to this page."),
    404: ("Not found", "There is nothing here, or it belongs to a site you do not cover."),
    405: ("Not allowed", "This address does not take that kind of request."),
    429: ("Too many attempts", "Wait a minute, then try again."),
    500: (
        "Something went wrong",
        "The page could not be shown and nothing was saved by this request. Try again; if it happens again, "
        "tell the system administrator the time it happened (the error is in the server's log).",
    ),
}


@bp.errorhandler(HTTPException)
def _page_error(exc: HTTPException):
    return page_error(exc)


def page_error(exc: HTTPException):
    """A nurse page for an HTTP error (any path outside /api, which answers JSON): the site's layout and a
    sentence, never a traceback. A redirect raised by routing is passed through untouched."""
    code = exc.code or 500
    if code < 400 or exc.response is not None:
        return exc
    server_fault = code >= 500
    if server_fault:
        # The request's database session may be what failed: the page touches nothing more.
        g.page_error = True
        g.setdefault("page_staff", None)
    elif "page_staff" not in g:
        # An unknown address never reached a page view: resolve who is signed in for the navigation.
        signed_in_staff()
    title, text = _ERROR_TEXT.get(code) or (_ERROR_TEXT[500] if server_fault else (exc.name, _ERROR_TEXT[404][1]))
    try:
        body = render_template("error.html", title=title, text=text, code=code)
    except Exception:  # noqa: BLE001 - the error page itself failed: a plain sentence, still no traceback
        current_app.logger.exception("the error page could not be rendered")
        body = f"<!doctype html><html lang=en><title>{title}</title><main><h1>{title}</h1><p>{text}</p></main>"
    # An address outside the pages' blueprint gets no after_request of theirs: the same headers here.
    return _page_headers(make_response(body, code))
