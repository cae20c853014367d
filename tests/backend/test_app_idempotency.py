"""Idempotency-Key: a retried POST returns the first response and creates nothing new."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import func, select

from backend.identity.models import DeviceSession, IdempotencyRecord
from schedules.models import Participant, VasScore
from tests.backend.app_fixtures import activate, new_code, refresh, signed_in, trial  # noqa: F401  (fixture)
from tests.factories import auth


def _count(session, model, *where) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def test_same_post_twice_with_one_key_gives_one_record_and_identical_responses(client, trial, session):
    tokens = signed_in(client, trial, trial.a)
    headers = {**auth(tokens["access_token"]), "Idempotency-Key": "vas-1"}
    first = client.post("/api/v1/me/vas", json={"value": 4.5}, headers=headers)
    second = client.post("/api/v1/me/vas", json={"value": 4.5}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.data == second.data
    assert second.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert _count(session, VasScore, VasScore.participant_id == trial.a.id) == 1


def test_dose_report_retried_after_the_answer_was_lost_is_not_a_conflict(client, trial, session, clock):
    from tests.conftest import utc

    tokens = signed_in(client, trial, trial.a)
    clock.move_to(utc("2026-03-01T13:00Z"))
    tokens = refresh(client, tokens["refresh_token"]).get_json()
    headers = {**auth(tokens["access_token"]), "Idempotency-Key": "dose-1-report"}
    first = client.post(
        "/api/v1/me/doses/1/report", json={"taken": True, "injection_site": "abdomen_left"}, headers=headers
    )
    # The access token expires before the retry: the app refreshes and retries with the same key.
    clock.shift(timedelta(minutes=20))
    renewed = refresh(client, tokens["refresh_token"]).get_json()
    retry = client.post(
        "/api/v1/me/doses/1/report",
        json={"injection_site": "abdomen_left", "taken": True},  # same content, other order
        headers={**auth(renewed["access_token"]), "Idempotency-Key": "dose-1-report"},
    )
    assert first.status_code == retry.status_code == 200 and first.data == retry.data
    unkeyed = client.post("/api/v1/me/doses/1/report", json={"taken": True}, headers=auth(renewed["access_token"]))
    assert unkeyed.status_code == 409  # without a key a repeat is a new request, refused by the dose's state


def test_same_key_different_body_is_refused_with_422(client, trial, session):
    tokens = signed_in(client, trial, trial.a)
    headers = {**auth(tokens["access_token"]), "Idempotency-Key": "k-1"}
    assert client.post("/api/v1/me/vas", json={"value": 4.5}, headers=headers).status_code == 201
    other = client.post("/api/v1/me/vas", json={"value": 5.5}, headers=headers)
    assert other.status_code == 422
    message = other.get_json()["message"]
    assert "Idempotency-Key" in message and other.get_json()["errors"] == {"headers": {"Idempotency-Key": [message]}}
    elsewhere = client.post("/api/v1/me/adverse-events", json={"term": "fever"}, headers=headers)
    assert elsewhere.status_code == 422
    assert _count(session, VasScore, VasScore.participant_id == trial.a.id) == 1


def test_keys_belong_to_one_principal(client, trial, session):
    a = signed_in(client, trial, trial.a)
    b = signed_in(client, trial, trial.b)
    for tokens in (a, b):
        response = client.post(
            "/api/v1/me/vas", json={"value": 3}, headers={**auth(tokens["access_token"]), "Idempotency-Key": "shared"}
        )
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert _count(session, VasScore) == 2


def test_refused_requests_are_not_remembered(client, trial, session):
    tokens = signed_in(client, trial, trial.a)
    headers = {**auth(tokens["access_token"]), "Idempotency-Key": "k-2"}
    assert client.post("/api/v1/me/vas", json={"value": 11}, headers=headers).status_code == 422
    assert client.post("/api/v1/me/vas", json={"value": 1}, headers=headers).status_code == 201
    assert _count(session, IdempotencyRecord, IdempotencyRecord.key == "k-2") == 1


def test_activation_retry_returns_the_same_tokens_which_are_stored_encrypted(client, trial, session):
    code = new_code(client, trial.nurse, trial.a.id)
    first = activate(client, code, **{"Idempotency-Key": "activate-1"})
    second = activate(client, code, **{"Idempotency-Key": "activate-1"})
    assert first == second
    assert _count(session, DeviceSession, DeviceSession.participant_id == trial.a.id) == 1
    assert client.get("/api/v1/me", headers=auth(second["access_token"])).status_code == 200
    record = session.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == "activate-1")).one()
    assert record.scope == "anonymous" and record.status_code == 201
    assert first["access_token"] not in record.body_ciphertext and first["refresh_token"] not in record.body_ciphertext


def test_refresh_retry_with_key_does_not_count_as_reuse(client, trial):
    tokens = signed_in(client, trial, trial.a)
    first = refresh(client, tokens["refresh_token"], **{"Idempotency-Key": "refresh-1"})
    retry = refresh(client, tokens["refresh_token"], **{"Idempotency-Key": "refresh-1"})
    assert first.status_code == retry.status_code == 200 and first.data == retry.data
    assert client.get("/api/v1/me", headers=auth(retry.get_json()["access_token"])).status_code == 200
    assert refresh(client, retry.get_json()["refresh_token"]).status_code == 200


def test_staff_posts_of_other_blueprints_are_idempotent_too(client, trial, session):
    body = {
        "study": "NCT04237987",
        "study_code": "P-777",
        "arm": "control",
        "site": "PKUPH",
        "phone": "+8613812340000",
        "time_zone": "Asia/Shanghai",
        "reminder_time": "20:00",
        "first_dose_date": "2026-03-01",
    }
    headers = {**auth(trial.nurse), "Idempotency-Key": "enroll-P-777"}
    first = client.post("/api/v1/participants", json=body, headers=headers)
    second = client.post("/api/v1/participants", json=body, headers=headers)
    assert first.status_code == second.status_code == 201 and first.data == second.data
    assert _count(session, Participant, Participant.study_code == "P-777") == 1
    code_first = client.post(
        f"/api/v1/participants/{trial.a.id}/activation-codes",
        json={},
        headers={**auth(trial.nurse), "Idempotency-Key": "c"},
    )
    code_again = client.post(
        f"/api/v1/participants/{trial.a.id}/activation-codes",
        json={},
        headers={**auth(trial.nurse), "Idempotency-Key": "c"},
    )
    assert code_first.get_json()["code"] == code_again.get_json()["code"]
    activate(client, code_again.get_json()["code"])  # the replayed code is the live one


def test_malformed_keys_are_refused(client, trial):
    tokens = signed_in(client, trial, trial.a)
    for key in ("x" * 256, "has space"):
        response = client.post(
            "/api/v1/me/vas", json={"value": 1}, headers={**auth(tokens["access_token"]), "Idempotency-Key": key}
        )
        assert response.status_code == 422 and "Idempotency-Key" in response.get_json()["errors"]["headers"]


def test_records_expire_after_a_day(client, trial, session, clock):
    tokens = signed_in(client, trial, trial.a)
    client.post("/api/v1/me/vas", json={"value": 2}, headers={**auth(tokens["access_token"]), "Idempotency-Key": "old"})
    clock.shift(timedelta(hours=24, minutes=1))
    tokens = refresh(client, tokens["refresh_token"]).get_json()
    again = client.post(
        "/api/v1/me/vas", json={"value": 2}, headers={**auth(tokens["access_token"]), "Idempotency-Key": "old"}
    )
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert _count(session, VasScore, VasScore.participant_id == trial.a.id) == 2


def test_openapi_documents_the_header_on_every_post(client):
    spec = client.get("/api/openapi.json").get_json()
    posts = [
        (path, ops["post"]) for path, ops in spec["paths"].items() if "post" in ops and path.startswith("/api/v1/")
    ]
    assert len(posts) > 10
    for path, op in posts:
        assert {"$ref": "#/components/parameters/IdempotencyKey"} in op.get("parameters", []), path
    assert spec["components"]["parameters"]["IdempotencyKey"]["in"] == "header"


def test_a_key_still_in_flight_elsewhere_gets_409(app, client, trial, session):
    from backend.web.idempotency import RECORD_TTL, fingerprint
    from schedules.dbtypes import utcnow

    tokens = signed_in(client, trial, trial.a)
    now = utcnow()
    # Another worker took this key and has not finished: its record has no response yet.
    session.add(
        IdempotencyRecord(
            scope=f"participant:{trial.a.id}",
            key="busy",
            method="POST",
            path="/api/v1/me/vas",
            fingerprint=fingerprint(app.config["SECRET_KEY"], "POST", "/api/v1/me/vas", "", b'{"value":1}'),
            created_at=now,
            expires_at=now + RECORD_TTL,
        )
    )
    session.flush()
    response = client.post(
        "/api/v1/me/vas", json={"value": 1}, headers={**auth(tokens["access_token"]), "Idempotency-Key": "busy"}
    )
    assert response.status_code == 409 and "still being processed" in response.get_json()["message"]
    assert _count(session, VasScore, VasScore.participant_id == trial.a.id) == 0


def test_purging_drops_expired_records_and_tokens(client, trial, session, clock):
    from backend.identity.app_tokens import purge_expired_tokens
    from backend.identity.models import AppToken
    from backend.web.idempotency import purge_expired
    from schedules.dbtypes import utcnow

    tokens = signed_in(client, trial, trial.a)
    client.post("/api/v1/me/vas", json={"value": 2}, headers={**auth(tokens["access_token"]), "Idempotency-Key": "p"})
    clock.shift(timedelta(days=2))
    assert purge_expired(session, now=utcnow()) == 1
    assert purge_expired_tokens(session, now=utcnow()) == 1  # the access token; the refresh token lives 30 days
    assert _count(session, AppToken) == 1


def test_the_stored_fingerprint_is_keyed_so_a_password_in_a_body_cannot_be_guessed_from_it(app, client, trial, session):
    import hashlib

    tokens = signed_in(client, trial, trial.a)
    headers = {**auth(tokens["access_token"]), "Idempotency-Key": "keyed-1"}
    assert client.post("/api/v1/me/vas", json={"value": 3}, headers=headers).status_code == 201
    record = session.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == "keyed-1")).one()
    plain = hashlib.sha256()
    for part in (b"POST", b"/api/v1/me/vas", b"", b'{"value":3}'):
        plain.update(len(part).to_bytes(8, "big"))
        plain.update(part)
    assert record.fingerprint != plain.hexdigest()
