"""Sign-out ends the session on the server: a copy of the nurse-page cookie stops working at once, as a
revoked API token does; a page session is no API token and an API token opens no page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from backend.identity.staff import create_staff, issue_staff_token
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, auth, make_site

EMAIL = "nurse@example.org"


@pytest.fixture
def nurse(session, clock):
    clock.move_to(utc("2026-03-06T06:00Z"))
    staff = create_staff(session, email=EMAIL, password=STRONG_PASSWORD, role="nurse", site=make_site(session))
    session.commit()
    return staff


def _csrf(html: str, name: str) -> str:
    return re.search(rf'name="{re.escape(name)}" type="hidden" value="([^"]+)"', html).group(1)


def sign_in(client) -> None:
    page = client.get("/login")
    response = client.post(
        "/login", data={"csrf_token": _csrf(page.text, "csrf_token"), "email": EMAIL, "password": STRONG_PASSWORD}
    )
    assert response.status_code == 303


def test_a_copied_cookie_stops_working_as_soon_as_its_session_signs_out(app, client, nurse):
    sign_in(client)
    copy = app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value)
    assert copy.get("/").status_code == 200  # the copy works while the session is open

    out = client.post("/logout", data={"logout-csrf_token": _csrf(client.get("/").text, "logout-csrf_token")})
    assert out.status_code == 303
    refused = copy.get("/")
    assert refused.status_code == 303 and refused.headers["Location"].startswith("/login")
    assert client.get("/").status_code == 303


def test_signing_out_in_one_browser_leaves_the_others_signed_in(app, client, nurse):
    sign_in(client)
    other = app.test_client()
    sign_in(other)
    client.post("/logout", data={"logout-csrf_token": _csrf(client.get("/").text, "logout-csrf_token")})
    assert other.get("/").status_code == 200


def test_a_page_session_ends_after_the_staff_token_lifetime(client, nurse, clock):
    sign_in(client)
    clock.shift(12 * 3600 - 1)
    assert client.get("/").status_code == 200
    clock.shift(2)
    assert client.get("/").status_code == 303


def test_a_page_session_is_no_api_token_and_an_api_token_opens_no_page(app, client, session, nurse):
    sign_in(client)
    with client.session_transaction() as cookie:
        page_token = cookie["session_token"]
    assert client.get("/api/v1/participants", headers=auth(page_token)).status_code == 401

    api_token, _ = issue_staff_token(session, staff=nurse, now=utc("2026-03-06T06:00Z"), ttl=timedelta(hours=1))
    session.commit()
    stranger = app.test_client()
    with stranger.session_transaction() as cookie:
        cookie["session_token"] = api_token
    assert stranger.get("/").status_code == 303


def test_a_revoked_api_token_is_refused_at_once(client, session, nurse):
    token = client.post("/api/v1/auth/token", json={"email": EMAIL, "password": STRONG_PASSWORD}).get_json()["token"]
    assert client.get("/api/v1/participants", headers=auth(token)).status_code == 200
    assert client.post("/api/v1/auth/token/revoke", headers=auth(token)).status_code == 204
    refused = client.get("/api/v1/participants", headers=auth(token))
    assert refused.status_code == 401 and refused.get_json()["message"] == "token has been revoked"
