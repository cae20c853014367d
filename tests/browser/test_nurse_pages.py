"""A nurse's day in a real browser: sign in, see the seeded trial, open a participant, acknowledge an
alert, record a dose reported by phone, watch adherence change, try the SMS simulator. Screenshots of
each page go to artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from backend.db import get_database
from backend.identity.staff import create_staff
from backend.runtime.demo import DEMO_PASSWORD
from schedules.models import Participant
from tests.browser.conftest import sign_in
from tests.factories import STRONG_PASSWORD, make_site

pytestmark = pytest.mark.browser


def _percent(text: str) -> int:
    return int(re.search(r"(\d+)%", text).group(1))


def test_nurse_signs_in_acknowledges_an_alert_records_a_dose_and_sees_adherence_change(
    page, screenshot_dir, console_errors
):
    from playwright.sync_api import expect

    sign_in(page, "nurse@demo.local", DEMO_PASSWORD)
    expect(page.get_by_role("heading", name="Participants")).to_be_visible()
    rows = page.locator("#participants tbody tr")
    expect(rows).to_have_count(6)
    for code in ("P-001", "P-002", "P-003", "P-004", "P-005", "P-006"):
        expect(page.locator(f"tr[data-code='{code}']")).to_be_visible()
    page.screenshot(path=screenshot_dir / "dashboard.png", full_page=True)
    before_dashboard = _percent(page.locator("tr[data-code='P-003'] td.adherence").inner_text())

    page.get_by_role("link", name="P-003", exact=True).click()
    expect(page.get_by_role("heading", name="Participant P-003")).to_be_visible()
    expect(page.locator("table.month").first).to_be_visible()
    expect(page.locator("table.month td.dose-missed").first).to_contain_text("Missed")
    page.wait_for_function("() => window.Chart && Chart.getChart('vas-chart') !== undefined")
    expect(page.locator("#message-log")).to_be_visible()
    page.screenshot(path=screenshot_dir / "participant.png", full_page=True)

    page.get_by_role("link", name="Alert queue").click()
    expect(page.get_by_role("heading", name="Alert queue")).to_be_visible()
    page.screenshot(path=screenshot_dir / "alerts.png", full_page=True)
    row = page.locator("#alert-queue tbody tr[data-participant='P-003'][data-kind='adverse_event']")
    row_id = row.get_attribute("id")
    expect(row.locator(".state-open")).to_be_visible()
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_contain_text("Alert acknowledged")
    expect(page.locator(f"#{row_id} .state-acknowledged")).to_contain_text("acknowledged")
    expect(page.locator(f"#{row_id}")).to_contain_text("acknowledged by nurse@demo.local")

    page.get_by_role("link", name="P-003").first.click()
    before = _percent(page.locator("#adherence").inner_text())
    missed = page.locator("#dose-dose option", has_text="missed").first.get_attribute("value")
    page.get_by_label("Dose", exact=True).select_option(missed)
    page.get_by_label("Taken", exact=True).check()
    page.get_by_label("Reason / call note").fill("Participant phoned: injected last night, forgot to reply.")
    page.get_by_role("button", name="Record dose").click()
    expect(page.get_by_role("status")).to_contain_text("taken late")
    after = _percent(page.locator("#adherence").inner_text())
    assert after > before

    page.get_by_role("link", name="Participants").click()
    assert _percent(page.locator("tr[data-code='P-003'] td.adherence").inner_text()) > before_dashboard
    assert console_errors == []


def test_simulator_lets_a_newcomer_reply_as_a_participant_and_run_the_jobs(page, screenshot_dir, console_errors):
    from playwright.sync_api import expect

    sign_in(page, "nurse@demo.local", DEMO_PASSWORD)
    page.get_by_role("link", name="SMS simulator").click()
    page.get_by_label("Reply as", exact=True).select_option(label="P-005 (phone ending 05)")
    page.get_by_label("Message text").fill("V 4.5")
    page.get_by_role("button", name="Send SMS").click()
    expect(page.locator("#last-reply")).to_contain_text("4.5")
    expect(page.locator("#message-log")).to_contain_text("V 4.5")

    # No scheduler runs beside this test server: the pages say so until the jobs have run. (Around 08:00 in
    # Beijing the demo's morning messages are also overdue for the same reason, a second warning.)
    expect(page.get_by_role("alert").filter(has_text="The automatic checks have not run yet")).to_be_visible()
    page.get_by_role("button", name="Run jobs now").click()
    flashes = page.get_by_role("status")
    for job in ("flag_missed_doses", "plan_messages", "dispatch_outbox"):
        expect(flashes).to_contain_text(job)
    expect(page.locator(".system-warning")).to_have_count(0)
    page.screenshot(path=screenshot_dir / "simulator.png", full_page=True)
    assert console_errors == []


def test_a_nurse_of_another_site_can_neither_see_nor_change_a_participant(page, live_app):
    with get_database(live_app).session() as session:
        other = make_site(session, code="SITE-B", time_zone="Europe/Berlin")
        create_staff(session, email="nurse-b@example.org", password=STRONG_PASSWORD, role="nurse", site=other)
        p1 = session.exec(select(Participant).where(Participant.study_code == "P-001")).one()
        p1_id, p1_status = p1.id, p1.status

    sign_in(page, "nurse-b@example.org", STRONG_PASSWORD)
    page.wait_for_url("**/")
    assert page.locator("tr[data-code='P-001']").count() == 0
    assert page.goto(f"/participants/{p1_id}").status == 404

    token = page.locator("input[name='logout-csrf_token']").get_attribute("value")
    response = page.request.post(
        f"/participants/{p1_id}/hold",
        form={"hold-csrf_token": token, "hold-effective": "2026-01-01", "hold-reason": "not my participant"},
    )
    assert response.status == 404
    with get_database(live_app).session() as session:
        assert session.get(Participant, p1_id).status == p1_status
