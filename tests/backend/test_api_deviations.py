"""The deviation log via the JSON API: filters, paging, site scope, the review (audited), the masked assessor."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from backend.models import AuditEntry
from schedules.changes import Actor
from schedules.deviations import detect_deviations
from schedules.doses import report_dose
from schedules.missed import flag_missed_doses
from schedules.queries import dose_by_seq
from tests.backend.test_api_alerts import token
from tests.conftest import utc
from tests.factories import make_participant, make_site, make_study

NOW = utc("2026-03-06T06:00Z")
SMS = Actor("sms", "participant:1")


@pytest.fixture
def log(session, clock):
    """PKUPH: P-001 missed doses 1 and 2 (major), took dose 3 an hour late (minor late); P-002 missed dose 1 only,
    reported the rest. OTHER: P-900 missed dose 1."""
    clock.move_to(NOW)
    study = make_study(session)
    site, other = make_site(session), make_site(session, code="OTHER", on_call=())
    p1 = make_participant(session, study=study, site=site, code="P-001")
    p2 = make_participant(session, study=study, site=site, code="P-002", phone="+8613812340002")
    p9 = make_participant(session, study=study, site=other, code="P-900", phone="+8613812349999")
    for seq, at in ((2, utc("2026-03-03T01:00Z")), (3, utc("2026-03-05T01:00Z"))):
        report_dose(session, dose=dose_by_seq(session, p2, seq), taken=True, actor=SMS, now=at)
        report_dose(session, dose=dose_by_seq(session, p9, seq), taken=True, actor=SMS, now=at)
    flag_missed_doses(session, now=utc("2026-03-04T04:01Z"))
    report_dose(session, dose=dose_by_seq(session, p1, 3), taken=True, actor=SMS, now=utc("2026-03-06T05:00Z"))
    detect_deviations(session, now=NOW)
    session.commit()
    return {
        "p1": p1,
        "p2": p2,
        "p9": p9,
        "nurse": token(session, "nurse", site),
        "other_nurse": token(session, "nurse", other),
        "investigator": token(session, "investigator", site),
        "admin": token(session, "admin", None),
        "assessor": token(session, "assessor", site),
    }


def _listed(client, headers, query=""):
    response = client.get(f"/api/v1/deviations{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return [(d["study_code"], d["kind"], d["local_date"], d["classification"]) for d in response.get_json()]


def test_the_nurse_lists_her_sites_deviations_oldest_day_first(client, log):
    assert _listed(client, log["nurse"]) == [
        ("P-001", "missed_dose", "2026-03-01", "major"),
        ("P-002", "missed_dose", "2026-03-01", "minor"),
        ("P-001", "missed_dose", "2026-03-03", "major"),
        ("P-001", "late_dose", "2026-03-05", "minor"),
    ]
    first = client.get("/api/v1/deviations?limit=1", headers=log["nurse"]).get_json()[0]
    assert first["site"] == "PKUPH" and first["review_state"] == "open"
    assert first["rule"] == "missed_in_a_row_major = 2: 2 doses not taken in a row"


def test_filters_narrow_the_list(client, log):
    nurse = log["nurse"]
    assert [r[0:2] for r in _listed(client, nurse, "?participant=P-002")] == [("P-002", "missed_dose")]
    assert [r[1] for r in _listed(client, nurse, "?kind=late_dose")] == ["late_dose"]
    assert len(_listed(client, nurse, "?classification=major")) == 2
    assert len(_listed(client, nurse, "?classification=major&classification=minor")) == 4
    assert [r[2] for r in _listed(client, nurse, "?date_from=2026-03-02&date_to=2026-03-04")] == ["2026-03-03"]
    assert _listed(client, nurse, "?review_state=reviewed") == []
    assert len(_listed(client, nurse, "?limit=2&offset=2")) == 2
    assert client.get("/api/v1/deviations?kind=late", headers=nurse).status_code == 422


def test_another_sites_nurse_sees_nothing_of_this_site(client, log):
    assert _listed(client, log["other_nurse"]) == [("P-900", "missed_dose", "2026-03-01", "minor")]
    assert _listed(client, log["other_nurse"], "?participant=P-001") == []
    # Asking for the other site by code changes nothing: a nurse's scope is her own site.
    assert _listed(client, log["other_nurse"], "?site=PKUPH") == []
    some_id = client.get("/api/v1/deviations", headers=log["nurse"]).get_json()[0]["id"]
    assert client.get(f"/api/v1/deviations/{some_id}", headers=log["other_nurse"]).status_code == 404
    answer = client.patch(
        f"/api/v1/deviations/{some_id}", json={"review_state": "reviewed", "comment": "x"}, headers=log["other_nurse"]
    )
    assert answer.status_code == 404


def test_the_admin_sees_every_site_and_filters_by_one(client, log):
    assert len(_listed(client, log["admin"])) == 5
    assert [r[0] for r in _listed(client, log["admin"], "?site=OTHER")] == ["P-900"]


def test_the_masked_assessor_is_refused(client, log):
    for answer in (
        client.get("/api/v1/deviations", headers=log["assessor"]),
        client.get("/api/v1/deviations/1", headers=log["assessor"]),
        client.patch(
            "/api/v1/deviations/1", json={"review_state": "reviewed", "comment": "x"}, headers=log["assessor"]
        ),
    ):
        assert answer.status_code == 403 and "masked assessor" in answer.get_json()["message"]


def test_a_review_is_saved_and_audited(client, session, log):
    deviation = client.get("/api/v1/deviations?kind=late_dose", headers=log["nurse"]).get_json()[0]
    answer = client.patch(
        f"/api/v1/deviations/{deviation['id']}",
        json={"review_state": "not_a_deviation", "comment": "  clinic visit; dose given by the ward  "},
        headers=log["investigator"],
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["review_state"], body["comment"]) == ("not_a_deviation", "clinic visit; dose given by the ward")
    assert body["reviewed_by"].startswith("staff:") and body["reviewed_at"]
    assert _listed(client, log["nurse"], "?review_state=not_a_deviation") == [
        ("P-001", "late_dose", "2026-03-05", "minor")
    ]

    session.expire_all()
    rows = session.exec(
        select(AuditEntry).where(AuditEntry.entity == "deviation", AuditEntry.entity_id == str(deviation["id"]))
    ).all()
    changes = {(r.action, r.field, r.new_value, r.reason, r.actor) for r in rows}
    reason = "clinic visit; dose given by the ward"
    assert ("update", "review_state", "not_a_deviation", reason, body["reviewed_by"]) in changes
    assert ("update", "comment", reason, reason, body["reviewed_by"]) in changes
    assert any(action == "create" and actor == "job:detect_deviations" for action, _, _, _, actor in changes)


def test_a_review_needs_a_known_state_and_a_comment(client, log):
    deviation_id = client.get("/api/v1/deviations", headers=log["nurse"]).get_json()[0]["id"]
    for body in ({"review_state": "done", "comment": "x"}, {"review_state": "reviewed", "comment": ""}, {}):
        answer = client.patch(f"/api/v1/deviations/{deviation_id}", json=body, headers=log["nurse"])
        assert answer.status_code == 422, (body, answer.get_json())
    answer = client.patch(
        f"/api/v1/deviations/{deviation_id}", json={"review_state": "reviewed", "comment": "   "}, headers=log["nurse"]
    )
    assert answer.status_code == 422 and "comment" in answer.get_json()["message"]


def test_detection_running_again_keeps_the_review(client, session, log):
    deviation_id = client.get("/api/v1/deviations", headers=log["nurse"]).get_json()[0]["id"]
    client.patch(
        f"/api/v1/deviations/{deviation_id}",
        json={"review_state": "reviewed", "comment": "called"},
        headers=log["nurse"],
    )
    report = detect_deviations(session, now=NOW + timedelta(hours=1))
    session.commit()
    assert sum(report.created.values()) == 0 and report.reclassified == 0
    again = client.get(f"/api/v1/deviations/{deviation_id}", headers=log["nurse"]).get_json()
    assert (again["review_state"], again["comment"]) == ("reviewed", "called")


def test_the_demo_has_a_deviation_log_with_minor_and_major_rows(app, client, session):
    from backend.runtime.demo import seed_demo
    from tests.factories import make_staff_token

    lines = seed_demo(app)
    assert any(line.startswith("deviation log: checked 6 participant(s)") for line in lines)
    admin = {"Authorization": f"Bearer {make_staff_token(session, role='admin')}"}
    session.commit()
    rows = client.get("/api/v1/deviations", headers=admin).get_json()
    by_code = {(d["study_code"], d["classification"]) for d in rows if d["kind"] == "missed_dose"}
    # P-002 forgets every fourth dose (single misses), P-003 stopped after two doses (a row of misses).
    assert ("P-002", "minor") in by_code and ("P-003", "major") in by_code
    assert not {code for code, _ in by_code} & {"P-001", "P-004", "P-006"}


def test_the_jobs_say_what_they_added_to_the_log(cli, session, clock):
    from tests.factories import make_participant

    make_participant(session)
    session.commit()
    clock.move_to(utc("2026-03-02T04:01Z"))
    missed = cli.invoke(args=["jobs", "run", "flag_missed_doses"])
    assert missed.exit_code == 0, missed.output
    assert "deviation" not in missed.output  # the missed-dose job only flags and alerts: the log follows hourly
    clock.move_to(utc("2026-03-04T04:01Z"))
    assert cli.invoke(args=["jobs", "run", "flag_missed_doses"]).exit_code == 0

    hourly = cli.invoke(args=["jobs", "run", "detect_deviations"])
    assert hourly.exit_code == 0, hourly.output
    assert hourly.output.strip() == (
        "detect_deviations: checked 1 participant(s): 2 deviation(s) recorded (2 missed dose), 0 reclassified"
    )
    again = cli.invoke(args=["jobs", "run", "detect_deviations"])
    assert again.output.strip() == (
        "detect_deviations: checked 1 participant(s): 0 deviation(s) recorded (none new), 0 reclassified"
    )
