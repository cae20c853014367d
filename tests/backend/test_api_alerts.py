"""The nurse alert queue via the JSON API: order, filters, acknowledge/resolve, site scoping, the masked assessor."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from backend.identity.staff import create_staff, issue_staff_token
from backend.models import AuditEntry
from schedules.alerts import open_alert
from schedules.changes import Actor
from schedules.models import HIGH, Alert
from schedules.studies import protocol_of
from schedules.symptoms import report_adverse_event
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, auth, make_participant, make_site, make_study

NOW = utc("2026-03-05T04:00Z")
JOB = Actor("job", "flag_missed_doses")


def token(session, role: str, site) -> dict:
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
def queue(session, clock):
    """Site PKUPH: an old missed dose, a newer high-priority missed dose, a serious AE, an ordinary AE,
    a contact problem. Site OTHER: one missed dose."""
    clock.move_to(NOW)
    study = make_study(session)
    site, other = make_site(session), make_site(session, code="OTHER", on_call=())
    p1 = make_participant(session, study=study, site=site, code="P-001", arm="il2")
    p2 = make_participant(session, study=study, site=site, code="P-002", arm="control", phone="+8613812340002")
    p9 = make_participant(session, study=study, site=other, code="P-900", phone="+8613812349999")
    protocol = protocol_of(study)

    def alert(participant, kind, opened, priority="normal", key=None):
        return open_alert(
            session,
            participant=participant,
            site_id=participant.site_id,
            kind=kind,
            dedupe_key=key or f"{kind}:{participant.id}:{opened}",
            summary=f"{kind} test",
            now=utc(opened),
            actor=JOB,
            priority=priority,
        )[0]

    alerts = {
        "old_missed": alert(p1, "missed_dose", "2026-03-02T04:01Z"),
        "high_missed": alert(p1, "missed_dose", "2026-03-04T04:01Z", priority=HIGH),
        "contact": alert(p2, "contact_problem", "2026-03-01T12:05Z"),
        "other_site": alert(p9, "missed_dose", "2026-03-02T04:01Z"),
    }
    serious = report_adverse_event(
        session,
        participant=p2,
        protocol=protocol,
        actor=Actor("sms", f"participant:{p2.id}"),
        now=utc("2026-03-04T10:00Z"),
        raw_text="住院了",
    )
    ordinary = report_adverse_event(
        session,
        participant=p1,
        protocol=protocol,
        actor=Actor("sms", f"participant:{p1.id}"),
        now=utc("2026-03-03T10:00Z"),
        raw_text="headache",
    )
    alerts["serious_ae"] = session.exec(
        select(Alert).where(Alert.ref_type == "adverse_event", Alert.ref_id == serious.id)
    ).one()
    alerts["ae"] = session.exec(
        select(Alert).where(Alert.ref_type == "adverse_event", Alert.ref_id == ordinary.id)
    ).one()
    return {
        "alerts": {name: a.id for name, a in alerts.items()},
        "site": site,
        "other": other,
        "nurse": token(session, "nurse", site),
        "other_nurse": token(session, "nurse", other),
        "assessor": token(session, "assessor", site),
        "admin": token(session, "admin", None),
    }


def listed(client, headers, query: str = "") -> list[dict]:
    response = client.get(f"/api/v1/alerts{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def names(queue, rows) -> list[str]:
    by_id = {v: k for k, v in queue["alerts"].items()}
    return [by_id[r["id"]] for r in rows]


def test_queue_is_the_callers_site_high_priority_first_then_oldest(client, queue):
    rows = listed(client, queue["nurse"])
    assert names(queue, rows) == ["high_missed", "serious_ae", "contact", "old_missed", "ae"]
    serious = rows[1]
    assert (serious["kind"], serious["study_code"], serious["site"]) == ("serious_ae", "P-002", "PKUPH")
    assert serious["deadline_at"].startswith("2026-03-05T10:00:00") and serious["seconds_to_deadline"] == 6 * 3600
    assert serious["age_seconds"] == 18 * 3600
    assert rows[3]["age_seconds"] == 3 * 86400 - 60 and rows[3]["deadline_at"] is None
    assert rows[0]["kind"] == "missed_dose" and rows[0]["priority"] == "high"
    assert "arm" not in rows[0] and all("il2" not in str(r) for r in rows)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?kind=missed_dose", ["high_missed", "old_missed"]),
        ("?kind=adverse_event&kind=serious_ae", ["serious_ae", "ae"]),
        ("?priority=high", ["high_missed", "serious_ae"]),
        ("?priority=normal&kind=missed_dose", ["old_missed"]),
        ("?state=resolved", []),
    ],
)
def test_filters_by_kind_priority_and_state(client, queue, query, expected):
    assert names(queue, listed(client, queue["nurse"], query)) == expected


def test_bad_filter_is_refused_naming_it(client, queue):
    response = client.get("/api/v1/alerts?kind=meteor", headers=queue["nurse"])
    assert response.status_code == 422 and "kind" in response.get_json()["message"]


def test_acknowledge_then_resolve_with_a_note_records_who_and_is_audited(client, session, queue):
    alert_id = queue["alerts"]["high_missed"]
    acked = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=queue["nurse"])
    assert acked.status_code == 200, acked.get_json()
    assert acked.get_json()["state"] == "acknowledged" and acked.get_json()["acknowledged_by"].startswith("staff:")
    assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=queue["nurse"]).status_code == 409
    assert names(queue, listed(client, queue["nurse"], "?state=acknowledged")) == ["high_missed"]

    no_note = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": ""}, headers=queue["nurse"])
    assert no_note.status_code == 422 and "note" in no_note.get_json()["errors"]["json"]
    resolved = client.post(
        f"/api/v1/alerts/{alert_id}/resolve",
        json={"note": "called: fridge broke, dose taken at clinic"},
        headers=queue["nurse"],
    )
    assert resolved.status_code == 200, resolved.get_json()
    body = resolved.get_json()
    assert (body["state"], body["resolution_note"]) == ("resolved", "called: fridge broke, dose taken at clinic")
    assert "high_missed" not in names(queue, listed(client, queue["nurse"]))
    assert names(queue, listed(client, queue["nurse"], "?state=resolved")) == ["high_missed"]
    assert (
        client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "again"}, headers=queue["nurse"]).status_code
        == 409
    )

    session.expire_all()
    rows = session.exec(
        select(AuditEntry).where(
            AuditEntry.entity == "alert", AuditEntry.entity_id == str(alert_id), AuditEntry.action == "update"
        )
    ).all()
    changes = {(r.field, r.new_value, r.reason) for r in rows}
    assert ("state", "acknowledged", "acknowledged") in changes
    assert ("state", "resolved", "called: fridge broke, dose taken at clinic") in changes
    assert {r.actor for r in rows} == {body["resolved_by"]}


def test_resolving_an_open_alert_acknowledges_it_too(client, queue):
    body = client.post(
        f"/api/v1/alerts/{queue['alerts']['contact']}/resolve",
        json={"note": "new number on file"},
        headers=queue["nurse"],
    ).get_json()
    assert body["acknowledged_at"] == body["resolved_at"] and body["acknowledged_by"] == body["resolved_by"]


def test_another_sites_nurse_gets_404_and_never_sees_them_listed(client, queue):
    alert_id = queue["alerts"]["serious_ae"]
    other = queue["other_nurse"]
    assert names(queue, listed(client, other)) == ["other_site"]
    assert client.get(f"/api/v1/alerts/{alert_id}", headers=other).status_code == 404
    assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=other).status_code == 404
    assert client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "x"}, headers=other).status_code == 404
    assert names(queue, listed(client, other, "?site=PKUPH")) == []
    assert client.get(f"/api/v1/alerts/{alert_id}", headers=queue["nurse"]).status_code == 200


def test_admin_sees_every_site_and_can_pick_one(client, queue):
    assert len(listed(client, queue["admin"])) == 6
    assert names(queue, listed(client, queue["admin"], "?site=OTHER")) == ["other_site"]


def test_assessor_lists_only_adverse_event_alerts_and_is_refused_the_rest(client, queue):
    assert names(queue, listed(client, queue["assessor"])) == ["serious_ae", "ae"]
    assert names(queue, listed(client, queue["assessor"], "?kind=serious_ae")) == ["serious_ae"]
    for kind in ("missed_dose", "contact_problem", "opted_out"):
        response = client.get(f"/api/v1/alerts?kind={kind}", headers=queue["assessor"])
        assert response.status_code == 403 and "adverse-event alerts only" in response.get_json()["message"]
    assert client.get(f"/api/v1/alerts/{queue['alerts']['old_missed']}", headers=queue["assessor"]).status_code == 403
    assert client.get(f"/api/v1/alerts/{queue['alerts']['ae']}", headers=queue["assessor"]).status_code == 200
    assert (
        client.post(f"/api/v1/alerts/{queue['alerts']['ae']}/acknowledge", headers=queue["assessor"]).status_code == 403
    )


def test_unauthenticated_and_unknown(client, queue):
    assert client.get("/api/v1/alerts").status_code == 401
    assert client.post("/api/v1/alerts/999999/acknowledge", headers=queue["nurse"]).status_code == 404
    too_big = client.post(f"/api/v1/alerts/{2**63}/acknowledge", headers=queue["nurse"])
    assert too_big.status_code == 404 and too_big.get_json()["code"] == 404
