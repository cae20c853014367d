"""The security and caching headers of every answer: HSTS in production, no-store on the API, a CSP for the
API and its docs, and the Bearer challenge on every API 401."""

from __future__ import annotations

from flask import Flask, Response, current_app, request

from backend.config import settings_of

HSTS = "max-age=31536000; includeSubDomains"
REALM = "Trial Companion API"
# JSON is never a document: it may load nothing and be framed nowhere.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI: its own files only (the start-up script is a file too, so no inline script); the styles it
# sets on elements need 'unsafe-inline' for style; "Try it out" calls this same origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_PREFIX = "/api/docs"  # the page and its files (/api/docs-static/)


def _api_headers(response: Response) -> None:
    if request.path.startswith(DOCS_PREFIX):
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP)
        return
    response.headers.setdefault("Content-Security-Policy", API_CSP)
    if request.path.startswith("/api/v1/"):
        # Tokens and personal data: never kept by a browser or a proxy. The calendar feed sets its own
        # (private: the phone's calendar app may keep it a few minutes, a shared cache never).
        response.headers.setdefault("Cache-Control", "no-store")
    if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
        # RFC 6750 §3: a request without credentials gets the bare challenge, a rejected token says so.
        presented = request.headers.get("Authorization", "").lower().startswith("bearer ")
        challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if presented else "")
        response.headers["WWW-Authenticate"] = challenge


def security_headers(response: Response) -> Response:
    """Add the headers every answer carries (pages add their own CSP and no-store in pages.common)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if settings_of(current_app).is_production:
        # Only production is served over HTTPS (behind the proxy); a development browser must not pin localhost.
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if request.path.startswith("/api/"):
        _api_headers(response)
    return response


def init_app(app: Flask) -> None:
    """Add the headers to every response of the app."""
    app.after_request(security_headers)
