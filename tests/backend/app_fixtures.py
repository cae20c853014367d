"""Shared set-up of the participant app tests: a site with a nurse and two enrolled participants, and
helpers that activate the app for one of them through the real endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from schedules.models import Participant, Site, Study
from tests.conftest import utc
from tests.factories import auth, make_participant, make_site, make_staff_token, make_study

ENROLLED_AT = "2026-02-20T00:00Z"


@dataclass
class Trial:
    """What the tests act on."""

    study: Study
    site: Site
    nurse: str
    a: Participant
    b: Participant


@pytest.fixture
def trial(session, clock) -> Trial:
    """Study NCT04237987, site PKUPH with a nurse, participants P-001 (A) and P-002 (B), first dose 1 March."""
    clock.move_to(utc(ENROLLED_AT))
    study = make_study(session)
    site = make_site(session)
    nurse = make_staff_token(session, role="nurse", site=site, ttl=timedelta(days=365))
    a = make_participant(session, study=study, site=site, code="P-001", phone="+8613812345678")
    b = make_participant(session, study=study, site=site, code="P-002", phone="+8613812345679")
    return Trial(study, site, nurse, a, b)


def new_code(client, staff_token: str, participant_id: int, **body) -> str:
    """Have staff create an activation code; returns it."""
    response = client.post(
        f"/api/v1/participants/{participant_id}/activation-codes", json=body, headers=auth(staff_token)
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["code"]


def activate(client, code: str, **headers) -> dict:
    """Exchange a code for a token pair."""
    response = client.post("/api/v1/app/activate", json={"code": code, "device_name": "test phone"}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def signed_in(client, trial: Trial, participant: Participant) -> dict:
    """A token pair for the participant's app."""
    return activate(client, new_code(client, trial.nurse, participant.id))


def refresh(client, refresh_token: str, **headers):
    """POST the refresh endpoint."""
    return client.post("/api/v1/app/token/refresh", json={"refresh_token": refresh_token}, headers=headers)
