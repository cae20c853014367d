"""The headers of sign-in and personal data: a Bearer challenge on every API 401, no-store on tokens and
personal data, HSTS from the app in production only, and a CSP and the rest on /api/docs."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from backend.app import create_app
from tests.backend.app_fixtures import activate, new_code, signed_in, trial  # noqa: F401  (fixture)
from tests.conftest import test_settings as settings_for
from tests.factories import STRONG_PASSWORD, auth, make_staff_token

CHALLENGE = 'Bearer realm="Trial Companion API"'
HSTS = "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("path", ["/api/v1/participants", "/api/v1/me", "/api/v1/adverse-event-terms"])
def test_a_401_without_a_token_carries_the_bare_bearer_challenge(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE


def test_a_rejected_staff_or_app_token_is_named_invalid_token_in_the_challenge(client, trial, clock):
    tokens = signed_in(client, trial, trial.a)
    clock.shift(16 * 60)  # the app's access token lives 15 minutes
    for path, token in [("/api/v1/me", tokens["access_token"]), ("/api/v1/participants", "not-a-token")]:
        response = client.get(path, headers=auth(token))
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == f'{CHALLENGE}, error="invalid_token"', path


def test_a_refused_refresh_and_a_wrong_staff_password_carry_the_challenge_too(client, trial, session):
    make_staff_token(session, role="nurse", site=trial.site, email="n2@example.org")
    wrong = client.post("/api/v1/auth/token", json={"email": "n2@example.org", "password": "not-the-password-x"})
    refresh = client.post("/api/v1/app/token/refresh", json={"refresh_token": "tcr_unknown"})
    assert wrong.status_code == refresh.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == refresh.headers["WWW-Authenticate"] == CHALLENGE


def test_token_responses_and_personal_data_are_never_stored_by_a_cache(client, trial, session):
    make_staff_token(session, role="nurse", site=trial.site, email="n2@example.org")
    staff = client.post("/api/v1/auth/token", json={"email": "n2@example.org", "password": STRONG_PASSWORD})
    pair = client.post(
        "/api/v1/app/activate", json={"code": new_code(client, trial.nurse, trial.a.id), "device_name": "phone"}
    )
    me = client.get("/api/v1/me", headers=auth(pair.get_json()["access_token"]))
    listed = client.get("/api/v1/participants", headers=auth(trial.nurse))
    for response in (staff, pair, me, listed):
        assert response.status_code in (200, 201), response.get_json()
        assert response.headers["Cache-Control"] == "no-store"


def test_the_calendar_feed_may_be_kept_privately_for_a_few_minutes_only(client, trial):
    tokens = activate(client, new_code(client, trial.nurse, trial.a.id))
    feed = client.post("/api/v1/me/calendar-token", headers=auth(tokens["access_token"])).get_json()["url"]
    response = client.get(re.sub(r"^https?://[^/]+", "", feed))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "private, max-age=300"


def test_hsts_is_sent_in_production_only(database, tmp_path):
    settings = settings_for(database.url, INSTANCE_DIR=str(tmp_path))
    for env, expected in [("development", None), ("test", None), ("production", HSTS)]:
        app = create_app(replace(settings, APP_ENV=env), database=database)
        for path in ("/login", "/api/v1/participants", "/api/docs", "/healthz"):
            assert app.test_client().get(path).headers.get("Strict-Transport-Security") == expected, (env, path)


def test_the_api_docs_carry_a_csp_without_inline_script_and_the_other_security_headers(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp.split(";")[1]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert not re.search(r"<script>", response.text), "an inline script would be blocked by the CSP"
    spec = client.get("/api/openapi.json")
    assert spec.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert spec.headers["X-Content-Type-Options"] == "nosniff"
