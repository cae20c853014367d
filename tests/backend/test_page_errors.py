"""Error pages: a nurse who mistypes an address or meets a server fault gets the site's own page with a
sentence (and the navigation when signed in), never the framework's bare page or a traceback; the API
keeps answering JSON."""

from __future__ import annotations

import pytest

from tests.backend.test_pages import sign_in, world
from tests.factories import auth, make_site, make_staff_token

SECRET = "secret-detail-from-the-stack"


def _boom(*args, **kwargs):
    raise RuntimeError(SECRET)


def test_an_unknown_address_is_the_sites_own_not_found_page_with_the_navigation(client, world):
    sign_in(client, "nurse-a@example.org")
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "<h1>Not found</h1>" in response.text
    assert "Alert queue" in response.text  # the navigation of a signed-in nurse
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_an_unknown_address_signed_out_is_the_styled_page_without_navigation(client, world):
    response = client.get("/participants/999/nothing")
    assert response.status_code == 404
    assert "pages.css" in response.text and "<h1>Not found</h1>" in response.text
    assert "Alert queue" not in response.text


def test_the_api_still_answers_json_for_unknown_addresses_and_wrong_methods(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.is_json and response.get_json()["code"] == 404
    response = client.delete("/api/v1/auth/token")
    assert response.status_code == 405 and response.is_json


@pytest.fixture
def faulty(app, monkeypatch):
    """The app as in production: an unhandled exception becomes a 500 answer instead of reaching the test."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    return app


def test_a_server_fault_on_a_page_is_a_plain_sentence_never_a_traceback(faulty, client, world, monkeypatch):
    sign_in(client, "nurse-a@example.org")
    monkeypatch.setattr("backend.web.pages.dashboard.dashboard_rows", _boom)
    response = client.get("/")
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in response.text
    assert "nothing was saved" in response.text
    assert SECRET not in response.text and "Traceback" not in response.text and "RuntimeError" not in response.text


def test_a_server_fault_in_the_api_stays_json_without_the_detail(faulty, client, session, monkeypatch):
    token = make_staff_token(session, role="nurse", site=make_site(session))
    session.commit()
    monkeypatch.setattr("backend.web.api.participants.get_session", _boom)
    response = client.get("/api/v1/participants", headers=auth(token))
    assert response.status_code == 500
    assert response.is_json and response.get_json()["code"] == 500
    assert SECRET not in response.text


# --- a reminder time in quiet hours ------------------------------------------------------------------
def _change_reminder(client, pid: int, reminder: str):
    from tests.backend.test_pages import csrf

    token = csrf(client)
    data = {
        "details-csrf_token": token,
        "details-time_zone": "Asia/Shanghai",
        "details-reminder_time": reminder,
        "details-reason": "works nights now",
    }
    response = client.post(f"/participants/{pid}/details", data=data)
    assert response.status_code == 303
    return client.get(f"/participants/{pid}").text


def test_a_reminder_time_in_quiet_hours_is_saved_with_a_plain_warning_about_the_nudge(client, world, session):
    sign_in(client, "nurse-a@example.org")
    page = _change_reminder(client, world["a1"], "23:15")
    assert "Updated reminder time." in page
    assert "23:15 is in the protocol&#39;s quiet hours (22:00–08:00" in page
    assert "The reminder still goes out at 23:15" in page
    assert "held back until 08:00" in page
    assert "flash-warning" in page


def test_a_reminder_time_outside_quiet_hours_gives_no_warning(client, world):
    sign_in(client, "nurse-a@example.org")
    page = _change_reminder(client, world["a1"], "21:59")
    assert "Updated reminder time." in page
    assert "quiet hours" not in page
