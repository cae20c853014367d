"""Back-dated enrollment at every entry point: the API and the CLI refuse more than 7 days back with a sentence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import func, select

from schedules.models import Participant
from tests.conftest import utc
from tests.factories import PROTOCOL_FILE, auth, make_site, make_staff_token, make_study

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


# --- CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def loaded(cli, clock):
    clock.move_to(TODAY)
    assert cli.invoke(args=["protocol", "load", str(PROTOCOL_FILE)]).exit_code == 0
    made = cli.invoke(args=["sites", "create", "--code", "PKUPH", "--name", "PKU", "--tz", "Asia/Shanghai"])
    assert made.exit_code == 0, made.output
    return cli


def _cli_enroll(cli, first_dose: str):
    return cli.invoke(
        args=[
            *("participants", "enroll", "--study", "NCT04237987", "--code", "P-9", "--arm", "il2"),
            *("--site", "PKUPH", "--phone", "+8613812345678", "--tz", "Asia/Shanghai"),
            *("--reminder-time", "20:00", "--first-dose", first_dose),
        ]
    )


def test_cli_refuses_eight_days_back_with_exit_2_and_one_sentence(loaded):
    result = _cli_enroll(loaded, "2026-02-28")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"Error: first_dose_date: {REFUSED}; this study accepts a first dose at most 7 days in the past."]
