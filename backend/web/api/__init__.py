"""The JSON API under /api/v1, described by OpenAPI at /api/openapi.json with a local Swagger UI."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, send_from_directory
from flask_smorest import Api
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import HTTPException

from backend.web.errors import error_body, status_of
from schedules.errors import DomainError

API_DESCRIPTION = """Trial Companion: dosing schedules, dose reports, VAS and adverse events.

Authenticate with `Authorization: Bearer <token>`. Staff: POST /api/v1/auth/token.
Participant app: a staff-issued activation code -> POST /api/v1/app/activate gives an access
token (15 min) and a refresh token; POST /api/v1/app/token/refresh rotates it.
Every POST accepts an `Idempotency-Key` header (safe retries on a bad network).
Every error has the same JSON shape: `{"code": 422, "status": "Unprocessable Entity",
"message": "...", "errors": {"json": {"field": ["reason"]}}}`."""


def _configure(app: Flask) -> None:
    app.config.update(
        API_TITLE="Trial Companion API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        # Served from the installed swagger-ui-bundle: nothing loads from the internet.
        OPENAPI_SWAGGER_UI_URL="/api/docs-static/",
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )


def init_app(app: Flask) -> None:
    """Register the API blueprints, the docs assets and the domain-error handler."""
    _configure(app)
    api = Api(app)
    app.extensions["smorest_api"] = api

    from backend.web.api import (
        alerts,
        app_auth,
        app_participant,
        auth_views,
        deviations,
        exports,
        participants,
        reference,
        symptoms,
    )

    modules = (auth_views, reference, participants, symptoms, alerts, deviations, exports, app_auth, app_participant)
    for module in modules:
        api.register_blueprint(module.blp)

    static = Blueprint("swagger_static", __name__)

    @static.route("/api/docs-static/<path:filename>")
    def swagger_asset(filename):
        """Serve Swagger UI's files from the installed package."""
        return send_from_directory(str(swagger_ui_path), filename)

    app.register_blueprint(static)

    from backend.web.auth import authorize_request

    # Registered first: who may call is decided before any hook or view reads the body or the query.
    app.before_request(authorize_request)

    @app.before_request
    def _refuse_nul():
        # PostgreSQL cannot store NUL in text; refuse it with a 422 rather than fail with a 500.
        from flask import request

        if not (request.path.startswith("/api") and request.is_json):
            return None
        payload = request.get_json(silent=True)
        fields = (
            sorted(k for k, v in payload.items() if isinstance(v, str) and "\x00" in v)
            if isinstance(payload, dict)
            else []
        )
        if fields:
            reason = "must not contain the NUL character"
            body = error_body(422, f"{fields[0]}: {reason}")
            body["errors"] = {"json": {name: [reason] for name in fields}}
            return jsonify(body), 422
        return None

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        status = status_of(exc)
        response = jsonify(error_body(status, exc.message, exc.field))
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response, status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        from flask import request

        if not request.path.startswith("/api"):
            from backend.web.pages.common import page_error  # the pages register after the API

            return page_error(exc)
        data = getattr(exc, "data", None) or {}
        errors = data.get("errors") or data.get("messages")  # webargs puts validation errors under "messages"
        message = data.get("message") or (_first_error(errors) if errors else None) or exc.description or exc.name
        body = error_body(exc.code or 500, message)
        if errors:
            body["errors"] = errors
        return jsonify(body), exc.code


def _first_error(errors: dict) -> str:
    """'field: reason' for the first validation error, so the message alone names the field."""
    for location in errors.values():
        if isinstance(location, dict):
            for field, reasons in location.items():
                reason = reasons[0] if isinstance(reasons, list) and reasons else reasons
                return f"{field}: {reason}"
    return "invalid input"
