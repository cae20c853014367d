"""Issue 16's acceptance: an SAE reported by SMS is completed with every field of an SAE report through the API,
signed, followed up in a new signed version, and all of it is in the ODM and FHIR exports."""

from __future__ import annotations

from xml.etree import ElementTree

from fhir.resources.R4B import get_fhir_model_class
from sqlmodel import select

from schedules.models import AdverseEvent
from tests.backend.test_ae_signatures import sign, trial  # noqa: F401
from tests.backend.test_exports import ODM, odm_schema  # noqa: F401
from tests.sms_helpers import inbound_params, post_signed

NARRATIVE = "Fever to 39.4 °C the night after dose 3; admitted to the ward overnight, paracetamol, IL-2 paused."
FOLLOW_UP = "Discharged the next day; fever resolved; IL-2 restarted after 4 days."
RECORD = {
    "ctcae_term": "10016558",  # Fever
    "onset_date": "2026-03-01",
    "severity": "severe",
    "ongoing": True,
    "went_to_hospital": True,
    "action_taken": "drug_interrupted",
    "aware_at": "2026-03-01T02:30:00+00:00",
    "narrative": NARRATIVE,
    "reason": "phoned the participant back",
}
REVIEW = {
    "ctcae_grade": 3,
    "serious": True,
    "serious_criteria": ["hospitalisation", "other_important"],
    "relatedness": "probable",
    "outcome": "recovering",
}


def _odm_items(odm: bytes) -> tuple[dict, list[dict]]:
    """The adverse event's items and its signatures' items, by item name."""
    (event,) = [
        e for e in ElementTree.fromstring(odm).iter(f"{ODM}StudyEventData") if e.get("StudyEventOID") == "SE.AE"
    ]
    groups: dict[str, list[dict]] = {}
    for group in event.iter(f"{ODM}ItemGroupData"):
        items = {i.get("ItemOID").rsplit(".", 1)[1]: i.get("Value") for i in group.iter(f"{ODM}ItemData")}
        groups.setdefault(group.get("ItemGroupOID"), []).append(items)
    (ae,) = groups["IG.ADVERSE_EVENTS"]
    return ae, groups["IG.AE_SIGNATURES"]


def test_an_sms_sae_completed_signed_and_followed_up_is_whole_in_the_odm_and_fhir_exports(
    client,
    session,
    trial,
    clock,
    odm_schema,
    tmp_path,  # noqa: F811
):
    sms = post_signed(client, "/sms/inbound", inbound_params("昨晚发烧住院了", sender="+8613812345678"))
    assert sms.status_code == 200
    ae = session.exec(select(AdverseEvent)).one()
    assert ae.suspected_serious and ae.source == "sms"

    recorded = client.post(f"/api/v1/adverse-events/{ae.id}/record", json=RECORD, headers=trial["nurse"])
    assert recorded.status_code == 200, recorded.get_json()
    reviewed = client.post(f"/api/v1/adverse-events/{ae.id}/review", json=REVIEW, headers=trial["investigator"])
    assert reviewed.status_code == 200, reviewed.get_json()
    assert sign(client, trial, ae.id).status_code == 200
    follow_up = {"outcome": "recovered", "stop_date": "2026-03-02", "ongoing": False, "narrative": FOLLOW_UP}
    answer = client.post(
        f"/api/v1/adverse-events/{ae.id}/follow-up",
        json={**follow_up, "reason": "discharge letter received"},
        headers=trial["investigator"],
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["version"] == 2
    assert sign(client, trial, ae.id).status_code == 200

    odm = client.get("/api/v1/exports/odm", headers=trial["investigator"])
    assert odm.status_code == 200
    (tmp_path / "sae.xml").write_bytes(odm.data)
    odm_schema.validate(str(tmp_path / "sae.xml"))
    items, signatures = _odm_items(odm.data)
    assert {name: items.get(name) for name in (
        "RAW_TEXT", "CTCAE_TERM", "CTCAE_TERM_NAME", "ONSET_DATE", "STOP_DATE", "SEVERITY", "ONGOING",
        "WENT_TO_HOSPITAL", "ACTION_TAKEN", "AWARE_AT", "NARRATIVE", "CTCAE_GRADE", "SERIOUS", "SERIOUS_CRITERIA",
        "RELATEDNESS", "OUTCOME", "VERSION", "SUSPECTED_SERIOUS",
    )} == {
        "RAW_TEXT": "昨晚发烧住院了",
        "CTCAE_TERM": "10016558",
        "CTCAE_TERM_NAME": "Fever",
        "ONSET_DATE": "2026-03-01",
        "STOP_DATE": "2026-03-02",
        "SEVERITY": "severe",
        "ONGOING": "false",
        "WENT_TO_HOSPITAL": "true",
        "ACTION_TAKEN": "drug_interrupted",
        "AWARE_AT": "2026-03-01T02:30:00Z",
        "NARRATIVE": FOLLOW_UP,
        "CTCAE_GRADE": "3",
        "SERIOUS": "true",
        "SERIOUS_CRITERIA": "hospitalisation,other_important",
        "RELATEDNESS": "probable",
        "OUTCOME": "recovered",
        "VERSION": "2",
        "SUSPECTED_SERIOUS": "true",
    }  # fmt: skip
    assert [(s["VERSION"], s["MEANING"]) for s in signatures] == [("1", "approved"), ("2", "approved")]

    bundle = client.get("/api/v1/exports/fhir", headers=trial["investigator"]).get_json()
    resources = [entry["resource"] for entry in bundle["entry"]]
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    (adverse,) = [r for r in resources if r["resourceType"] == "AdverseEvent"]
    assert adverse["event"]["text"] == "昨晚发烧住院了"
    assert {"system": "http://terminology.hl7.org/CodeSystem/mdr", "code": "10016558", "display": "Fever"} in adverse[
        "event"
    ]["coding"]
    assert (adverse["date"], adverse["detected"], adverse["meta"]["versionId"]) == (
        "2026-03-01",
        "2026-03-01T02:30:00Z",
        "2",
    )
    assert adverse["seriousness"]["coding"][0]["code"] == "serious"
    assert adverse["severity"]["coding"][0]["code"] == "severe"
    assert adverse["outcome"]["coding"][0]["code"] == "resolved"
    assert adverse["suspectEntity"][0]["causality"][0]["assessment"]["text"] == "probable"
    extensions = {}
    for extension in adverse["extension"]:
        value = next(v for k, v in extension.items() if k.startswith("value"))
        extensions.setdefault(extension["url"].rsplit(":", 1)[1], []).append(value)
    assert extensions == {
        "stop-date": ["2026-03-02"],
        "ongoing": [False],
        "went-to-hospital": [True],
        "ctcae-grade": [3],
        "serious-criteria": ["hospitalisation", "other_important"],
        "action-taken": ["drug_interrupted"],
        "narrative": [FOLLOW_UP],
    }
    signed = [r for r in resources if r["resourceType"] == "Provenance"]
    assert len(signed) == 2
