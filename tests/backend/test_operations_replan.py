"""Every entry point that changes doses or details re-plans the participant's messages at once.

Each test goes through one real entry point (API, app API, nurse page, CLI) and looks at the outbox,
so dropping the re-planning from any of them fails here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from backend.identity.staff import create_staff
from notifications.models import OutboundMessage
from schedules.models import Participant
from tests.backend.app_fixtures import activate, new_code
from tests.backend.test_pages import csrf, sign_in
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, auth, make_site, make_staff_token, make_study

# 1 March 2026, 04:00 in Beijing: dose 1 (20:00 local = 12:00Z) is inside the planning horizon.
MORNING_OF_FIRST_DOSE = "2026-02-28T20:00Z"


@pytest.fixture
def nurse(session, clock):
    """A nurse of PKUPH (token and page login), the study loaded, the clock on the first dose's morning."""
    clock.move_to(utc("2026-02-20T00:00Z"))
    make_study(session)
    site = make_site(session)
    token = make_staff_token(session, role="nurse", site=site, ttl=timedelta(days=365))
    clock.move_to(utc(MORNING_OF_FIRST_DOSE))
    return {"token": token, "site": site}


def _enroll(client, token) -> int:
    body = {
        "study": "NCT04237987",
        "study_code": "P-031",
        "arm": "il2",
        "site": "PKUPH",
        "phone": "+8613812345670",
        "time_zone": "Asia/Shanghai",
        "language": "zh-CN",
        "reminder_time": "20:00",
        "first_dose_date": "2026-03-01",
    }
    response = client.post("/api/v1/participants", json=body, headers=auth(token))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def planned(session, participant_id: int) -> list[tuple[str, str]]:
    """(purpose, due time) of the participant's messages still waiting to go out."""
    session.expire_all()
    rows = session.exec(
        select(OutboundMessage).where(
            OutboundMessage.participant_id == participant_id, OutboundMessage.status == "planned"
        )
    ).all()
    return sorted((row.purpose, row.due_at.strftime("%Y-%m-%dT%H:%MZ")) for row in rows)


def _post(client, token, path, **body):
    response = client.post(path, json=body, headers=auth(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_api_enrollment_plans_the_first_reminder(client, nurse, session):
    pid = _enroll(client, nurse["token"])
    assert ("dose_and_vas", "2026-03-01T12:00Z") in planned(session, pid)


def test_api_hold_resume_and_withdraw_each_change_what_will_be_sent(client, nurse, session, clock):
    pid = _enroll(client, nurse["token"])
    _post(client, nurse["token"], f"/api/v1/participants/{pid}/hold", reason="ALT raised")
    assert not [p for p in planned(session, pid) if p[0] in ("dose_reminder", "dose_and_vas", "dose_nudge")]
    clock.move_to(utc("2026-03-02T04:00Z"))
    _post(client, nurse["token"], f"/api/v1/participants/{pid}/resume", reason="ALT normal", resume_date="2026-03-03")
    assert ("dose_reminder", "2026-03-03T12:00Z") in planned(session, pid)
    _post(client, nurse["token"], f"/api/v1/participants/{pid}/withdraw", reason="withdrew consent")
    assert planned(session, pid) == []


def test_api_new_reminder_time_moves_the_planned_reminder(client, nurse, session):
    pid = _enroll(client, nurse["token"])
    response = client.patch(
        f"/api/v1/participants/{pid}",
        json={"reason": "works late", "reminder_time": "21:30"},
        headers=auth(nurse["token"]),
    )
    assert response.status_code == 200, response.get_json()
    reminders = [due for purpose, due in planned(session, pid) if purpose in ("dose_reminder", "dose_and_vas")]
    assert reminders == ["2026-03-01T13:30Z"]


def test_staff_dose_report_withdraws_the_reminder(client, nurse, session, clock):
    pid = _enroll(client, nurse["token"])
    clock.move_to(utc("2026-03-01T02:00Z"))
    _post(client, nurse["token"], f"/api/v1/participants/{pid}/doses/1/report", taken=True, reason="told us by phone")
    assert not [p for p in planned(session, pid) if p[0] in ("dose_reminder", "dose_and_vas", "dose_nudge")]


def test_app_dose_report_and_reminder_time_replan(client, nurse, session, clock):
    pid = _enroll(client, nurse["token"])
    tokens = activate(client, new_code(client, nurse["token"], pid))
    app_auth = auth(tokens["access_token"])
    changed = client.patch("/api/v1/me", json={"reminder_time": "19:00"}, headers=app_auth)
    assert changed.status_code == 200, changed.get_json()
    assert [due for purpose, due in planned(session, pid) if purpose in ("dose_reminder", "dose_and_vas")] == [
        "2026-03-01T11:00Z"
    ]
    clock.move_to(utc("2026-03-01T02:00Z"))
    reported = client.post(
        "/api/v1/me/doses/1/report",
        json={"taken": True, "injection_site": "abdomen_left"},
        headers=auth(activate(client, new_code(client, nurse["token"], pid))["access_token"]),
    )
    assert reported.status_code == 200, reported.get_json()
    assert not [p for p in planned(session, pid) if p[0] in ("dose_reminder", "dose_and_vas", "dose_nudge")]


def test_nurse_page_hold_withdraws_the_reminder(client, nurse, session):
    pid = _enroll(client, nurse["token"])
    create_staff(session, email="page-nurse@example.org", password=STRONG_PASSWORD, role="nurse", site=nurse["site"])
    assert sign_in(client, "page-nurse@example.org").status_code == 303
    response = client.post(
        f"/participants/{pid}/hold",
        data={"hold-csrf_token": csrf(client), "hold-effective": "2026-03-01", "hold-reason": "ALT raised"},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert not [p for p in planned(session, pid) if p[0] in ("dose_reminder", "dose_and_vas", "dose_nudge")]


def test_cli_enrollment_plans_the_first_reminder(cli, nurse, session):
    result = cli.invoke(
        args=[
            "participants",
            "enroll",
            "--study",
            "NCT04237987",
            "--code",
            "P-041",
            "--arm",
            "il2",
            "--site",
            "PKUPH",
            "--phone",
            "+8613812345671",
            "--tz",
            "Asia/Shanghai",
            "--reminder-time",
            "20:00",
            "--first-dose",
            "2026-03-01",
            *("--as", "nurse-pkuph@example.org", "--reason", "consented at the visit"),
        ]
    )
    assert result.exit_code == 0, result.output
    participant = session.exec(select(Participant).where(Participant.study_code == "P-041")).one()
    assert ("dose_and_vas", "2026-03-01T12:00Z") in planned(session, participant.id)
