"""The participant app as served (/app/ with its own CSP, manifest and service worker) and the nurse page's app
parts: the activation code with its QR code, and the injection-site rotation history."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from backend.identity.staff import create_staff
from schedules.queries import dose_by_seq
from tests.backend.app_fixtures import activate, trial  # noqa: F401  (fixture)
from tests.backend.test_pages import csrf, sign_in
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, auth

APP_FILES = [
    "/app/",
    "/app/js/app.js",
    "/app/js/api.js",
    "/app/js/outbox.js",
    "/app/js/screens.js",
    "/app/js/vasline.js",
    "/app/js/bodymap.js",
    "/app/js/i18n.js",
    "/app/js/store.js",
    "/app/js/dom.js",
    "/app/app.css",
    "/app/manifest.webmanifest",
    "/app/sw.js",
    "/app/icon.svg",
    "/app/icon-192.png",
    "/app/icon-512.png",
]


def test_every_file_of_the_app_is_served_with_the_apps_csp_and_no_inline_script(client):
    for path in APP_FILES:
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "worker-src 'self'" in csp and "manifest-src 'self'" in csp
        assert "unsafe-inline" not in csp and "connect-src 'self'" in csp
    shell = client.get("/app/").text
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", shell) is None  # every script is a file
    assert client.get("/app/js/app.js").mimetype == "text/javascript"
    assert client.get("/app/manifest.webmanifest").mimetype == "application/manifest+json"
    assert client.get("/app/sw.js").headers["Service-Worker-Allowed"] == "/app/"
    assert client.get("/app").status_code == 308
    assert client.get("/app/../backend/app.py").status_code == 404


def test_the_service_worker_keeps_every_file_of_the_shell():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "backend" / "web" / "static" / "app"
    worker = (root / "sw.js").read_text()
    listed = set(re.findall(r'"(/app/[^"]*)"', worker.split("];")[0]))
    on_disk = {"/app/" + str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} - {
        "/app/sw.js",
        "/app/index.html",
    }
    assert on_disk | {"/app/"} == listed


@pytest.fixture
def nurse_page(client, session, trial):
    create_staff(session, email="nurse-page@example.org", password=STRONG_PASSWORD, role="nurse", site=trial.site)
    create_staff(session, email="assessor-page@example.org", password=STRONG_PASSWORD, role="assessor", site=trial.site)
    session.commit()
    sign_in(client, "nurse-page@example.org")
    return client


def test_nurse_creates_an_app_code_and_its_qr_code_opens_the_app_with_the_code(nurse_page, trial, client):
    page = nurse_page.get(f"/participants/{trial.a.id}")
    assert 'id="app-access"' in page.text and "Create app code" in page.text
    made = nurse_page.post(f"/participants/{trial.a.id}/app-code", data={"app-csrf_token": csrf(nurse_page)})
    assert made.status_code == 201, made.text
    code = re.search(r'id="app-code">([^<]+)<', made.text).group(1)
    link = re.search(r'id="app-link">([^<]+)<', made.text).group(1)
    assert link.endswith(f"/app/#code={code}")
    qr = re.search(r'id="app-qr"|src="(data:image/svg\+xml[^"]+)"', made.text)
    svg = unquote(re.search(r'src="(data:image/svg\+xml[^"]+)"', made.text).group(1))
    assert qr and "<svg" in svg and "path" in svg
    # The code works once in the app.
    tokens = activate(client.application.test_client(), code)
    assert tokens["token_type"] == "Bearer"


def test_the_app_code_needs_a_csrf_token_and_an_unmasked_role(nurse_page, trial, client):
    assert nurse_page.post(f"/participants/{trial.a.id}/app-code", data={}).status_code == 400
    assessor = client.application.test_client()
    sign_in(assessor, "assessor-page@example.org")
    refused = assessor.post(f"/participants/{trial.a.id}/app-code", data={"app-csrf_token": csrf(assessor)})
    assert refused.status_code == 403


def test_the_participant_page_shows_the_rotation_history(nurse_page, trial, session, clock):
    clock.move_to(utc("2026-03-03T10:00Z"))
    code = nurse_page.application.test_client().post(
        f"/api/v1/participants/{trial.a.id}/activation-codes", json={}, headers=auth(trial.nurse)
    )
    headers = auth(activate(nurse_page.application.test_client(), code.get_json()["code"])["access_token"])
    for seq, site, at in ((1, "thigh_left", "2026-03-01T10:00:00Z"), (2, "arm_right", "2026-03-03T09:00:00Z")):
        reported = nurse_page.post(
            f"/api/v1/me/doses/{seq}/report",
            json={"taken": True, "injection_site": site, "taken_at": at},
            headers=headers,
        )
        assert reported.status_code == 200
    sign_in(nurse_page, "nurse-page@example.org")  # the page session of ten days ago has expired
    page = nurse_page.get(f"/participants/{trial.a.id}").text
    history = re.search(r'<ol class="plain" id="site-history">(.*?)</ol>', page, re.S).group(1)
    assert history.index("Right upper arm") < history.index("Left thigh")
    uses = re.search(r'<table class="grid" id="site-uses">(.*?)</table>', page, re.S).group(1)
    assert re.search(r"Left thigh</td><td class=\"num\">1</td>", uses)
    assert re.search(r"Belly, left side</td><td class=\"num\">0</td><td>never", uses)
    assert dose_by_seq(session, trial.a, 2).injection_site == "arm_right"


def test_the_adverse_event_page_shows_the_site_of_an_injection_site_reaction(nurse_page, trial, clock):
    clock.move_to(utc("2026-03-03T10:00Z"))
    api = nurse_page.application.test_client()
    code = api.post(f"/api/v1/participants/{trial.a.id}/activation-codes", json={}, headers=auth(trial.nurse))
    headers = auth(activate(api, code.get_json()["code"])["access_token"])
    api.post(
        "/api/v1/me/doses/2/report",
        json={"taken": True, "injection_site": "abdomen_right", "taken_at": "2026-03-03T09:00:00Z"},
        headers=headers,
    )
    ae = api.post("/api/v1/me/adverse-events", json={"term": "injection_site_reaction"}, headers=headers).get_json()
    sign_in(nurse_page, "nurse-page@example.org")
    page = nurse_page.get(f"/adverse-events/{ae['id']}").text
    assert re.search(r'id="ae-injection-site">abdomen right \(latest injection', page)
