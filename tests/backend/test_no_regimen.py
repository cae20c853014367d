"""An arm without a dosing regimen (the control arm of NCT04237987) has no doses: its participant page shows no
dosing control or word, the dashboard no dose figures on a phone, and a hold is refused with a sentence
(before, "Hold dosing" worked and said "0 dose(s) held")."""

from __future__ import annotations

from datetime import date

import pytest

from backend.identity.staff import create_staff
from backend.operations import participants as ops
from schedules.errors import Conflict
from schedules.models import Participant
from tests.backend.test_pages import csrf, fresh, sign_in
from tests.conftest import utc
from tests.factories import ACTOR, STRONG_PASSWORD, auth, make_participant, make_site, make_staff_token, make_study

# Words and controls that belong to dosing only (the il2 page has every one of them).
DOSING_WORDS = (
    "Hold dosing",
    "Treatment",
    "Dose calendar",
    "Record a dose",
    "Adherence",
    "taken on time",
    "Planned",
    "dose and message",
    'id="calendar"',
    'id="hold"',
    'id="record-dose"',
)


@pytest.fixture
def arms(session, clock):
    """A control-arm and an IL-2 participant at one site, and its nurse."""
    clock.move_to(utc("2026-03-06T06:00Z"))
    study = make_study(session)
    site = make_site(session)
    control = make_participant(session, study=study, site=site, code="C-001", arm="control", phone="+8613800000021")
    il2 = make_participant(session, study=study, site=site, code="I-001", phone="+8613800000022")
    create_staff(session, email="nurse@example.org", password=STRONG_PASSWORD, role="nurse", site=site)
    session.commit()
    return {"control": control.id, "il2": il2.id, "site": site}


def test_the_control_participant_page_has_no_dosing_controls_or_words(client, arms):
    sign_in(client, "nurse@example.org")
    control = client.get(f"/participants/{arms['control']}").text
    il2 = client.get(f"/participants/{arms['il2']}").text
    for word in DOSING_WORDS:
        assert word in il2, word
        assert word not in control, word
    assert "Withdraw from the trial" in control and "Cancels every future message." in control


def test_the_dashboard_marks_control_rows_so_a_phone_shows_no_dose_figures(client, arms):
    sign_in(client, "nurse@example.org")
    page = client.get("/").text
    control_row = page[page.index('data-code="C-001"') :].split("</tr>")[0]
    il2_row = page[page.index('data-code="I-001"') :].split("</tr>")[0]
    assert control_row.count("no-dosing") == 3
    assert "no-dosing" not in il2_row


def test_hold_refuses_a_participant_without_a_regimen_with_a_sentence(session, arms):
    participant = session.get(Participant, arms["control"])
    with pytest.raises(Conflict, match="the control arm has no dosing regimen: there is no dosing to hold"):
        ops.hold(session, participant=participant, reason="x", actor=ACTOR, now=utc("2026-03-06T06:00Z"))
    assert participant.status == "active"


def test_a_hold_posted_for_a_control_participant_is_refused_on_the_page_and_in_the_api(client, session, arms):
    sign_in(client, "nurse@example.org")
    response = client.post(
        f"/participants/{arms['control']}/hold",
        data={"hold-csrf_token": csrf(client), "hold-effective": "2026-03-07", "hold-reason": "by mistake"},
    )
    assert response.status_code == 422
    assert "no dosing regimen" in response.text
    token = make_staff_token(session, role="nurse", site=arms["site"])
    session.commit()
    api = client.post(
        f"/api/v1/participants/{arms['control']}/hold",
        json={"reason": "by mistake", "effective_date": date(2026, 3, 7).isoformat()},
        headers=auth(token),
    )
    assert api.status_code == 409
    assert "no dosing regimen" in api.get_json()["message"]
    assert fresh(session, Participant, arms["control"]).status == "active"
