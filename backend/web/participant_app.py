"""The participant app at /app/: static files only (plain ES modules, no build step), built on the public API.

Nothing here reads the database or a token: the app talks to /api/v1 like any other client, so the OpenAPI
document is all it relies on. Its own CSP allows what an installable offline app needs (its manifest and
service worker, data: images) and nothing from another origin, and no inline script."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, redirect, request, send_from_directory

APP_DIR = Path(__file__).resolve().parent / "static" / "app"
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "manifest-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
# Types the standard library's mimetypes may not know on every machine.
_TYPES = {".webmanifest": "application/manifest+json", ".js": "text/javascript", ".svg": "image/svg+xml"}

bp = Blueprint("participant_app", __name__)


@bp.get("/app")
def app_root():
    """The app lives under /app/ (its service worker's scope)."""
    return redirect("/app/", code=308)


@bp.get("/app/")
def app_shell():
    """The app's single page; every screen is drawn by its modules."""
    return send_from_directory(APP_DIR, "index.html", max_age=0)


@bp.get("/app/<path:name>")
def app_file(name: str):
    """A file of the app (modules, styles, icons, manifest, the service worker at /app/sw.js)."""
    suffix = Path(name).suffix
    return send_from_directory(APP_DIR, name, mimetype=_TYPES.get(suffix), max_age=0)


@bp.after_request
def _app_headers(response):
    response.headers.setdefault("Content-Security-Policy", APP_CSP)
    # Revalidate on every load: the service worker keeps the offline copy, the browser's cache must not pin an old one.
    response.headers.setdefault("Cache-Control", "no-cache")
    if request.path == "/app/sw.js":
        response.headers["Service-Worker-Allowed"] = "/app/"
    return response


def init_app(app: Flask) -> None:
    """Serve the participant app."""
    app.register_blueprint(bp)
