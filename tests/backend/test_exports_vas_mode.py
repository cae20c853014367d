"""Issue 18's acceptance in the exports: a participant's marks on the app's 10 cm line and their SMS scores are
both exported, each with its mode, in the CSV bundle, ODM and FHIR."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

from tests.backend.app_fixtures import signed_in, trial  # noqa: F401  (fixture)
from tests.backend.test_exports import ODM, _bundle
from tests.conftest import utc
from tests.factories import auth, make_staff_token
from tests.sms_helpers import inbound_params, post_signed


def test_line_marks_and_sms_scores_are_exported_each_with_its_mode(client, session, trial, clock):
    investigator = make_staff_token(session, role="investigator", site=trial.site, ttl=timedelta(days=30))
    session.commit()
    clock.move_to(utc("2026-03-03T10:00Z"))
    app = auth(signed_in(client, trial, trial.a)["access_token"])
    assert client.post("/api/v1/me/vas", json={"value": 6.3, "mode": "vas_line"}, headers=app).status_code == 201
    clock.move_to(utc("2026-03-10T10:00Z"))
    assert post_signed(client, "/sms/inbound", inbound_params("V 4.5", sender="+8613812345678")).status_code == 200

    files = _bundle(client.get("/api/v1/exports/csv", headers=auth(investigator)).data)
    mine = [(r["value"], r["source"], r["mode"]) for r in files["vas"] if r["study_code"] == "P-001"]
    assert mine == [("6.3", "app", "vas_line"), ("4.5", "sms", "sms_numeric")]
    (mode,) = [r for r in files["data_dictionary"] if r["dataset"] == "vas" and r["variable"] == "mode"]
    assert set(mode["allowed_values"].split("|")) == {"vas_line", "sms_numeric"}, mode

    odm = ElementTree.fromstring(client.get("/api/v1/exports/odm", headers=auth(investigator)).data)
    (subject,) = [s for s in odm.iter(f"{ODM}SubjectData") if s.get("SubjectKey") == "P-001"]
    modes = [i.get("Value") for i in subject.iter(f"{ODM}ItemData") if i.get("ItemOID").endswith(".MODE")]
    assert modes == ["vas_line", "sms_numeric"]

    bundle = client.get("/api/v1/exports/fhir", headers=auth(investigator)).get_json()
    answers = [
        (e["resource"]["item"][0]["answer"][0]["valueDecimal"], e["resource"]["extension"][0]["valueCode"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse" and e["resource"]["id"].startswith("vas-P-001-")
    ]
    assert answers == [(6.3, "vas_line"), (4.5, "sms_numeric")]
