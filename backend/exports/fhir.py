"""A FHIR R4B `collection` Bundle of the export, every resource built through fhir.resources' R4B models (so each is
validated as it is made). Alerts, messages and deviations are not in it (the CSV bundle has them).

Dose states: taken and taken late are `completed` administrations (taken late says so in a note), skipped is
`not-done` (status reason: reported as not taken). A missed dose had no report at all, so nothing is known to have
been given or not: it is no MedicationAdministration (the CSV and ODM carry it as missed). Scheduled, held and
cancelled doses are plans, not administrations."""

from __future__ import annotations

import re
import uuid
from typing import Iterator

from fhir.resources.R4B.adverseevent import AdverseEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.researchstudy import ResearchStudy
from fhir.resources.R4B.researchsubject import ResearchSubject

from backend.exports.datasets import Export
from backend.exports.values import text_of
from backend.web.masking import WITHHELD
from schedules.vocabulary import AE_TERM_LABELS

TERMS = "http://terminology.hl7.org/CodeSystem/"
SYSTEM = "urn:trial-companion"
SUBJECT_STATUS = {"active": "on-study", "on_hold": "on-study-observation", "withdrawn": "withdrawn"}
ADMINISTERED = {"taken": "completed", "taken_late": "completed", "skipped": "not-done"}
OUTCOME = {
    "recovered": "resolved",
    "recovering": "recovering",
    "not_recovered": "ongoing",
    "recovered_with_sequelae": "resolvedWithSequelae",
    "fatal": "fatal",
    "unknown": "unknown",
}
VAS_STATUS = {"valid": "completed", "withdrawn": "entered-in-error", "corrected": "entered-in-error"}
UCUM = "http://unitsofmeasure.org"
MEDDRA = "http://terminology.hl7.org/CodeSystem/mdr"
UCUM_UNITS = {"IU": "[iU]"}


def _id(*parts) -> str:
    """A FHIR id ([A-Za-z0-9-.]{1,64}) from the study codes and numbers that name a row."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", "-".join(str(p) for p in parts))[:64]


class _Bundler:
    def __init__(self, export: Export):
        self.export = export
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"{SYSTEM}:{export.study.code}")

    def url(self, kind: str, ident: str) -> str:
        return f"urn:uuid:{uuid.uuid5(self.namespace, f'{kind}/{ident}')}"

    def ref(self, kind: str, ident: str) -> dict:
        return {"reference": self.url(kind, ident)}

    def entry(self, resource) -> bytes:
        """One Bundle entry as JSON: the resource was validated by its model when it was made."""
        url = self.url(resource.get_resource_type(), resource.id)
        return b'{"fullUrl":"%s","resource":%s}' % (url.encode(), resource.model_dump_json(exclude_none=True).encode())

    def study(self) -> ResearchStudy:
        export, ident = self.export, _id(self.export.study.code)
        arms = [] if export.masked else [{"name": arm.code, "description": arm.label} for arm in export.protocol.arms]
        return ResearchStudy(
            id=ident,
            identifier=[{"system": "https://clinicaltrials.gov", "value": export.study.code}],
            title=export.title,
            status="active",
            arm=arms or None,
        )

    def medications(self) -> dict[str, Medication]:
        """The study drug of each arm that has one (none in the masked variant)."""
        if self.export.masked:
            return {}
        return {
            arm.code: Medication(id=_id("drug", arm.code), code={"text": arm.regimen.drug})
            for arm in self.export.protocol.arms
            if arm.regimen
        }

    def questionnaire(self) -> Questionnaire:
        vas = self.export.protocol.vas
        return Questionnaire(
            id="vas",
            url=f"{SYSTEM}:{self.export.study.code}:questionnaire:vas",
            title="Patient global assessment (VAS)",
            status="active",
            subjectType=["Patient"],
            item=[
                {
                    "linkId": "vas",
                    "text": f"How active is your disease? {vas.scale_min} to {vas.scale_max} cm",
                    "type": "decimal",
                    "required": True,
                    "item": [
                        {"linkId": "vas.min", "type": "display", "text": f"{vas.scale_min} = not active"},
                        {"linkId": "vas.max", "type": "display", "text": f"{vas.scale_max} = extremely active"},
                    ],
                }
            ],
        )


def _when(value) -> str | None:
    return text_of(value) or None


def _code(system: str, code: str, display: str | None = None) -> dict:
    return {"coding": [{"system": system, "code": code, **({"display": display} if display else {})}]}


def _adverse_event(b: _Bundler, row: dict, patient: str, study: str, drug: str | None) -> AdverseEvent:
    term = row["term"]
    label = AE_TERM_LABELS.get(term, {}).get("en", term)
    event = _code(f"{SYSTEM}:ae-term", term, label)
    if row["ctcae_term"] and row["ctcae_term"] != WITHHELD:
        # The CTCAE v5 term a nurse coded, by its MedDRA code.
        event["coding"].append({"system": MEDDRA, "code": row["ctcae_term"], "display": row["ctcae_term_name"]})
    # The reporter's own words, in the full variant only (the masked rows carry no free text).
    if row.get("other_text") or row.get("raw_text"):
        event["text"] = row.get("other_text") or row.get("raw_text")
    fields = {
        "id": _id("ae", row["study_code"], row["ae_seq"]),
        "meta": {"versionId": str(row["version"])},  # the record's current version (signed versions are frozen)
        "actuality": "actual",
        "subject": b.ref("Patient", patient),
        "event": event,
        "date": _when(row["onset_date"]),
        "detected": _when(row["aware_at"] or row["reported_at"]),  # when the site became aware
        "recordedDate": _when(row["reported_at"]),
        "study": [b.ref("ResearchStudy", study)],
    }
    if row["serious"] is not None:
        seriousness = "serious" if row["serious"] else "non-serious"
        fields["seriousness"] = _code(f"{TERMS}adverse-event-seriousness", seriousness)
    if row["severity"]:
        fields["severity"] = _code(f"{TERMS}adverse-event-severity", row["severity"])
    if row["outcome"]:
        fields["outcome"] = _code(f"{TERMS}adverse-event-outcome", OUTCOME[row["outcome"]])
    if drug:
        suspect = {"instance": b.ref("Medication", drug)}
        if row["relatedness"]:
            suspect["causality"] = [{"assessment": {"text": row["relatedness"]}}]
        fields["suspectEntity"] = [suspect]
    fields["extension"] = _sae_extensions(row) or None
    return AdverseEvent(**{k: v for k, v in fields.items() if v is not None})


# What an SAE report needs and R4B's AdverseEvent has no element for, as extensions of our own (ODM and the CSV
# carry the same values as items): stop date, ongoing, hospital, grade, criteria, action taken, narrative.
_SAE_EXTENSIONS = (
    ("stop_date", "valueDate"),
    ("ongoing", "valueBoolean"),
    ("went_to_hospital", "valueBoolean"),
    ("ctcae_grade", "valueInteger"),
    ("serious_criteria", "valueCode"),
    ("action_taken", "valueCode"),
    ("narrative", "valueString"),
)


def _sae_extensions(row: dict) -> list[dict]:
    extensions = []
    for name, kind in _SAE_EXTENSIONS:
        value = row.get(name)  # absent from the masked rows: action taken and narrative tell too much
        if value is None or value == "":
            continue
        url = f"{SYSTEM}:adverse-event:{name.replace('_', '-')}"
        values = value.split(",") if name == "serious_criteria" else [value]
        extensions += [{"url": url, kind: text_of(v) if kind in ("valueDate", "valueCode") else v} for v in values]
    return extensions


def _signature(b: _Bundler, row: dict, number: int) -> Provenance:
    """An investigator's electronic signature of one version of an adverse event (the signer as their account)."""
    signer = {"identifier": {"system": f"{SYSTEM}:staff", "value": row["signer"]}, "display": row["signer_role"]}
    meaning = {"system": f"{SYSTEM}:signature-meaning", "code": row["meaning"]}
    return Provenance(
        id=_id("sig", row["study_code"], row["ae_seq"], number),
        target=[b.ref("AdverseEvent", _id("ae", row["study_code"], row["ae_seq"]))],
        recorded=_when(row["signed_at"]),
        policy=[f"{SYSTEM}:ae-version:{row['version']}:sha256:{row['content_hash']}"],
        agent=[{"who": signer}],
        signature=[{"type": [meaning], "when": _when(row["signed_at"]), "who": signer}],
    )


def _administration(b: _Bundler, row: dict, patient: str, drug: str) -> MedicationAdministration:
    status = ADMINISTERED[row["state"]]
    fields = {
        "id": _id("ma", row["study_code"], row["dose_seq"]),
        "status": status,
        "medicationReference": b.ref("Medication", drug),
        "subject": b.ref("Patient", patient),
        "effectiveDateTime": _when(row["taken_at"] or row["due_at"] if status == "completed" else row["due_at"]),
    }
    if status == "not-done":
        fields["statusReason"] = [{"text": "reported as not taken"}]
    else:
        dose = {"value": row["dose_amount"], "unit": row["dose_unit"], "system": UCUM}
        if row["dose_unit"] in UCUM_UNITS:
            dose["code"] = UCUM_UNITS[row["dose_unit"]]
        fields["dosage"] = {"route": {"text": row["route"]}, "dose": dose}
    if row["state"] == "taken_late":
        fields["note"] = [{"text": "taken late: reported after the report window closed"}]
    return MedicationAdministration(**fields)


def _entries(export: Export) -> Iterator[bytes]:
    b = _Bundler(export)
    study, drugs, questionnaire = b.study(), b.medications(), b.questionnaire()
    yield b.entry(study)
    for drug in drugs.values():
        yield b.entry(drug)
    yield b.entry(questionnaire)
    drugs = {arm: drug.id for arm, drug in drugs.items()}
    arms = {}
    for row in export.dataset("participants").rows:
        code, patient = row["study_code"], _id(row["study_code"])
        arms[code] = row.get("arm")
        yield b.entry(
            Patient(id=patient, identifier=[{"system": f"{SYSTEM}:{export.study.code}:study-code", "value": code}])
        )
        subject = {
            "id": _id("rs", code),
            "status": SUBJECT_STATUS[row["status"]],
            "study": b.ref("ResearchStudy", study.id),
            "individual": b.ref("Patient", patient),
            "period": {"start": _when(row["enrolled_local_date"])},
        }
        if row.get("arm"):
            subject["assignedArm"] = row["arm"]
        yield b.entry(ResearchSubject(**subject))
    doses = export.dataset("doses")
    for row in doses.rows if doses else []:
        if row["state"] in ADMINISTERED and arms.get(row["study_code"]) in drugs:
            yield b.entry(_administration(b, row, _id(row["study_code"]), drugs[arms[row["study_code"]]]))
    for row in export.dataset("vas").rows:
        status = VAS_STATUS[row["status"]]
        if status == "completed" and row["replaces_vas_seq"]:
            status = "amended"
        response = QuestionnaireResponse(
            id=_id("vas", row["study_code"], row["vas_seq"]),
            questionnaire=questionnaire.url,
            status=status,
            subject=b.ref("Patient", _id(row["study_code"])),
            authored=_when(row["recorded_at"]),
            item=[{"linkId": "vas", "answer": [{"valueDecimal": row["value"]}]}],
            # How it was answered: a mark on the 10 cm line (the app) or a typed number (SMS, staff): never mixed
            # unknowingly in an analysis.
            extension=[{"url": f"{SYSTEM}:vas-mode", "valueCode": row["mode"]}],
        )
        yield b.entry(response)
    for row in export.dataset("adverse_events").rows:
        drug = drugs.get(arms.get(row["study_code"]))
        yield b.entry(_adverse_event(b, row, _id(row["study_code"]), study.id, drug))
    numbers: dict[tuple, int] = {}
    for row in export.dataset("ae_signatures").rows:
        key = (row["study_code"], row["ae_seq"])
        numbers[key] = numbers.get(key, 0) + 1
        yield b.entry(_signature(b, row, numbers[key]))


def fhir_chunks(export: Export) -> Iterator[bytes]:
    """The export as an R4B collection Bundle in FHIR JSON (UTF-8), one entry at a time: each resource is made
    (and so validated) through its model, written, and let go."""
    stamp = export.created_at.strftime("%Y%m%dT%H%M%SZ")
    shell = Bundle(
        id=_id(export.study.code, stamp, *(["masked"] if export.masked else [])),
        type="collection",
        timestamp=_when(export.created_at),
    ).model_dump_json(exclude_none=True)
    yield shell[:-1].encode() + b',"entry":['  # the shell's closing brace comes after the entries
    for number, entry in enumerate(_entries(export)):
        yield (b"," if number else b"") + entry
    yield b"]}"


def fhir_document(export: Export) -> bytes:
    """The whole Bundle at once (tests, small exports)."""
    return b"".join(fhir_chunks(export))
