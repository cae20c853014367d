"""VAS and adverse events through the JSON API: staff entry, corrections, investigator review and sign-off,
and the masked assessor who sees symptoms but never arm or dosing."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import select

from backend.identity.staff import create_staff, issue_staff_token
from backend.models import AuditEntry
from notifications.models import OutboundMessage
from schedules.changes import Actor
from schedules.models import AdverseEvent, VasScore
from schedules.studies import protocol_of
from schedules.symptoms import record_vas, report_adverse_event, undo_last_vas
from schedules.vocabulary import AE_TERMS
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, VAULT, auth, make_participant, make_site, make_study

NOW = utc("2026-03-02T04:00Z")
ON_CALL = ("+8613900000099", "+8613900000098")


def token(session, role: str, site) -> dict:
    """Authorization header of a new staff member of `site` (valid for the whole test, whatever the clock says)."""
    staff = create_staff(
        session,
        email=f"{role}-{site.code if site else 'all'}@example.org",
        password=STRONG_PASSWORD,
        role=role,
        site=site,
    )
    raw, _ = issue_staff_token(session, staff=staff, now=utc("2026-01-01T00:00Z"), ttl=timedelta(days=365))
    return auth(raw)


@pytest.fixture
def trial(session, clock):
    clock.move_to(NOW)
    study = make_study(session)
    site = make_site(session, on_call=ON_CALL)
    other = make_site(session, code="OTHER", on_call=("+8613900000097",))
    participant = make_participant(session, study=study, site=site, code="P-001", arm="il2")
    stranger = make_participant(session, study=study, site=other, code="P-900", arm="control", phone="+8613812349999")
    return {
        "study": study,
        "site": site,
        "participant": participant,
        "pid": participant.id,
        "stranger": stranger,
        "nurse": token(session, "nurse", site),
        "investigator": token(session, "investigator", site),
        "assessor": token(session, "assessor", site),
        "admin": token(session, "admin", None),
        "other_nurse": token(session, "nurse", other),
    }


def sms_history(session, trial):
    """A participant's SMS answers straight through the domain: 4.5 (later withdrawn by UNDO), then 6.0."""
    protocol, participant = protocol_of(trial["study"]), trial["participant"]
    actor = Actor("sms", f"participant:{participant.id}")
    record_vas(
        session,
        participant=participant,
        value=Decimal("4.5"),
        protocol=protocol,
        actor=actor,
        now=NOW - timedelta(days=1),
    )
    undo_last_vas(
        session,
        participant=participant,
        actor=actor,
        now=NOW - timedelta(days=1) + timedelta(minutes=5),
        within=timedelta(hours=1),
    )
    return record_vas(
        session,
        participant=participant,
        value=Decimal("6.0"),
        protocol=protocol,
        actor=actor,
        now=NOW - timedelta(hours=1),
    )


def keys_of(value) -> set[str]:
    """Every key anywhere in a JSON document."""
    if isinstance(value, dict):
        return set(value) | set().union(*(keys_of(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(v) for v in value)) if value else set()
    return set()


def audit_rows(session, entity: str, entity_id) -> list[AuditEntry]:
    session.expire_all()
    return session.exec(
        select(AuditEntry)
        .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
        .order_by(AuditEntry.id)
    ).all()


def audited_fields(rows) -> dict[str, str]:
    """field -> last new value, with a creation row holding every value as JSON spread out."""
    fields = {}
    for row in rows:
        fields.update(json.loads(row.new_value) if row.field == "*" else {row.field: row.new_value})
    return fields


# --- VAS -----------------------------------------------------------------------------------------
def test_vas_history_lists_every_row_with_its_status(client, session, trial):
    sms_history(session, trial)
    response = client.get(f"/api/v1/participants/{trial['pid']}/vas", headers=trial["nurse"])
    assert response.status_code == 200, response.get_json()
    rows = response.get_json()
    assert [(r["value"], r["status"], r["source"], r["study_code"]) for r in rows] == [
        (4.5, "withdrawn", "sms", "P-001"),
        (6.0, "valid", "sms", "P-001"),
    ]
    assert rows[0]["withdrawn_at"].startswith("2026-03-01T04:05:00")


def test_staff_record_a_vas_with_a_reason_and_it_is_audited(client, session, trial):
    response = client.post(
        f"/api/v1/participants/{trial['pid']}/vas",
        json={"value": 7.5, "reason": "told the nurse by phone"},
        headers=trial["nurse"],
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["value"], body["source"], body["status"], body["reason"]) == (
        7.5,
        "staff",
        "valid",
        "told the nurse by phone",
    )
    rows = audit_rows(session, "vasscore", body["id"])
    assert rows and {r.reason for r in rows} == {"told the nurse by phone"} and rows[0].actor.startswith("staff:")
    assert audited_fields(rows)["value"] == "7.5"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"value": 5}, "reason"),
        ({"value": 5, "reason": ""}, "reason"),
        ({"value": 11, "reason": "phone"}, "value"),
        ({"value": -1, "reason": "phone"}, "value"),
        ({"value": 4.55, "reason": "phone"}, "value"),
        ({"value": "abc", "reason": "phone"}, "value"),
    ],
)
def test_bad_staff_vas_is_refused_naming_the_field_and_nothing_is_stored(client, session, trial, payload, field):
    response = client.post(f"/api/v1/participants/{trial['pid']}/vas", json=payload, headers=trial["nurse"])
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]["json"]
    session.expire_all()
    assert session.exec(select(VasScore)).all() == []


def test_correction_adds_a_row_keeps_the_original_and_is_audited(client, session, trial):
    original = sms_history(session, trial)
    response = client.post(
        f"/api/v1/vas/{original.id}/correct", json={"value": "0.6", "reason": "digits swapped"}, headers=trial["nurse"]
    )
    assert response.status_code == 201, response.get_json()
    new = response.get_json()
    assert (new["value"], new["replaces_id"], new["source"], new["reason"]) == (
        0.6,
        original.id,
        "staff",
        "digits swapped",
    )
    history = client.get(f"/api/v1/participants/{trial['pid']}/vas", headers=trial["nurse"]).get_json()
    assert [(r["value"], r["status"]) for r in history] == [(4.5, "withdrawn"), (6.0, "corrected"), (0.6, "valid")]
    assert history[1]["replaced_by_id"] == new["id"]
    assert any(
        r.field == "status" and r.new_value == "corrected" and r.reason == "digits swapped"
        for r in audit_rows(session, "vasscore", original.id)
    )
    assert audited_fields(audit_rows(session, "vasscore", new["id"]))["replaces_id"] == str(original.id)


def test_correction_needs_a_reason_and_a_valid_row(client, session, trial):
    original = sms_history(session, trial)
    missing = client.post(f"/api/v1/vas/{original.id}/correct", json={"value": 5}, headers=trial["nurse"])
    assert missing.status_code == 422 and "reason" in missing.get_json()["errors"]["json"]
    withdrawn_id = original.id - 1
    again = client.post(f"/api/v1/vas/{withdrawn_id}/correct", json={"value": 5, "reason": "x"}, headers=trial["nurse"])
    assert again.status_code == 409 and "withdrawn" in again.get_json()["message"]
    assert (
        client.post("/api/v1/vas/999999/correct", json={"value": 5, "reason": "x"}, headers=trial["nurse"]).status_code
        == 404
    )


def test_another_sites_nurse_sees_nothing_of_the_participants_symptoms(client, session, trial):
    original = sms_history(session, trial)
    other = trial["other_nurse"]
    assert client.get(f"/api/v1/participants/{trial['pid']}/vas", headers=other).status_code == 404
    assert (
        client.post(f"/api/v1/vas/{original.id}/correct", json={"value": 5, "reason": "x"}, headers=other).status_code
        == 404
    )
    assert client.get(f"/api/v1/participants/{trial['pid']}/adverse-events", headers=other).status_code == 404


# --- adverse events ------------------------------------------------------------------------------
def post_ae(client, trial, who="nurse", **overrides):
    body = {
        "term": "fever",
        "onset_date": "2026-03-01",
        "severity": "moderate",
        "ongoing": True,
        "went_to_hospital": False,
    }
    body.update(overrides)
    return client.post(f"/api/v1/participants/{trial['pid']}/adverse-events", json=body, headers=trial[who])


def test_structured_report_from_staff_opens_an_ordinary_alert_and_pages_nobody(client, session, trial):
    response = post_ae(client, trial, reason="reported at the clinic visit")
    assert response.status_code == 201, response.get_json()
    ae = response.get_json()
    assert (ae["term"], ae["severity"], ae["onset_date"], ae["ongoing"], ae["source"]) == (
        "fever",
        "moderate",
        "2026-03-01",
        True,
        "staff",
    )
    assert (ae["suspected_serious"], ae["alert_state"], ae["deadline_at"]) == (False, "open", None)
    session.expire_all()
    assert session.exec(select(OutboundMessage).where(OutboundMessage.purpose == "staff_alert")).all() == []
    assert {r.reason for r in audit_rows(session, "adverseevent", ae["id"])} == {"reported at the clinic visit"}


def test_went_to_hospital_makes_it_suspected_serious_with_deadline_and_on_call_pages(client, session, trial):
    response = post_ae(client, trial, went_to_hospital=True)
    assert response.status_code == 201, response.get_json()
    ae = response.get_json()
    assert ae["suspected_serious"] is True and ae["deadline_at"].startswith("2026-03-03T04:00:00")
    session.expire_all()
    pages = session.exec(select(OutboundMessage).where(OutboundMessage.purpose == "staff_alert")).all()
    assert sorted(VAULT.decrypt(p.recipient_ciphertext) for p in pages) == sorted(ON_CALL)
    assert {(p.priority, p.ref_id) for p in pages} == {(0, ae["id"])}
    alerts = client.get("/api/v1/alerts", headers=trial["nurse"]).get_json()
    assert [(a["kind"], a["priority"], a["ref_id"]) for a in alerts] == [("serious_ae", "high", ae["id"])]


def test_serious_word_in_other_text_makes_it_suspected_serious(client, trial):
    ae = post_ae(client, trial, term="other", other_text="admitted to hospital with pneumonia").get_json()
    assert ae["suspected_serious"] is True and sorted(ae["matched_keywords"]) == ["admitted", "hospital"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"term": "sneezing"}, "term"),
        ({"term": "other", "other_text": ""}, "other_text"),
        ({"severity": "awful"}, "severity"),
        ({"onset_date": "2026-03-10"}, "onset_date"),
        ({"onset_date": "yesterday"}, "onset_date"),
    ],
)
def test_bad_structured_report_names_the_field_and_writes_nothing(client, session, trial, overrides, field):
    response = post_ae(client, trial, **overrides)
    assert response.status_code == 422 and field in response.get_json()["errors"]["json"], response.get_json()
    session.expire_all()
    assert session.exec(select(AdverseEvent)).all() == []


def test_adverse_event_list_and_detail(client, trial):
    first = post_ae(client, trial).get_json()
    second = post_ae(client, trial, term="headache").get_json()
    listed = client.get(f"/api/v1/participants/{trial['pid']}/adverse-events", headers=trial["nurse"]).get_json()
    assert [a["id"] for a in listed] == [second["id"], first["id"]]
    detail = client.get(f"/api/v1/adverse-events/{first['id']}", headers=trial["nurse"])
    assert detail.status_code == 200 and detail.get_json()["term"] == "fever"
    assert client.get(f"/api/v1/adverse-events/{first['id']}", headers=trial["other_nurse"]).status_code == 404
    assert client.get("/api/v1/adverse-events/999999", headers=trial["nurse"]).status_code == 404
    assert client.get(f"/api/v1/adverse-events/{2**63}", headers=trial["nurse"]).status_code == 404


REVIEW = {
    "ctcae_grade": 3,
    "serious": True,
    "serious_criteria": ["hospitalisation"],
    "relatedness": "possible",
    "outcome": "recovering",
}


SIGN = {"email": "investigator-PKUPH@example.org", "password": STRONG_PASSWORD, "meaning": "approved"}


def test_investigator_reviews_and_signs_off_and_both_are_audited(client, session, trial):
    ae = post_ae(client, trial, went_to_hospital=True).get_json()
    early = client.post(f"/api/v1/adverse-events/{ae['id']}/sign-off", json=SIGN, headers=trial["investigator"])
    assert early.status_code == 409 and "review" in early.get_json()["message"]
    reviewed = client.post(
        f"/api/v1/adverse-events/{ae['id']}/review",
        json={**REVIEW, "reason": "discharge letter"},
        headers=trial["investigator"],
    )
    assert reviewed.status_code == 200, reviewed.get_json()
    body = reviewed.get_json()
    assert (body["ctcae_grade"], body["serious"], body["serious_criteria"], body["relatedness"], body["outcome"]) == (
        3,
        True,
        ["hospitalisation"],
        "possible",
        "recovering",
    )
    assert body["reviewed_by"].startswith("staff:") and body["signed_off_at"] is None
    signed = client.post(f"/api/v1/adverse-events/{ae['id']}/sign-off", json=SIGN, headers=trial["investigator"])
    assert signed.status_code == 200 and signed.get_json()["signed_off_at"].startswith("2026-03-02T04:00:00")
    again = client.post(f"/api/v1/adverse-events/{ae['id']}/sign-off", json=SIGN, headers=trial["investigator"])
    assert again.status_code == 409 and "already signed version 1 as approved" in again.get_json()["message"]
    rows = audit_rows(session, "adverseevent", ae["id"])
    updates = {r.field: (r.new_value, r.reason) for r in rows if r.action == "update"}
    assert updates["ctcae_grade"] == ("3", "discharge letter") and updates["relatedness"] == (
        "possible",
        "discharge letter",
    )
    assert updates["signed_off_by"][1] == "signed version 1 as approved"


def test_nurse_cannot_review_or_sign_off(client, session, trial):
    ae = post_ae(client, trial).get_json()
    client.post(f"/api/v1/adverse-events/{ae['id']}/review", json=REVIEW, headers=trial["investigator"])
    for action, payload in (("sign-off", SIGN), ("review", REVIEW), ("follow-up", {"outcome": "recovered"})):
        response = client.post(f"/api/v1/adverse-events/{ae['id']}/{action}", json=payload, headers=trial["nurse"])
        assert response.status_code == 403
        assert "only an investigator or admin" in response.get_json()["message"]
    session.expire_all()
    assert session.get(AdverseEvent, ae["id"]).signed_off_at is None


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"ctcae_grade": 6}, "ctcae_grade"),
        ({"ctcae_grade": 0}, "ctcae_grade"),
        ({"serious_criteria": []}, "serious_criteria"),
        ({"serious_criteria": ["bad luck"]}, "serious_criteria"),
        ({"relatedness": "maybe"}, "relatedness"),
        ({"outcome": None}, "outcome"),
    ],
)
def test_bad_review_names_the_field(client, trial, overrides, field):
    ae = post_ae(client, trial).get_json()
    response = client.post(
        f"/api/v1/adverse-events/{ae['id']}/review", json={**REVIEW, **overrides}, headers=trial["investigator"]
    )
    assert response.status_code == 422 and field in response.get_json()["errors"]["json"], response.get_json()


def test_term_list_has_english_and_chinese_labels(client, trial):
    response = client.get("/api/v1/adverse-event-terms", headers=trial["nurse"])
    assert response.status_code == 200
    body = response.get_json()
    assert [t["code"] for t in body["terms"]] == list(AE_TERMS)
    # The masked assessor's vocabulary leaves out what the protocol withholds as telling the arm.
    masked = client.get("/api/v1/adverse-event-terms", headers=trial["assessor"]).get_json()
    assert [t["code"] for t in masked["terms"]] == [t for t in AE_TERMS if t != "injection_site_reaction"]
    labels = {t["code"]: t["labels"] for t in body["terms"]}
    assert (
        labels["fever"] == {"en": "Fever", "zh-CN": "发热"}
        and labels["injection_site_reaction"]["en"] == "Injection-site reaction"
    )
    assert body["severities"] == ["mild", "moderate", "severe"]
    assert client.get("/api/v1/adverse-event-terms").status_code == 401


# --- the masked assessor -------------------------------------------------------------------------
def test_assessor_sees_vas_and_adverse_events_with_study_code_and_never_the_arm(client, session, trial):
    sms_history(session, trial)
    report_adverse_event(
        session,
        participant=trial["participant"],
        protocol=protocol_of(trial["study"]),
        actor=Actor("sms", "participant:1"),
        now=NOW,
        raw_text="发烧 住院了",
    )
    documents = []
    for path in (
        f"/api/v1/participants/{trial['pid']}/vas",
        f"/api/v1/participants/{trial['pid']}/adverse-events",
        f"/api/v1/participants/{trial['pid']}",
        "/api/v1/alerts",
    ):
        response = client.get(path, headers=trial["assessor"])
        assert response.status_code == 200, (path, response.get_json())
        documents.append(response.get_json())
        assert "arm" not in keys_of(response.get_json()), path
        assert "il2" not in response.get_data(as_text=True), path
    vas, aes, participant, alerts = documents
    assert {r["study_code"] for r in vas} == {"P-001"} and len(vas) == 2
    # Free text could name the treatment: the assessor gets the coded fields and the serious words, not the text.
    assert [a["study_code"] for a in aes] == ["P-001"] and aes[0]["matched_keywords"] == ["住院"]
    assert "raw_text" not in aes[0] and "other_text" not in aes[0] and "发烧" not in str(aes)
    assert participant["study_code"] == "P-001" and [a["kind"] for a in alerts] == ["serious_ae"]
    ae_id = aes[0]["id"]
    detail = client.get(f"/api/v1/adverse-events/{ae_id}", headers=trial["assessor"])
    assert detail.status_code == 200 and "arm" not in keys_of(detail.get_json()) and "raw_text" not in detail.get_json()
    assert set(detail.get_json()) == set(aes[0])


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("get", "/api/v1/participants/{pid}/doses", None),
        ("post", "/api/v1/participants/{pid}/doses/1/report", {"taken": True}),
        ("get", "/api/v1/participants/{pid}/adherence", None),
        ("get", "/api/v1/participants/{pid}/audit", None),
        ("post", "/api/v1/participants/{pid}/hold", {"reason": "x"}),
        ("post", "/api/v1/participants/{pid}/vas", {}),
        ("post", "/api/v1/participants/{pid}/adverse-events", {}),
    ],
)
def test_assessor_is_refused_dosing_data_and_changes(client, trial, method, path, body):
    response = getattr(client, method)(path.format(pid=trial["pid"]), json=body, headers=trial["assessor"])
    assert response.status_code == 403, response.get_json()


def test_assessor_cannot_correct_review_or_sign_off(client, session, trial):
    original = sms_history(session, trial)
    ae = post_ae(client, trial).get_json()
    assert (
        client.post(
            f"/api/v1/vas/{original.id}/correct", json={"value": 5, "reason": "x"}, headers=trial["assessor"]
        ).status_code
        == 403
    )
    assert (
        client.post(f"/api/v1/adverse-events/{ae['id']}/review", json=REVIEW, headers=trial["assessor"]).status_code
        == 403
    )
    for action in ("sign-off", "follow-up"):
        assert client.post(f"/api/v1/adverse-events/{ae['id']}/{action}", headers=trial["assessor"]).status_code == 403
    assert client.get(f"/api/v1/adverse-events/{ae['id']}/versions", headers=trial["assessor"]).status_code == 403


def test_unauthenticated_calls_get_401(client, trial):
    assert client.get(f"/api/v1/participants/{trial['pid']}/vas").status_code == 401
    assert client.post(f"/api/v1/participants/{trial['pid']}/adverse-events", json={}).status_code == 401


# --- the OpenAPI description ---------------------------------------------------------------------
def test_openapi_documents_every_symptom_and_alert_endpoint_with_errors_and_examples(client):
    spec = client.get("/api/openapi.json").get_json()
    expected = {
        "/api/v1/participants/{participant_id}/vas": {
            "get": {"401", "403", "404"},
            "post": {"401", "403", "404", "422"},
        },
        "/api/v1/vas/{vas_id}/correct": {"post": {"401", "403", "404", "409", "422"}},
        "/api/v1/participants/{participant_id}/adverse-events": {
            "get": {"401", "403", "404"},
            "post": {"401", "403", "404", "422"},
        },
        "/api/v1/adverse-events/{ae_id}": {"get": {"401", "403", "404"}},
        "/api/v1/adverse-events/{ae_id}/review": {"post": {"401", "403", "404", "409", "422"}},
        "/api/v1/adverse-events/{ae_id}/sign-off": {"post": {"401", "403", "404", "409", "422", "429"}},
        "/api/v1/adverse-events/{ae_id}/follow-up": {"post": {"401", "403", "404", "422"}},
        "/api/v1/adverse-events/{ae_id}/versions": {"get": {"401", "403", "404"}},
        "/api/v1/adverse-event-terms": {"get": {"401"}},
        "/api/v1/alerts": {"get": {"401", "403", "422"}},
        "/api/v1/alerts/{alert_id}": {"get": {"401", "403", "404"}},
        "/api/v1/alerts/{alert_id}/acknowledge": {"post": {"401", "403", "404", "409"}},
        "/api/v1/alerts/{alert_id}/resolve": {"post": {"401", "403", "404", "409", "422"}},
    }
    for path, methods in expected.items():
        assert path in spec["paths"], path
        for method, errors in methods.items():
            operation = spec["paths"][path][method]
            assert operation.get("summary"), (path, method)
            assert errors <= set(operation["responses"]), (path, method, set(operation["responses"]))
    schemas = spec["components"]["schemas"]
    for name in (
        "Vas",
        "VasCreate",
        "VasCorrect",
        "AdverseEvent",
        "AdverseEventCreate",
        "AdverseEventReview",
        "AdverseEventSign",
        "AdverseEventFollowUp",
        "AeSignature",
        "AeVersion",
        "Alert",
        "AlertResolve",
    ):
        properties = schemas[name]["properties"]
        assert all(
            "example" in prop for prop in properties.values() if prop.get("type") != "array" or "example" in prop
        ), name
        assert any("example" in prop for prop in properties.values()), name
