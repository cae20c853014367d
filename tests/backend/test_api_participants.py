"""Enrollment and schedule changes through the JSON API, as a nurse would use it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import func, select

from backend.models import AuditEntry
from schedules.models import Participant
from tests.conftest import utc
from tests.factories import auth, make_site, make_staff_token, make_study


@pytest.fixture
def nurse(session, clock):
    """A nurse of site PKUPH with a token, the study loaded."""
    clock.move_to(utc("2026-02-20T00:00Z"))
    make_study(session)
    site = make_site(session)
    return {"token": make_staff_token(session, role="nurse", site=site, ttl=timedelta(days=365)), "site": site}


def enroll(client, token, **overrides):
    body = {
        "study": "NCT04237987",
        "study_code": "P-021",
        "arm": "il2",
        "site": "PKUPH",
        "phone": "+8613812345678",
        "time_zone": "Asia/Shanghai",
        "language": "zh-CN",
        "reminder_time": "20:00",
        "first_dose_date": "2026-03-01",
    }
    body.update(overrides)
    return client.post("/api/v1/participants", json=body, headers=auth(token))


def doses(client, token, pid):
    response = client.get(f"/api/v1/participants/{pid}/doses", headers=auth(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_il2_march_start_gives_46_doses_first_at_noon_utc(client, nurse):
    response = enroll(client, nurse["token"])
    assert response.status_code == 201, response.get_json()
    schedule = doses(client, nurse["token"], response.get_json()["id"])
    assert len(schedule) == 46
    assert schedule[0]["due_at"].startswith("2026-03-01T12:00:00")
    assert schedule[-1]["local_date"] == "2026-05-30"
    assert {d["state"] for d in schedule} == {"scheduled"}


def test_january_start_gives_45_doses(client, nurse, clock):
    clock.move_to(utc("2025-12-30T00:00Z"))  # enrolled before the first dose, as the back-dating limit wants
    pid = enroll(client, nurse["token"], first_dose_date="2026-01-01").get_json()["id"]
    schedule = doses(client, nurse["token"], pid)
    assert len(schedule) == 45 and schedule[-1]["local_date"] == "2026-03-30"


def test_control_arm_has_no_doses_and_six_months_follow_up(client, nurse):
    created = enroll(client, nurse["token"], arm="control").get_json()
    assert doses(client, nurse["token"], created["id"]) == []
    assert created["follow_up_end_date"] == "2026-09-01"
    assert created["treatment_end_date"] is None


def test_new_york_spring_forward_moves_nonexistent_time_forward(client, nurse):
    pid = enroll(
        client, nurse["token"], time_zone="America/New_York", reminder_time="02:30", first_dose_date="2026-03-06"
    ).get_json()["id"]
    by_date = {d["local_date"]: d["due_at"] for d in doses(client, nurse["token"], pid)}
    assert by_date["2026-03-06"].startswith("2026-03-06T07:30:00")
    assert by_date["2026-03-08"].startswith("2026-03-08T07:30:00")  # 03:30 EDT: 02:30 does not exist
    assert by_date["2026-03-10"].startswith("2026-03-10T06:30:00")


def test_hold_and_resume_restart_cadence_keep_end_and_audit_reasons(client, nurse, session, clock):
    pid = enroll(client, nurse["token"]).get_json()["id"]
    clock.move_to(utc("2026-03-09T02:00Z"))
    held = client.post(
        f"/api/v1/participants/{pid}/hold",
        json={"reason": "ALT raised, doctor's order", "effective_date": "2026-03-10"},
        headers=auth(nurse["token"]),
    )
    assert held.status_code == 200, held.get_json()
    assert held.get_json()["participant"]["status"] == "on_hold"
    clock.move_to(utc("2026-03-15T01:00Z"))
    resumed = client.post(
        f"/api/v1/participants/{pid}/resume",
        json={"reason": "ALT normal again", "resume_date": "2026-03-16"},
        headers=auth(nurse["token"]),
    )
    assert resumed.status_code == 200, resumed.get_json()
    schedule = doses(client, nurse["token"], pid)
    active = [d for d in schedule if d["state"] == "scheduled" and d["local_date"] >= "2026-03-10"]
    between = [d for d in schedule if "2026-03-10" <= d["local_date"] < "2026-03-16" and d["state"] == "scheduled"]
    assert between == []
    assert active[0]["local_date"] == "2026-03-16"
    assert all(
        (date.fromisoformat(b["local_date"]) - date.fromisoformat(a["local_date"])).days == 2
        for a, b in zip(active, active[1:])
    )
    assert active[-1]["local_date"] < "2026-06-01"  # treatment end unchanged
    assert resumed.get_json()["participant"]["treatment_end_date"] == "2026-06-01"
    trail = client.get(f"/api/v1/participants/{pid}/audit", headers=auth(nurse["token"])).get_json()
    reasons = {row["reason"] for row in trail}
    assert {"ALT raised, doctor's order", "ALT normal again"} <= reasons
    assert any(r["field"] == "state" and r["new_value"] == "held" and r["actor"].startswith("staff:") for r in trail)


def test_resume_on_the_hold_cadence_date_reuses_held_doses(client, nurse, clock):
    pid = enroll(client, nurse["token"]).get_json()["id"]
    clock.move_to(utc("2026-03-09T02:00Z"))
    client.post(
        f"/api/v1/participants/{pid}/hold",
        json={"reason": "r", "effective_date": "2026-03-10"},
        headers=auth(nurse["token"]),
    )
    clock.move_to(utc("2026-03-15T01:00Z"))
    client.post(
        f"/api/v1/participants/{pid}/resume",
        json={"reason": "r", "resume_date": "2026-03-15"},
        headers=auth(nurse["token"]),
    )
    schedule = doses(client, nurse["token"], pid)
    assert [d["local_date"] for d in schedule if d["state"] == "held"] == ["2026-03-11", "2026-03-13"]
    assert (
        next(d for d in schedule if d["state"] == "scheduled" and d["local_date"] >= "2026-03-10")["local_date"]
        == "2026-03-15"
    )
    assert len(schedule) == 46  # nothing added: the cadence matched


@pytest.mark.parametrize(
    "field,value",
    [
        ("time_zone", "Mars/Olympus_Mons"),
        ("phone", "+86123"),
        ("arm", "placebo"),
        ("first_dose_date", "2026-02-30"),
        ("reminder_time", "8pm"),
    ],
)
def test_bad_enrollment_input_names_the_field_and_writes_nothing(client, nurse, session, field, value):
    before = session.exec(select(func.count()).select_from(AuditEntry)).one()
    response = enroll(client, nurse["token"], **{field: value})
    assert 400 <= response.status_code < 500
    body = response.get_json()
    assert field in str(body["errors"]) and body["message"]
    assert session.exec(select(func.count()).select_from(Participant)).one() == 0
    assert session.exec(select(func.count()).select_from(AuditEntry)).one() == before


def test_duplicate_study_code_is_a_conflict(client, nurse, session):
    assert enroll(client, nurse["token"]).status_code == 201
    again = enroll(client, nurse["token"], phone="+8613812345679")
    assert again.status_code == 409 and "study_code" in str(again.get_json()["errors"])
    assert session.exec(select(func.count()).select_from(Participant)).one() == 1


def test_reminder_time_change_replans_future_doses_at_local_wall_time(client, nurse, clock):
    pid = enroll(client, nurse["token"]).get_json()["id"]
    clock.move_to(utc("2026-03-05T00:00Z"))
    no_reason = client.patch(
        f"/api/v1/participants/{pid}", json={"reminder_time": "08:00"}, headers=auth(nurse["token"])
    )
    assert no_reason.status_code == 422
    changed = client.patch(
        f"/api/v1/participants/{pid}",
        json={"reminder_time": "08:00", "time_zone": "Europe/London", "reason": "moved to London"},
        headers=auth(nurse["token"]),
    )
    assert changed.status_code == 200, changed.get_json()
    by_date = {d["local_date"]: d["due_at"] for d in doses(client, nurse["token"], pid)}
    assert by_date["2026-03-01"].startswith("2026-03-01T12:00:00")  # past dose untouched
    assert by_date["2026-03-07"].startswith("2026-03-07T08:00:00")  # GMT
    assert by_date["2026-04-02"].startswith("2026-04-02T07:00:00")  # BST keeps 08:00 local


def test_staff_record_dose_taken_by_phone_changes_adherence(client, nurse, clock):
    pid = enroll(client, nurse["token"]).get_json()["id"]
    clock.move_to(utc("2026-03-02T08:00Z"))  # dose 1's window closed at 04:00Z
    before = client.get(f"/api/v1/participants/{pid}/adherence", headers=auth(nurse["token"])).get_json()
    assert before["counted"] == 1 and before["adherence"] == 0.0
    recorded = client.post(
        f"/api/v1/participants/{pid}/doses/1/report",
        json={"taken": True, "taken_at": "2026-03-01T12:30:00Z", "injection_site": "abdomen_left", "note": "phoned in"},
        headers=auth(nurse["token"]),
    )
    assert recorded.status_code == 200, recorded.get_json()
    # Taken at 20:30 on its day (inside the window), told to the nurse after the window closed: on time.
    assert recorded.get_json()["state"] == "taken" and recorded.get_json()["source"] == "staff"
    after = client.get(f"/api/v1/participants/{pid}/adherence", headers=auth(nurse["token"])).get_json()
    assert after["adherence"] == 1.0 and after["on_time_rate"] == 1.0 and after["by_state"]["taken"] == 1


def test_withdraw_cancels_future_doses(client, nurse, clock, session):
    pid = enroll(client, nurse["token"]).get_json()["id"]
    clock.move_to(utc("2026-03-04T05:00Z"))
    done = client.post(
        f"/api/v1/participants/{pid}/withdraw", json={"reason": "consent withdrawn"}, headers=auth(nurse["token"])
    )
    assert done.status_code == 200 and done.get_json()["doses_changed"] == 44
    states = {d["state"] for d in doses(client, nurse["token"], pid) if d["local_date"] >= "2026-03-05"}
    assert states == {"cancelled"}


def test_nurse_of_other_site_sees_404(client, nurse, session):
    pid = enroll(client, nurse["token"]).get_json()["id"]
    other = make_staff_token(session, role="nurse", site=make_site(session, code="OTHER"))
    assert client.get(f"/api/v1/participants/{pid}", headers=auth(other)).status_code == 404
    assert client.post(f"/api/v1/participants/{pid}/hold", json={"reason": "x"}, headers=auth(other)).status_code == 404
    assert client.get("/api/v1/participants", headers=auth(other)).get_json() == []


def test_phone_is_encrypted_at_rest_and_never_returned(client, nurse, session):
    created = enroll(client, nurse["token"]).get_json()
    assert "phone" not in created and created["phone_masked"].endswith("78")
    row = session.get(Participant, created["id"])
    assert "13812345678" not in row.phone_ciphertext and "13812345678" not in row.phone_hash


def test_missing_or_expired_token_is_401_with_reason(client, nurse, clock, session):
    assert client.get("/api/v1/participants").get_json()["message"].startswith("missing bearer token")
    short = make_staff_token(session, role="nurse", site=nurse["site"], email="short@example.org")
    clock.move_to(utc("2026-02-20T12:01Z"))  # tokens live 12 hours
    response = client.get("/api/v1/participants", headers=auth(short))
    assert response.status_code == 401 and "expired" in response.get_json()["message"]


def test_staff_token_from_password_and_revocation(client, session, clock):
    from backend.identity.staff import create_staff
    from tests.factories import STRONG_PASSWORD
    from tests.factories import make_site as site_factory

    create_staff(session, email="n2@example.org", password=STRONG_PASSWORD, role="nurse", site=site_factory(session))
    wrong = client.post("/api/v1/auth/token", json={"email": "n2@example.org", "password": "nope-nope-nope"})
    assert wrong.status_code == 401
    issued = client.post("/api/v1/auth/token", json={"email": "n2@example.org", "password": STRONG_PASSWORD})
    assert issued.status_code == 201
    token = issued.get_json()["token"]
    assert len(token) >= 32
    assert client.get("/api/v1/participants", headers=auth(token)).status_code == 200
    assert client.post("/api/v1/auth/token/revoke", headers=auth(token)).status_code == 204
    revoked = client.get("/api/v1/participants", headers=auth(token))
    assert revoked.status_code == 401 and "revoked" in revoked.get_json()["message"]
