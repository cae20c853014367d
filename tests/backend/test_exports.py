"""Study-wide exports from the demo data: ODM validates against the official ODM 1.3.2 schema, every FHIR resource
validates with fhir.resources' R4B models, the CSV bundle reads back to what the API says, who may export what, and
the one audit row per export."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import odmlib
import pytest
import xmlschema
from fhir.resources.R4B import get_fhir_model_class
from odmlib.loader import ODMLoader
from odmlib.odm_loader import XMLODMLoader
from odmlib.oid_generator import create_oid_checker
from sqlalchemy import event
from sqlmodel import select

from backend.identity.principal import Principal
from backend.models import AuditEntry, Staff
from backend.runtime.demo import seed_demo
from schedules.dbtypes import utcnow
from schedules.models import Participant, Site, Study
from tests.backend.test_ae_signatures import EMAIL, reviewed_ae, sign, trial
from tests.backend.test_blinding import TELLING, worlds
from tests.cli_helpers import as_staff
from tests.factories import auth, make_participant, make_site, make_staff_token

ODM_SCHEMA = Path(odmlib.__file__).parent / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"
ODM = "{http://www.cdisc.org/ns/odm/v1.3}"
INVESTIGATOR = "investigator@demo.local"


@pytest.fixture
def demo(app, session):
    """The demo trial, with bearer tokens for a staff member of each role at its site."""
    seed_demo(app)
    session.expire_all()
    site = session.exec(select(Site).where(Site.code == "PKUPH")).one()
    tokens = {
        role: make_staff_token(session, role=role, site=None if role == "admin" else site, email=f"{role}@x.org")
        for role in ("admin", "investigator", "nurse", "assessor")
    }
    session.commit()
    return tokens


@pytest.fixture(scope="module")
def odm_schema():
    """The official ODM 1.3.2 schema shipped by odmlib, loaded from its own directory only (nothing downloads)."""
    return xmlschema.XMLSchema(str(ODM_SCHEMA), allow="sandbox")


def _export(client, token: str, fmt: str, **query):
    return client.get(f"/api/v1/exports/{fmt}", query_string=query, headers=auth(token))


def _bundle(content: bytes) -> dict[str, list[dict]]:
    """The CSV files of a zipped bundle, read back with the csv module (the BOM is part of every file)."""
    files = {}
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name in archive.namelist():
            raw = archive.read(name)
            assert raw.startswith("\ufeff".encode()), name
            if name.endswith(".csv"):
                files[name[:-4]] = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
            else:
                files[name] = raw.decode("utf-8-sig")
    return files


def _export_rows(session) -> list[dict]:
    session.expire_all()
    rows = session.exec(select(AuditEntry).where(AuditEntry.action == "export").order_by(AuditEntry.id)).all()
    return [dict(actor=row.actor, source=row.source, reason=row.reason, **json.loads(row.new_value)) for row in rows]


def test_the_odm_export_of_the_demo_validates_against_the_odm_1_3_2_schema(
    cli, client, demo, tmp_path, odm_schema, session
):
    out = tmp_path / "study.xml"
    result = cli.invoke(args=["export", "--format", "odm", "--out", str(out), *as_staff(INVESTIGATOR, "DSMB")])
    assert result.exit_code == 0, result.output
    odm_schema.validate(str(out))  # raises with the first violation
    # Every OID referred to is defined, and every definition referred to (odmlib's own check).
    loader = ODMLoader(XMLODMLoader(model_package="odm_1_3_2", ns_uri="http://www.cdisc.org/ns/odm/v1.3"))
    loader.open_odm_document(str(out))
    checker = create_oid_checker("odm_1_3_2")
    assert loader.load_odm().verify_oids(checker) and checker.check_unreferenced_oids() == {}
    assert out.stat().st_mode & 0o777 == 0o600

    root = ElementTree.parse(out).getroot()
    assert (root.get("ODMVersion"), root.get("FileType")) == ("1.3.2", "Snapshot")
    subjects = {s.get("SubjectKey"): s for s in root.iter(f"{ODM}SubjectData")}
    assert sorted(subjects) == [f"P-00{i}" for i in range(1, 7)]
    # Each participant's VAS answers are their VAS events, values as recorded.
    p1 = session.exec(select(Participant).where(Participant.study_code == "P-001")).one()
    vas = [
        i.get("Value")
        for e in subjects["P-001"].iter(f"{ODM}StudyEventData")
        if e.get("StudyEventOID") == "SE.VAS"
        for i in e.iter(f"{ODM}ItemData")
        if i.get("ItemOID") == "IT.VAS.VALUE"
    ]
    api = client.get(f"/api/v1/participants/{p1.id}/vas", headers=auth(demo["investigator"]))
    assert [float(v) for v in vas] == [row["value"] for row in api.get_json()] and vas
    # The metadata: forms for dose, VAS and adverse event, code lists and units.
    forms = {f.get("OID") for f in root.iter(f"{ODM}FormDef")}
    assert {"F.DOSE", "F.VAS", "F.AE", "F.DEVIATION"} <= forms
    assert {u.get("OID") for u in root.iter(f"{ODM}MeasurementUnit")} == {"MU.IU", "MU.CM"}
    assert any(c.get("OID") == "CL.ADVERSE_EVENTS.TERM" for c in root.iter(f"{ODM}CodeList"))
    # Pseudonymised: no phone number anywhere.
    assert "+86138" not in out.read_text()


def test_a_broken_odm_document_is_refused_by_the_schema(odm_schema, tmp_path):
    # The check above can fail: a document without its ODMVersion's enumerated value does not validate.
    broken = tmp_path / "broken.xml"
    broken.write_text('<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" FileType="Snapshot" FileOID="x" />')
    assert not odm_schema.is_valid(str(broken))


def test_every_resource_of_the_fhir_export_validates_with_the_r4b_models(client, demo, session):
    response = _export(client, demo["admin"], "fhir")
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/fhir+json"
    bundle = response.get_json()
    get_fhir_model_class("Bundle").model_validate(bundle)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    kinds: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        kinds.setdefault(resource["resourceType"], []).append(resource)
    assert len(kinds["ResearchStudy"]) == 1 and len(kinds["Questionnaire"]) == 1
    assert len(kinds["Patient"]) == len(kinds["ResearchSubject"]) == 6
    assert all(set(p) == {"resourceType", "id", "identifier"} for p in kinds["Patient"])  # no name, no telecom
    # One administration per reported dose; a missed or planned dose is none.
    participants = session.exec(select(Participant)).all()
    reported = 0
    for p in participants:
        doses = client.get(f"/api/v1/participants/{p.id}/doses", headers=auth(demo["admin"])).get_json()
        reported += sum(d["state"] in ("taken", "taken_late", "skipped") for d in doses)
    assert len(kinds["MedicationAdministration"]) == reported > 0
    assert {m["status"] for m in kinds["MedicationAdministration"]} <= {"completed", "not-done"}
    assert len(kinds["QuestionnaireResponse"]) == 15
    events = {e["id"]: e for e in kinds["AdverseEvent"]}
    reported = sum(
        len(client.get(f"/api/v1/participants/{p.id}/adverse-events", headers=auth(demo["admin"])).get_json())
        for p in participants
    )
    assert len(events) == reported > 0
    sms = events["ae-P-003-1"]
    assert sms["actuality"] == "actual" and sms["event"]["text"] == "injection site red and itchy"
    assert sms["suspectEntity"]  # P-003 is in the IL-2 arm
    # The demo's completed SAE: coded with its CTCAE term by MedDRA code, detected when the site became aware.
    coded = events["ae-P-001-1"]
    assert {"system": "http://terminology.hl7.org/CodeSystem/mdr", "code": "10016558", "display": "Fever"} in coded[
        "event"
    ]["coding"]
    assert coded["detected"] != coded["recordedDate"] and coded["severity"]["coding"][0]["code"] == "severe"


def test_the_csv_bundle_reads_back_to_what_the_api_says(client, demo, session):
    response = _export(client, demo["investigator"], "csv")
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    files = _bundle(response.data)
    names = {"participants", "doses", "vas", "adverse_events", "ae_signatures", "alerts", "deviations", "messages"}
    assert set(files) == names | {"data_dictionary", "README.txt"}
    assert "NCT04237987" in files["README.txt"] and "UTC" in files["README.txt"]
    dictionary = {(row["dataset"], row["variable"]): row for row in files["data_dictionary"]}
    for name in names:  # every column is declared in the dictionary
        for column in files[name][0] if files[name] else []:
            assert (name, column) in dictionary, (name, column)
    assert dictionary[("vas", "value")]["unit"] == "cm" and dictionary[("doses", "dose_amount")]["unit"] == "IU"
    assert "injection_site_reaction" in dictionary[("adverse_events", "term")]["allowed_values"].split("|")

    headers = auth(demo["investigator"])
    for p in session.exec(select(Participant)).all():
        mine = {name: [r for r in files[name] if r["study_code"] == p.study_code] for name in names}
        doses = client.get(f"/api/v1/participants/{p.id}/doses", headers=headers).get_json()
        assert [(int(r["dose_seq"]), r["local_date"], r["state"]) for r in mine["doses"]] == [
            (d["seq"], d["local_date"], d["state"]) for d in doses
        ]
        vas = client.get(f"/api/v1/participants/{p.id}/vas", headers=headers).get_json()
        assert sorted((float(r["value"]), r["status"]) for r in mine["vas"]) == sorted(
            (v["value"], v["status"]) for v in vas
        )
        aes = client.get(f"/api/v1/participants/{p.id}/adverse-events", headers=headers).get_json()
        assert [(r["term"], r["raw_text"], r["suspected_serious"]) for r in mine["adverse_events"]] == [
            (a["term"], a["raw_text"], str(a["suspected_serious"]).lower()) for a in aes
        ]
        assert [(r["ctcae_term"], r["ctcae_term_name"], r["action_taken"]) for r in mine["adverse_events"]] == [
            (a["ctcae_term"], a["ctcae_term_name"], a["action_taken"] or "") for a in aes
        ]
        assert [r["aware_at"][:19] for r in mine["adverse_events"]] == [a["aware_at"][:19] for a in aes]
        deviations = client.get("/api/v1/deviations", query_string={"participant": p.study_code}, headers=headers)
        assert sorted((r["kind"], r["classification"], r["local_date"]) for r in mine["deviations"]) == sorted(
            (d["kind"], d["classification"], d["local_date"]) for d in deviations.get_json()
        )
        (row,) = mine["participants"]
        assert (row["arm"], row["status"], row["first_dose_date"]) == (p.arm, p.status, p.first_dose_date.isoformat())
    # Times are UTC with Z; message rows are metadata only.
    assert all(r["due_at"].endswith("Z") for r in files["doses"])
    assert files["deviations"]  # the demo has missed doses
    assert "body" not in files["messages"][0] and {r["direction"] for r in files["messages"]} >= {"outbound"}


def test_a_csv_export_from_the_cli_is_a_directory_or_a_zip_and_each_export_is_one_audit_row(
    cli, demo, tmp_path, session
):
    folder, archive = tmp_path / "bundle", tmp_path / "bundle.zip"
    made = cli.invoke(args=["export", "--format", "csv", "--out", str(folder), *as_staff(INVESTIGATOR, "analysis")])
    assert made.exit_code == 0, made.output
    assert (folder / "data_dictionary.csv").read_bytes().startswith("\ufeff".encode())
    zipped = cli.invoke(args=["export", "--format", "csv", "--out", str(archive), *as_staff(INVESTIGATOR, "again")])
    assert zipped.exit_code == 0, zipped.output
    assert _bundle(archive.read_bytes())["doses"]
    with open(folder / "vas.csv", encoding="utf-8-sig", newline="") as file:
        assert len(list(csv.DictReader(file))) == 15

    first, second = _export_rows(session)
    investigator = session.exec(select(Staff).where(Staff.email == INVESTIGATOR)).one()
    assert first["actor"].endswith(f"staff:{investigator.id}") and first["reason"] == "analysis"
    assert (first["format"], first["masked"], first["sites"], first["to"]) == ("csv", False, ["PKUPH"], str(folder))
    assert first["rows"]["participants"] == 6 and first["rows"]["vas"] == 15 and first["rows"]["doses"] > 0
    assert f"vas {first['rows']['vas']}" in made.output

    masked = cli.invoke(
        args=["export", "--format", "fhir", "--out", str(tmp_path / "m.json"), *as_staff("assessor@demo.local", "x")]
    )
    assert masked.exit_code == 0 and "masked variant" in masked.output, masked.output
    assert b"MedicationAdministration" not in (tmp_path / "m.json").read_bytes()
    row = _export_rows(session)[-1]
    assert row["masked"] is True and "doses" not in row["rows"]


def test_the_cli_refuses_nurses_bad_paths_and_unknown_sites_with_a_sentence(cli, demo, tmp_path, session):
    def run(*args, who=INVESTIGATOR):
        return cli.invoke(args=["export", *args, *as_staff(who, "why")])

    out = str(tmp_path / "x.xml")
    nurse = run("--format", "odm", "--out", out, who="nurse@demo.local")
    assert nurse.exit_code == 3 and "investigator" in nurse.output
    (tmp_path / "taken.xml").write_text("mine")
    cases = {
        "already exists": run("--format", "odm", "--out", str(tmp_path / "taken.xml")),
        "does not exist": run("--format", "odm", "--out", str(tmp_path / "nowhere" / "x.xml")),
        "no site 'XYZ'": run("--format", "odm", "--out", out, "--site", "XYZ"),
        "'xls'": run("--format", "xls", "--out", out),
    }
    for sentence, result in cases.items():
        assert result.exit_code == 2 and sentence in result.output, (sentence, result.output)
    unsaid = cli.invoke(args=["export", "--format", "odm", "--out", out, "--as", INVESTIGATOR])
    assert unsaid.exit_code == 2 and "--reason" in unsaid.output
    assert (tmp_path / "taken.xml").read_text() == "mine" and not Path(out).exists()
    assert _export_rows(session) == []  # nothing exported, nothing audited


def test_the_api_refuses_nurses_and_participants_and_bad_input(client, demo, session):
    nurse = _export(client, demo["nurse"], "csv")
    assert nurse.status_code == 403 and "investigators and admins" in nurse.get_json()["message"]
    assert _export(client, demo["investigator"], "xls").status_code == 422
    unknown = _export(client, demo["investigator"], "odm", site="XYZ")
    assert unknown.status_code == 422 and "no site 'XYZ'" in unknown.get_json()["message"]
    make_site(session, code="OTHER")
    session.commit()
    other = _export(client, demo["investigator"], "odm", site="OTHER")
    assert other.status_code == 403 and "your own site" in other.get_json()["message"]
    # An admin may narrow to any site; the other site has no participants.
    narrowed = _export(client, demo["admin"], "csv", site="OTHER")
    assert narrowed.status_code == 200 and _bundle(narrowed.data)["participants"] == []
    (row,) = _export_rows(session)
    assert (row["sites"], row["format"], row["to"], row["rows"]["participants"]) == (["OTHER"], "csv", "api", 0)


def test_the_assessor_gets_the_masked_variant_without_arm_or_dosing(client, demo, odm_schema, tmp_path):
    files = _bundle(_export(client, demo["assessor"], "csv").data)
    assert set(files) == {
        "participants",
        "vas",
        "adverse_events",
        "ae_signatures",
        "alerts",
        "data_dictionary",
        "README.txt",
    }
    assert "arm" not in files["participants"][0] and "raw_text" not in files["adverse_events"][0]
    assert {r["kind"] for r in files["alerts"]} <= {"adverse_event", "serious_ae"}
    assert "masked" in files["README.txt"]
    odm = _export(client, demo["assessor"], "odm")
    (tmp_path / "masked.xml").write_bytes(odm.data)
    odm_schema.validate(str(tmp_path / "masked.xml"))
    assert b"SE.DOSE" not in odm.data and b"Interleukin" not in odm.data
    bundle = _export(client, demo["assessor"], "fhir").get_json()
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert not kinds & {"MedicationAdministration", "Medication"}
    assert all("assignedArm" not in e["resource"] for e in bundle["entry"])


def _texts(fmt: str, content: bytes) -> list[str]:
    if fmt != "csv":
        return [content.decode("utf-8")]
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return [archive.read(name).decode("utf-8-sig") for name in archive.namelist()]


def test_masked_exports_of_two_worlds_that_differ_only_by_arm_are_identical_and_tell_nothing(worlds):
    il2, control = worlds["il2"], worlds["control"]
    masked = {}
    for fmt in ("csv", "odm", "fhir"):
        answers = [_export(world.app.test_client(), world.assessor, fmt) for world in (il2, control)]
        assert [a.status_code for a in answers] == [200, 200], answers[0].get_json()
        masked[fmt] = answers[0].data
        assert answers[0].data == answers[1].data, fmt
        for text in _texts(fmt, answers[0].data):
            found = TELLING.search(text)
            assert found is None, (fmt, text[max(0, found.start() - 150) : found.end() + 80])
    # The masked export has the story: both VAS answers, the adverse events and their alerts.
    files = _bundle(_export(il2.app.test_client(), il2.assessor, "csv").data)
    assert [r["value"] for r in files["vas"]] == ["4.5", "5"]
    assert {r["term"] for r in files["adverse_events"]} >= {"withheld"}
    assert {r["ctcae_term"] for r in files["adverse_events"]} >= {"10016558", "withheld"}
    assert "action_taken" not in files["adverse_events"][0]
    assert all("10022095" not in text for fmt in ("csv", "odm", "fhir") for text in _texts(fmt, masked[fmt]))
    assert {r["kind"] for r in files["alerts"]} == {"adverse_event", "serious_ae"}
    # The full variant does tell the arm: the comparison above could fail.
    full = [_export(w.app.test_client(), w.investigator, "csv").data for w in (il2, control)]
    assert full[0] != full[1]


def _statements(session, build) -> int:
    """How many SQL statements `build` sends."""
    count = []
    listener = lambda *args: count.append(1)  # noqa: E731
    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        build()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len(count)


def test_an_export_reads_each_dataset_in_one_query_whatever_the_number_of_participants(demo, session):
    from backend.exports.run import build_export, render

    admin = session.exec(select(Staff).where(Staff.email == "admin@x.org")).one()
    principal = Principal("staff", admin.id, admin.role, admin.site_id)

    def build():
        session.expire_all()
        export = build_export(session, principal, site_code=None, study_code=None, now=utcnow())
        for fmt in ("csv", "odm", "fhir"):
            b"".join(render(export, fmt).chunks)

    before = _statements(session, build)
    study = session.exec(select(Study)).one()
    site = session.exec(select(Site)).one()
    for number in range(10, 20):
        make_participant(session, study=study, site=site, code=f"P-{number}", phone=f"+86138000001{number}")
    assert _statements(session, build) == before > 5  # the study, the participants, the sites, each dataset


def test_a_signed_adverse_event_and_its_signed_follow_up_are_in_the_odm_and_fhir_exports(
    client, session, trial, odm_schema, tmp_path
):
    ae_id = reviewed_ae(client, trial)
    assert sign(client, trial, ae_id).status_code == 200
    narrative = "Discharged on day 2; fever resolved without sequelae."
    follow_up = {"outcome": "recovered", "stop_date": "2026-03-02", "narrative": narrative, "reason": "letter"}
    answer = client.post(f"/api/v1/adverse-events/{ae_id}/follow-up", json=follow_up, headers=trial["investigator"])
    assert answer.status_code == 200, answer.get_json()
    assert sign(client, trial, ae_id).status_code == 200

    odm = client.get("/api/v1/exports/odm", headers=trial["investigator"])
    (tmp_path / "ae.xml").write_bytes(odm.data)
    odm_schema.validate(str(tmp_path / "ae.xml"))
    (event,) = [
        e for e in ElementTree.fromstring(odm.data).iter(f"{ODM}StudyEventData") if e.get("StudyEventOID") == "SE.AE"
    ]
    groups = {}
    for group in event.iter(f"{ODM}ItemGroupData"):
        items = {i.get("ItemOID").rsplit(".", 1)[1]: i.get("Value") for i in group.iter(f"{ODM}ItemData")}
        groups.setdefault(group.get("ItemGroupOID"), []).append(items)
    (ae,) = groups["IG.ADVERSE_EVENTS"]
    assert (ae["VERSION"], ae["OUTCOME"], ae["STOP_DATE"], ae["NARRATIVE"]) == (
        "2",
        "recovered",
        "2026-03-02",
        narrative,
    )
    assert (ae["TERM"], ae["CTCAE_GRADE"], ae["SERIOUS"], ae["SERIOUS_CRITERIA"]) == (
        "fever",
        "3",
        "true",
        "hospitalisation",
    )
    signer = f"staff:{trial['ids']['investigator']['id']}"
    assert [(s["VERSION"], s["MEANING"], s["SIGNER"]) for s in groups["IG.AE_SIGNATURES"]] == [
        ("1", "approved", signer),
        ("2", "approved", signer),
    ]
    assert EMAIL.encode() not in odm.data  # staff by account, not by email

    bundle = client.get("/api/v1/exports/fhir", headers=trial["investigator"]).get_json()
    resources = [e["resource"] for e in bundle["entry"]]
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    (adverse,) = [r for r in resources if r["resourceType"] == "AdverseEvent"]
    assert adverse["meta"]["versionId"] == "2" and adverse["outcome"]["coding"][0]["code"] == "resolved"
    assert adverse["seriousness"]["coding"][0]["code"] == "serious" and adverse["date"] == "2026-03-01"
    assert adverse["suspectEntity"][0]["causality"][0]["assessment"]["text"] == "possible"
    signatures = [r for r in resources if r["resourceType"] == "Provenance"]
    assert [s["signature"][0]["type"][0]["code"] for s in signatures] == ["approved", "approved"]
    assert [s["policy"][0].split(":")[3] for s in signatures] == ["1", "2"]
