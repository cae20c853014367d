"""The participant app end to end: activation, tokens, schedule, dose report, VAS, AE, messages, settings."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from backend.identity.models import ActivationCode, AppToken, DeviceSession
from backend.models import AuditEntry
from notifications.models import InboundMessage, OutboundMessage
from notifications.planning import dose_keys, sync_participant_messages
from schedules.models import AdverseEvent, Alert, VasScore
from schedules.queries import dose_by_seq
from tests.backend.app_fixtures import ENROLLED_AT, activate, new_code, refresh, signed_in, trial  # noqa: F401  (fixture)
from tests.conftest import utc
from tests.factories import auth, make_participant, make_staff_token


def test_acceptance_activate_schedule_report_dose_3_thigh_left(client, trial, session, clock):
    created = client.post(
        f"/api/v1/participants/{trial.a.id}/activation-codes", json={"send_sms": True}, headers=auth(trial.nurse)
    )
    assert created.status_code == 201, created.get_json()
    code = created.get_json()["code"]
    assert created.get_json()["sent_by_sms"] is True
    sms = session.exec(select(OutboundMessage).where(OutboundMessage.purpose == "activation")).one()
    assert sms.participant_id == trial.a.id and sms.recipient_ciphertext == "" and code in sms.body and "72" in sms.body

    tokens = activate(client, code.lower().replace("-", " "))  # typed loosely on a phone
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900

    schedule = client.get("/api/v1/me/doses", headers=auth(tokens["access_token"]))
    assert schedule.status_code == 200
    assert len(schedule.get_json()) == 46
    assert schedule.get_json()[2]["local_date"] == "2026-03-05" and schedule.get_json()[2]["state"] == "scheduled"
    assert "arm" not in client.get("/api/v1/me", headers=auth(tokens["access_token"])).get_json()

    # Injection day of dose 3, 16:00 in Beijing: its reminder (20:00) and nudge are planned.
    clock.move_to(utc("2026-03-05T08:00Z"))
    sync_participant_messages(session, participant=trial.a, now=utc("2026-03-05T08:00Z"))
    session.flush()
    dose3 = dose_by_seq(session, trial.a, 3)
    planned = session.exec(select(OutboundMessage).where(OutboundMessage.dedupe_key.in_(dose_keys(dose3.id)))).all()
    assert planned and {m.status for m in planned} == {"planned"}

    fresh = refresh(client, tokens["refresh_token"]).get_json()  # the first access token expired long ago
    reported = client.post(
        "/api/v1/me/doses/3/report",
        json={"taken": True, "injection_site": "thigh_left", "taken_at": "2026-03-05T07:55:00Z"},
        headers=auth(fresh["access_token"]),
    )
    assert reported.status_code == 200, reported.get_json()
    body = reported.get_json()
    assert body["state"] == "taken" and body["injection_site"] == "thigh_left" and body["source"] == "app"
    assert body["taken_at"].startswith("2026-03-05T07:55:00")

    session.expire_all()
    assert {
        m.status
        for m in session.exec(select(OutboundMessage).where(OutboundMessage.dedupe_key.in_(dose_keys(dose3.id)))).all()
    } == {"cancelled"}
    trail = session.exec(
        select(AuditEntry).where(AuditEntry.entity == "dose", AuditEntry.entity_id == str(dose3.id))
    ).all()
    state_change = [e for e in trail if e.field == "state"]
    assert state_change and state_change[-1].new_value == "taken"
    assert state_change[-1].source == "app" and state_change[-1].actor == f"app:participant:{trial.a.id}"
    # Staff see the same trail through their API.
    staff_view = client.get(f"/api/v1/participants/{trial.a.id}/audit", headers=auth(trial.nurse)).get_json()
    assert any(
        e["entity"] == "dose"
        and e["field"] == "injection_site"
        and e["new_value"] == "thigh_left"
        and e["source"] == "app"
        for e in staff_view
    )


def test_code_is_single_use_and_expires_after_72_hours(client, trial, clock):
    code = new_code(client, trial.nurse, trial.a.id)
    activate(client, code)
    again = client.post("/api/v1/app/activate", json={"code": code})
    assert again.status_code == 401 and "already been used" in again.get_json()["message"]

    late = new_code(client, trial.nurse, trial.a.id)
    clock.shift(timedelta(hours=72, seconds=1))
    expired = client.post("/api/v1/app/activate", json={"code": late})
    assert expired.status_code == 401 and "expired" in expired.get_json()["message"]


def test_a_new_code_replaces_the_unused_one(client, trial):
    first = new_code(client, trial.nurse, trial.a.id)
    second = new_code(client, trial.nurse, trial.a.id)
    refused = client.post("/api/v1/app/activate", json={"code": first})
    assert refused.status_code == 401 and "replaced by a newer code" in refused.get_json()["message"]
    activate(client, second)


def test_wrong_guesses_burn_the_code_and_are_remembered_although_refused(client, trial, session):
    code = new_code(client, trial.nurse, trial.a.id)
    selector, verifier = code.replace("-", "")[:4], code.replace("-", "")[4:]
    wrong = selector + ("0" if verifier[0] != "0" else "1") + verifier[1:]
    for _ in range(5):
        response = client.post("/api/v1/app/activate", json={"code": wrong})
        assert response.status_code == 401 and response.get_json()["message"].startswith("activation code is not valid")
    session.expire_all()
    row = session.exec(select(ActivationCode).where(ActivationCode.selector == selector)).one()
    assert row.failed_attempts == 5 and row.revoked_reason == "too many wrong attempts"
    # The right code no longer works, and the refusal says why.
    app_client = client.application.test_client()
    burned = app_client.post("/api/v1/app/activate", json={"code": code}, environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert burned.status_code == 401 and "too many wrong attempts" in burned.get_json()["message"]


def test_activation_guesses_are_rate_limited_per_address(client, trial):
    statuses = [client.post("/api/v1/app/activate", json={"code": "AAAA-AAAA-AAAA"}).status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    limited = client.post("/api/v1/app/activate", json={"code": "AAAA-AAAA-AAAA"})
    assert limited.get_json()["code"] == 429 and limited.get_json()["status"] == "Too Many Requests"


def test_tokens_are_random_and_stored_hashed(client, trial, session):
    tokens = signed_in(client, trial, trial.a)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert len(token) >= 4 + 43  # prefix + 256 bits in base64url
    stored = {row.token_hash for row in session.exec(select(AppToken)).all()}
    assert tokens["access_token"] not in stored and tokens["refresh_token"] not in stored
    assert all(len(h) == 64 for h in stored)


def test_expired_access_token_gets_401_with_a_clear_message(client, trial, clock):
    tokens = signed_in(client, trial, trial.a)
    assert client.get("/api/v1/me", headers=auth(tokens["access_token"])).status_code == 200
    clock.shift(timedelta(minutes=15, seconds=1))
    response = client.get("/api/v1/me", headers=auth(tokens["access_token"]))
    assert response.status_code == 401
    assert response.get_json() == {
        "code": 401,
        "status": "Unauthorized",
        "message": "access token has expired; refresh it",
    }
    renewed = refresh(client, tokens["refresh_token"])
    assert renewed.status_code == 200
    assert client.get("/api/v1/me", headers=auth(renewed.get_json()["access_token"])).status_code == 200


def test_refresh_rotates_and_reuse_revokes_the_whole_family(client, trial, session):
    first = signed_in(client, trial, trial.a)
    second = refresh(client, first["refresh_token"]).get_json()
    assert second["refresh_token"] != first["refresh_token"]
    third = refresh(client, second["refresh_token"]).get_json()

    reused = refresh(client, first["refresh_token"])
    assert reused.status_code == 401 and "already used" in reused.get_json()["message"]
    # The family is gone: the newest refresh token and its access token stop working too.
    newest = refresh(client, third["refresh_token"])
    assert newest.status_code == 401 and "signed out" in newest.get_json()["message"]
    me = client.get("/api/v1/me", headers=auth(third["access_token"]))
    assert me.status_code == 401 and "signed out" in me.get_json()["message"]
    session.expire_all()
    device = session.exec(select(DeviceSession).where(DeviceSession.participant_id == trial.a.id)).one()
    assert device.revoked_reason == "refresh token reused"


def test_refresh_token_is_not_an_access_token(client, trial):
    tokens = signed_in(client, trial, trial.a)
    response = client.get("/api/v1/me", headers=auth(tokens["refresh_token"]))
    assert response.status_code == 401 and "refresh token" in response.get_json()["message"]


def test_staff_revoke_devices_signs_every_device_out(client, trial):
    phone1 = signed_in(client, trial, trial.a)
    phone2 = signed_in(client, trial, trial.a)
    other = signed_in(client, trial, trial.b)
    pending = new_code(client, trial.nurse, trial.a.id)
    response = client.post(
        f"/api/v1/participants/{trial.a.id}/devices/revoke",
        json={"reason": "phone reported lost"},
        headers=auth(trial.nurse),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"devices_revoked": 2, "codes_revoked": 1}
    for tokens in (phone1, phone2):
        assert client.get("/api/v1/me", headers=auth(tokens["access_token"])).status_code == 401
        assert refresh(client, tokens["refresh_token"]).status_code == 401
    assert client.post("/api/v1/app/activate", json={"code": pending}).status_code == 401
    assert client.get("/api/v1/me", headers=auth(other["access_token"])).status_code == 200
    devices = client.get(f"/api/v1/participants/{trial.a.id}/devices", headers=auth(trial.nurse)).get_json()
    assert len(devices) == 2 and all(d["revoked_reason"] == "phone reported lost" for d in devices)


def test_sign_out_ends_this_device_only(client, trial):
    phone1 = signed_in(client, trial, trial.a)
    phone2 = signed_in(client, trial, trial.a)
    assert client.post("/api/v1/app/sign-out", headers=auth(phone1["access_token"])).status_code == 204
    assert client.get("/api/v1/me", headers=auth(phone1["access_token"])).status_code == 401
    assert client.get("/api/v1/me", headers=auth(phone2["access_token"])).status_code == 200


def test_withdrawn_participant_cannot_get_a_code(client, trial):
    client.post(
        f"/api/v1/participants/{trial.a.id}/withdraw", json={"reason": "consent withdrawn"}, headers=auth(trial.nurse)
    )
    response = client.post(f"/api/v1/participants/{trial.a.id}/activation-codes", json={}, headers=auth(trial.nurse))
    assert response.status_code == 409


def test_assessor_and_other_sites_cannot_create_codes(client, trial, session):
    from tests.factories import make_site

    assessor = make_staff_token(session, role="assessor", site=trial.site)
    elsewhere = make_staff_token(session, role="nurse", site=make_site(session, code="OTHER"))
    assert (
        client.post(f"/api/v1/participants/{trial.a.id}/activation-codes", json={}, headers=auth(assessor)).status_code
        == 403
    )
    assert (
        client.post(f"/api/v1/participants/{trial.a.id}/activation-codes", json={}, headers=auth(elsewhere)).status_code
        == 404
    )


def test_me_shows_no_arm_and_patch_replans_reminders(client, trial, session, clock):
    tokens = signed_in(client, trial, trial.a)
    me = client.get("/api/v1/me", headers=auth(tokens["access_token"])).get_json()
    assert me == {
        "study": "NCT04237987",
        "study_code": "P-001",
        "site": "PKUPH",
        "site_phone": "+861088325555",
        "language": "zh-CN",
        "reminder_time": "20:00",
        "time_zone": "Asia/Shanghai",
        "status": "active",
        "sms_opted_out": False,
        "emergency_number": "120",
        "vas": {
            "scale_min": 0.0,
            "scale_max": 10.0,
            "decimals": 1,
            "anchor_low": "完全没有活动",
            "anchor_high": "极度活动",
        },
    }
    clock.move_to(utc("2026-03-01T01:00Z"))
    tokens = refresh(client, tokens["refresh_token"]).get_json()
    sync_participant_messages(session, participant=trial.a, now=utc("2026-03-01T01:00Z"))
    session.flush()
    changed = client.patch(
        "/api/v1/me", json={"reminder_time": "21:30", "language": "en"}, headers=auth(tokens["access_token"])
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["reminder_time"] == "21:30" and changed.get_json()["language"] == "en"
    first = client.get("/api/v1/me/doses/1", headers=auth(tokens["access_token"])).get_json()
    assert first["due_at"].startswith("2026-03-01T13:30:00")
    session.expire_all()
    dose1 = dose_by_seq(session, trial.a, 1)
    # 1 March is also the first VAS day: the reminder asks the prompt too, as one SMS.
    reminder = session.exec(
        select(OutboundMessage).where(
            OutboundMessage.ref_type == "dose",
            OutboundMessage.ref_id == dose1.id,
            OutboundMessage.purpose.in_(("dose_reminder", "dose_and_vas")),
        )
    ).one()
    assert (
        reminder.due_at == utc("2026-03-01T13:30Z")
        and reminder.language == "en"
        and reminder.body.startswith("Reminder")
    )
    audit = session.exec(
        select(AuditEntry).where(AuditEntry.entity == "participant", AuditEntry.field == "reminder_time")
    ).all()
    assert audit[-1].source == "app" and audit[-1].new_value == "21:30"


def test_patch_me_refuses_bad_values_with_the_field_named(client, trial):
    tokens = signed_in(client, trial, trial.a)
    response = client.patch("/api/v1/me", json={"reminder_time": "25:00"}, headers=auth(tokens["access_token"]))
    assert response.status_code == 422 and "reminder_time" in response.get_json()["errors"]["json"]
    response = client.patch("/api/v1/me", json={"language": "fr"}, headers=auth(tokens["access_token"]))
    assert response.status_code == 422 and "language" in response.get_json()["errors"]["json"]


def test_doses_filter_upcoming_and_past(client, trial, clock):
    tokens = signed_in(client, trial, trial.a)
    clock.move_to(utc("2026-03-04T05:00Z"))  # dose 2's window closed at 12:00 Beijing time
    tokens = refresh(client, tokens["refresh_token"]).get_json()
    past = client.get("/api/v1/me/doses?when=past", headers=auth(tokens["access_token"])).get_json()
    upcoming = client.get("/api/v1/me/doses?when=upcoming", headers=auth(tokens["access_token"])).get_json()
    assert [d["seq"] for d in past] == [1, 2] and upcoming[0]["seq"] == 3 and len(past) + len(upcoming) == 46
    assert client.get("/api/v1/me/doses/99", headers=auth(tokens["access_token"])).status_code == 404


def test_report_not_taken_then_conflict_on_a_taken_dose(client, trial, clock):
    tokens = signed_in(client, trial, trial.a)
    clock.move_to(utc("2026-03-01T13:00Z"))
    tokens = refresh(client, tokens["refresh_token"]).get_json()
    skipped = client.post("/api/v1/me/doses/1/report", json={"taken": False}, headers=auth(tokens["access_token"]))
    assert skipped.status_code == 200 and skipped.get_json()["state"] == "skipped"
    taken = client.post(
        "/api/v1/me/doses/1/report",
        json={"taken": True, "injection_site": "arm_right"},
        headers=auth(tokens["access_token"]),
    )
    assert taken.status_code == 200 and taken.get_json()["state"] == "taken"
    again = client.post("/api/v1/me/doses/1/report", json={"taken": True}, headers=auth(tokens["access_token"]))
    assert again.status_code == 409 and again.get_json()["errors"]["json"] == {
        "state": ["dose 1 is taken and cannot become taken"]
    }
    bad_site = client.post(
        "/api/v1/me/doses/3/report",
        json={"taken": True, "injection_site": "thigh left"},
        headers=auth(tokens["access_token"]),
    )
    assert bad_site.status_code == 422 and "injection_site" in bad_site.get_json()["errors"]["json"]
    future = client.post(
        "/api/v1/me/doses/1/report",
        json={"taken": True, "taken_at": "2026-03-02T00:00:00Z"},
        headers=auth(tokens["access_token"]),
    )
    assert future.status_code in (409, 422)


def test_vas_as_number_or_string_with_sms_refusal_reasons(client, trial, session):
    tokens = signed_in(client, trial, trial.a)
    headers = auth(tokens["access_token"])
    assert client.post("/api/v1/me/vas", json={"value": 4.5}, headers=headers).get_json()["value"] == 4.5
    as_text = client.post("/api/v1/me/vas", json={"value": "7,5"}, headers=headers)
    assert as_text.status_code == 201 and as_text.get_json()["value"] == 7.5 and as_text.get_json()["source"] == "app"
    # Worded on the protocol's scale in the participant's language (P-001: Chinese); a wrong type is the schema's.
    for value, reason in (
        (10.5, "评分需在 0 到 10 之间"),
        ("4.55", "最多保留 1 位小数"),
        ("high", "评分必须是 0 到 10 之间的数字"),
        (True, "must be a number"),
    ):
        refused = client.post("/api/v1/me/vas", json={"value": value}, headers=headers)
        assert refused.status_code == 422, (value, refused.get_json())
        assert reason in refused.get_json()["message"] and "value" in refused.get_json()["errors"]["json"]
    history = client.get("/api/v1/me/vas", headers=headers).get_json()
    assert [h["value"] for h in history] == [4.5, 7.5]
    assert len(session.exec(select(VasScore).where(VasScore.participant_id == trial.a.id)).all()) == 2


def test_adverse_event_from_app_opens_alert_and_hospital_alerts_on_call(client, trial, session):
    tokens = signed_in(client, trial, trial.a)
    headers = auth(tokens["access_token"])
    mild = client.post(
        "/api/v1/me/adverse-events",
        json={"term": "injection_site_reaction", "severity": "mild", "onset_date": "2026-02-19"},
        headers=headers,
    )
    assert mild.status_code == 201, mild.get_json()
    assert mild.get_json()["suspected_serious"] is False and "+861088325555" in mild.get_json()["advice"]
    serious = client.post(
        "/api/v1/me/adverse-events",
        json={"term": "fever", "severity": "severe", "went_to_hospital": True, "ongoing": True},
        headers=headers,
    )
    assert serious.status_code == 201 and serious.get_json()["suspected_serious"] is True
    ae = session.get(AdverseEvent, serious.get_json()["id"])
    assert ae.source == "app"
    alert = session.exec(select(Alert).where(Alert.ref_type == "adverse_event", Alert.ref_id == ae.id)).one()
    assert alert.kind == "serious_ae" and alert.priority == "high" and alert.deadline_at is not None
    on_call = session.exec(
        select(OutboundMessage).where(OutboundMessage.purpose == "staff_alert", OutboundMessage.ref_id == ae.id)
    ).all()
    assert len(on_call) == 1
    other = client.post("/api/v1/me/adverse-events", json={"term": "other"}, headers=headers)
    assert other.status_code == 422 and "other_text" in other.get_json()["errors"]["json"]
    listed = client.get("/api/v1/me/adverse-events", headers=headers).get_json()
    assert [x["id"] for x in listed] == [serious.get_json()["id"], mild.get_json()["id"]]
    assert client.get(f"/api/v1/me/adverse-events/{ae.id}", headers=headers).get_json()["term"] == "fever"


def test_messages_are_mine_newest_first_with_bodies(client, trial, session, clock):
    tokens = signed_in(client, trial, trial.a)
    now = utc(ENROLLED_AT)
    session.add(
        OutboundMessage(
            participant_id=trial.a.id,
            site_id=trial.site.id,
            purpose="dose_reminder",
            dedupe_key="t:1",
            body="reminder text",
            due_at=now,
            next_attempt_at=now,
            status="delivered",
            sent_at=now,
        )
    )
    session.add(
        OutboundMessage(
            participant_id=trial.a.id,
            site_id=trial.site.id,
            purpose="dose_reminder",
            dedupe_key="t:2",
            body="future",
            due_at=now + timedelta(days=1),
            next_attempt_at=now + timedelta(days=1),
        )
    )
    session.add(
        InboundMessage(
            message_sid="SM1",
            from_hash="x",
            participant_id=trial.a.id,
            body="1",
            received_at=now + timedelta(minutes=5),
        )
    )
    session.add(
        InboundMessage(message_sid="SM2", from_hash="y", participant_id=trial.b.id, body="not mine", received_at=now)
    )
    session.flush()
    messages = client.get("/api/v1/me/messages", headers=auth(tokens["access_token"])).get_json()
    assert [(m["direction"], m["body"]) for m in messages] == [("inbound", "1"), ("outbound", "reminder text")]
    assert messages[1]["status"] == "delivered" and messages[1]["purpose"] == "dose_reminder"
    assert client.get("/api/v1/me/messages?limit=1", headers=auth(tokens["access_token"])).get_json()[0]["body"] == "1"
    assert client.get("/api/v1/me/messages?limit=0", headers=auth(tokens["access_token"])).status_code == 422


def test_nul_characters_are_refused_not_stored(client, trial):
    """PostgreSQL text cannot hold NUL: it is a 422 naming the field, on every database."""
    tokens = signed_in(client, trial, trial.a)
    headers = auth(tokens["access_token"])
    cases = [
        ("/api/v1/me/adverse-events", {"term": "other", "other_text": "a\x00b"}, headers, "other_text"),
        ("/api/v1/me/adverse-events", {"term": "fever", "description": "a\x00b"}, headers, "description"),
        ("/api/v1/me/doses/1/report", {"taken": False, "note": "a\x00b"}, headers, "note"),
        (f"/api/v1/participants/{trial.a.id}/devices/revoke", {"reason": "a\x00b"}, auth(trial.nurse), "reason"),
        ("/api/v1/app/activate", {"code": "AAAA-AAAA-AAAA", "device_name": "a\x00b"}, {}, "device_name"),
    ]
    for path, body, who, field in cases:
        response = client.post(path, json=body, headers=who)
        assert response.status_code == 422 and field in response.get_json()["errors"]["json"], (
            path,
            response.get_json(),
        )


def test_the_app_names_the_emergency_number_of_the_participants_country(client, trial, session, clock):
    new_york = make_participant(
        session, study=trial.study, site=trial.site, code="P-NY", phone="+12125550123", time_zone="America/New_York"
    )
    session.commit()
    for participant, number, not_number in ((trial.a, "120", "911"), (new_york, "911", "120")):
        headers = auth(signed_in(client, trial, participant)["access_token"])
        serious = client.post(
            "/api/v1/me/adverse-events", json={"term": "fever", "went_to_hospital": True}, headers=headers
        )
        assert serious.status_code == 201
        advice = serious.get_json()["advice"]
        assert number in advice and not_number not in advice


def test_a_score_sent_from_the_app_after_follow_up_ended_is_refused_and_not_stored(client, trial, session, clock):
    clock.move_to(utc("2026-09-15T04:00Z"))  # after P-001's follow-up end date
    headers = auth(signed_in(client, trial, trial.a)["access_token"])
    refused = client.post("/api/v1/me/vas", json={"value": 4.5}, headers=headers)
    assert refused.status_code == 409 and "study has ended" in refused.get_json()["message"]
    assert session.exec(select(VasScore).where(VasScore.participant_id == trial.a.id)).all() == []
