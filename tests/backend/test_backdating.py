"""Back-dated enrollment at every entry point: the API and the CLI refuse more than 7 days back with a
sentence; within the limit the past doses wait for a nurse, who enters them on the participant page."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlmodel import func, select

from backend.identity.staff import create_staff
from schedules.missed import flag_missed_doses
from schedules.models import Alert, Dose, Participant
from schedules.queries import doses_of
from tests.backend.test_pages import csrf, sign_in
from tests.cli_helpers import AS_ADMIN, load_trial
from tests.conftest import utc
from tests.factories import (
    STRONG_PASSWORD,
    auth,
    make_participant,
    make_site,
    make_staff_token,
    make_study,
)

TODAY = utc("2026-03-08T02:00Z")  # 10:00 on 8 March in Shanghai
REFUSED = "the first dose date 2026-02-28 is 8 days before the participant's today (2026-03-08 in Asia/Shanghai)"


@pytest.fixture
def nurse(session, clock):
    """A nurse of PKUPH with an API token, the study loaded, the clock at TODAY."""
    clock.move_to(TODAY)
    make_study(session)
    site = make_site(session)
    return make_staff_token(session, role="nurse", site=site, ttl=timedelta(days=365))


def _enroll(client, token, first_dose_date: str):
    body = {
        "study": "NCT04237987",
        "study_code": "P-031",
        "arm": "il2",
        "site": "PKUPH",
        "phone": "+8613812345678",
        "time_zone": "Asia/Shanghai",
        "reminder_time": "20:00",
        "first_dose_date": first_dose_date,
    }
    return client.post("/api/v1/participants", json=body, headers=auth(token))


def test_api_refuses_eight_days_back_with_422_on_first_dose_date_and_writes_nothing(client, nurse, session):
    response = _enroll(client, nurse, "2026-02-28")
    assert response.status_code == 422
    body = response.get_json()
    assert body["message"] == f"{REFUSED}; this study accepts a first dose at most 7 days in the past"
    assert body["errors"]["json"]["first_dose_date"] == [body["message"]]
    assert session.exec(select(func.count()).select_from(Participant)).one() == 0


def test_api_accepts_seven_days_back_and_the_past_doses_wait_for_a_nurse(client, nurse, session, clock):
    created = _enroll(client, nurse, "2026-03-01")
    assert created.status_code == 201, created.get_json()
    pid = created.get_json()["id"]
    for later in ("2026-03-08T04:01Z", "2026-03-12T00:00Z"):
        clock.move_to(utc(later))
        flag_missed_doses(session, now=utc(later))
        session.commit()
    schedule = client.get(f"/api/v1/participants/{pid}/doses", headers=auth(nurse)).get_json()
    assert [d["state"] for d in schedule[:6]] == ["scheduled"] * 3 + ["missed", "missed", "scheduled"]
    adherence = client.get(f"/api/v1/participants/{pid}/adherence", headers=auth(nurse)).get_json()
    assert (adherence["counted"], adherence["awaiting_entry"]) == (2, 3)  # 7 and 9 March are due; 1-5 wait
    entered = client.post(
        f"/api/v1/participants/{pid}/doses/1/report",
        json={"taken": True, "taken_at": "2026-03-01T12:30:00Z", "reason": "diary shown at the visit"},
        headers=auth(nurse),
    )
    assert entered.status_code == 200 and entered.get_json()["state"] == "taken", entered.get_json()
    alerted = session.exec(select(Dose.seq).join(Alert, Alert.ref_id == Dose.id).where(Dose.participant_id == pid))
    assert sorted(alerted.all()) == [4, 5]


# --- CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def loaded(cli, clock):
    clock.move_to(TODAY)
    load_trial(cli)
    return cli


def _cli_enroll(cli, first_dose: str):
    return cli.invoke(
        args=[
            *("participants", "enroll", "--study", "NCT04237987", "--code", "P-9", "--arm", "il2"),
            *("--site", "PKUPH", "--phone", "+8613812345678", "--tz", "Asia/Shanghai"),
            *("--reminder-time", "20:00", "--first-dose", first_dose),
            *AS_ADMIN,
        ]
    )


def test_cli_refuses_eight_days_back_with_exit_2_and_one_sentence(loaded):
    result = _cli_enroll(loaded, "2026-02-28")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"Error: first_dose_date: {REFUSED}; this study accepts a first dose at most 7 days in the past."]


def test_cli_enrolls_seven_days_back_and_shows_the_doses_waiting_for_entry(loaded):
    result = _cli_enroll(loaded, "2026-03-01")
    assert result.exit_code == 0, result.output
    assert loaded.invoke(args=["jobs", "run", "flag_missed_doses"]).exit_code == 0
    report = json.loads(loaded.invoke(args=["participants", "show", "P-9", "--json"]).output)
    assert report["adherence"]["awaiting_entry"] == 3 and report["open_alerts"] == []


# --- nurse pages -------------------------------------------------------------------------------------


@pytest.fixture
def backdated(session, clock):
    """P-007, enrolled at TODAY with a first dose 7 days back; the missed-dose job has run since; a nurse."""
    clock.move_to(TODAY)
    site = make_site(session)
    participant = make_participant(session, site=site, code="P-007", first_dose=date(2026, 3, 1), now=TODAY)
    create_staff(session, email="nurse@example.org", password=STRONG_PASSWORD, role="nurse", site=site)
    clock.move_to(utc("2026-03-08T05:00Z"))
    flag_missed_doses(session, now=utc("2026-03-08T05:00Z"))
    session.commit()
    return participant.id


def test_the_page_shows_doses_to_enter_and_a_nurse_enters_one_from_the_diary(client, backdated, session):
    sign_in(client, "nurse@example.org")
    assert "3 to enter" in client.get("/").text
    page = client.get(f"/participants/{backdated}").text
    assert page.count('<span class="state" title="Dose 1: from before enrollment: to be entered by a nurse">') == 1
    assert page.count('<td class="dose dose-to_enter">') == 3
    assert "3 doses from before enrollment are to be entered by a nurse" in page
    assert "Dose 1 — 2026-03-01 (from before enrollment: to be entered by a nurse)" in page
    assert "Adherence <strong>0%</strong>\n    (0 of 1 due doses taken)" in page  # 7 March only

    first = doses_of(session, backdated)[0]
    response = client.post(
        f"/participants/{backdated}/dose",
        data={
            "dose-csrf_token": csrf(client),
            "dose-dose": str(first.id),
            "dose-taken": "yes",
            "dose-taken_at": "2026-03-01T20:40",
            "dose-reason": "diary shown at the visit",
        },
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).text
    assert "Dose 1 (2026-03-01) recorded: taken on time" in page
    assert "2 doses from before enrollment are to be entered by a nurse" in page
    assert "Adherence <strong>50%</strong>\n    (1 of 2 due doses taken)" in page
    assert session.exec(select(func.count()).select_from(Alert).where(Alert.ref_id == first.id)).one() == 0
