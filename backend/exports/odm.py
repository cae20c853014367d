"""CDISC ODM 1.3.2 (a Snapshot): the Study's metadata from the declared variables, and ClinicalData with one
SubjectData per participant (SubjectKey = study code), deviations included. Alerts and messages are operational:
they are in the CSV bundle only."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Iterator

from backend.exports.datasets import Export
from backend.exports.values import text_of
from backend.exports.variables import DatasetSpec, Variable
from schedules.ctcae import ctcae_term
from schedules.vocabulary import AE_TERM_LABELS

NS = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MDV = "MDV.1"
SUBJECTS = "subjects"
ET.register_namespace("", NS)


@dataclass(frozen=True)
class EventForm:
    """A study event with its one form and the datasets that are its item groups; `key`: the event's repeat key."""

    event_oid: str
    form_oid: str
    name: str
    repeating: bool
    kind: str  # ODM StudyEventDef Type: Scheduled | Unscheduled | Common
    datasets: tuple[str, ...]
    key: str = ""


EVENTS = (
    EventForm("SE.ENROLMENT", "F.PARTICIPANT", "Enrolment", False, "Scheduled", ("participants",)),
    EventForm("SE.DOSE", "F.DOSE", "Dose", True, "Scheduled", ("doses",), key="dose_seq"),
    EventForm("SE.VAS", "F.VAS", "Patient global assessment (VAS)", True, "Scheduled", ("vas",), key="vas_seq"),
    EventForm("SE.AE", "F.AE", "Adverse event", True, "Common", ("adverse_events", "ae_signatures"), key="ae_seq"),
    EventForm(
        "SE.DEVIATION", "F.DEVIATION", "Protocol deviation", True, "Common", ("deviations",), key="deviation_seq"
    ),
)
# Units by the symbol the declarations use.
UNITS = {"IU": "international units", "cm": "centimetres on the 10 cm visual analogue scale"}


def _el(parent, tag: str, **attrs) -> ET.Element:
    return ET.SubElement(parent, f"{{{NS}}}{tag}", {k: v for k, v in attrs.items() if v is not None})


def _text(parent, tag: str, text: str) -> ET.Element:
    element = _el(parent, tag)
    _el(element, "TranslatedText", **{XML_LANG: "en"}).text = text
    return element


def _oid(prefix: str, *parts: str) -> str:
    return ".".join([prefix, *(part.upper() for part in parts)])


def _items(spec: DatasetSpec) -> list[Variable]:
    """The variables that are items (the study code is the SubjectKey)."""
    return [v for v in spec.variables if v.name != "study_code"]


def _decode(variable: Variable, value: str) -> str:
    if variable.name == "term" and value in AE_TERM_LABELS:
        return AE_TERM_LABELS[value]["en"]
    if variable.name == "ctcae_term" and ctcae_term(value):
        return ctcae_term(value).term
    return value.replace("_", " ")


def _metadata(study: ET.Element, export: Export, events: list[EventForm]) -> None:
    specs = {d.spec.name: d.spec for d in export.datasets}
    units = sorted({v.unit for spec in specs.values() for v in spec.variables if v.unit in UNITS})
    globals_ = _el(study, "GlobalVariables")
    _el(globals_, "StudyName").text = export.study.code
    _el(globals_, "StudyDescription").text = export.title
    _el(globals_, "ProtocolName").text = export.study.code
    if units:
        basic = _el(study, "BasicDefinitions")
        for unit in units:
            _text(_el(basic, "MeasurementUnit", OID=_oid("MU", unit), Name=UNITS[unit]), "Symbol", unit)
    mdv = _el(study, "MetaDataVersion", OID=MDV, Name=f"{export.study.code} export")
    protocol = _el(mdv, "Protocol")
    for order, event in enumerate(events, 1):
        _el(protocol, "StudyEventRef", StudyEventOID=event.event_oid, OrderNumber=str(order), Mandatory="No")
    for event in events:
        definition = _el(
            mdv,
            "StudyEventDef",
            OID=event.event_oid,
            Name=event.name,
            Repeating="Yes" if event.repeating else "No",
            Type=event.kind,
        )
        _el(definition, "FormRef", FormOID=event.form_oid, Mandatory="Yes")
    for event in events:
        form = _el(mdv, "FormDef", OID=event.form_oid, Name=event.name, Repeating="No")
        for name in event.datasets:
            _el(form, "ItemGroupRef", ItemGroupOID=_oid("IG", name), Mandatory="No")
    for event in events:
        for name in event.datasets:
            spec = specs[name]
            repeating = "Yes" if name == "ae_signatures" else "No"
            group = _el(mdv, "ItemGroupDef", OID=_oid("IG", name), Name=name, Repeating=repeating)
            _text(group, "Description", spec.label)
            for order, variable in enumerate(_items(spec), 1):
                _el(group, "ItemRef", ItemOID=_oid("IT", name, variable.name), OrderNumber=str(order), Mandatory="No")
    code_lists = []
    for event in events:
        for name in event.datasets:
            for variable in _items(specs[name]):
                item = _el(
                    mdv, "ItemDef", OID=_oid("IT", name, variable.name), Name=variable.name, DataType=variable.type
                )
                description = variable.label
                if variable.many:
                    description += f" (comma-separated, of: {', '.join(variable.allowed)})"
                _text(item, "Description", description)
                if variable.unit in UNITS:
                    _el(item, "MeasurementUnitRef", MeasurementUnitOID=_oid("MU", variable.unit))
                if variable.allowed and not variable.many:
                    oid = _oid("CL", name, variable.name)
                    _el(item, "CodeListRef", CodeListOID=oid)
                    code_lists.append((oid, variable))
    for oid, variable in code_lists:
        data_type = "integer" if variable.type == "integer" else "text"
        code_list = _el(mdv, "CodeList", OID=oid, Name=variable.name, DataType=data_type)
        for value in variable.allowed:
            _text(_el(code_list, "CodeListItem", CodedValue=value), "Decode", _decode(variable, value))


def _group(form: ET.Element, name: str, spec: DatasetSpec, row: dict, repeat_key: str | None = None) -> None:
    group = _el(form, "ItemGroupData", ItemGroupOID=_oid("IG", name), ItemGroupRepeatKey=repeat_key)
    for variable in _items(spec):
        value = text_of(row.get(variable.name))
        if value != "":
            _el(group, "ItemData", ItemOID=_oid("IT", name, variable.name), Value=value)


def _subjects(export: Export, events: list[EventForm]) -> Iterator[ET.Element]:
    """One SubjectData per participant, made one at a time (only one subject's elements are held at once)."""
    by_code: dict[str, dict[str, list[dict]]] = {}
    for dataset in export.datasets:
        for row in dataset.rows:
            by_code.setdefault(row["study_code"], {}).setdefault(dataset.spec.name, []).append(row)
    specs = {d.spec.name: d.spec for d in export.datasets}
    for code in sorted(by_code):
        rows = by_code[code]
        subject = ET.Element(f"{{{NS}}}SubjectData", SubjectKey=code)
        for event in events:
            main, *nested = event.datasets
            for row in rows.get(main, []):
                key = str(row[event.key]) if event.key else None
                data = _el(subject, "StudyEventData", StudyEventOID=event.event_oid, StudyEventRepeatKey=key)
                form = _el(data, "FormData", FormOID=event.form_oid)
                _group(form, main, specs[main], row)
                for name in nested:
                    children = [r for r in rows.get(name, []) if r[event.key] == row[event.key]]
                    for number, child in enumerate(children, 1):
                        _group(form, name, specs[name], child, str(number))
        yield subject


def odm_chunks(export: Export) -> Iterator[bytes]:
    """The ODM 1.3.2 XML document of the export (UTF-8), in pieces: the metadata, then one subject at a time."""
    present = {d.spec.name for d in export.datasets}
    events = [event for event in EVENTS if all(name in present for name in event.datasets)]
    stamp = text_of(export.created_at)
    root = ET.Element(
        f"{{{NS}}}ODM",
        {
            "FileType": "Snapshot",
            "FileOID": f"{export.study.code}.{stamp}{'.masked' if export.masked else ''}",
            "CreationDateTime": stamp,
            "ODMVersion": "1.3.2",
            "Originator": "Trial Companion",
            "SourceSystem": "Trial Companion",
        },
    )
    study = _el(root, "Study", OID=_oid("ST", export.study.code))
    _metadata(study, export, events)
    clinical = _el(root, "ClinicalData", StudyOID=_oid("ST", export.study.code), MetaDataVersionOID=MDV)
    clinical.append(ET.Comment(SUBJECTS))
    # The document around the subjects is serialised once; each subject goes in where the marker comment is.
    head, tail = ET.tostring(root, encoding="unicode").split(f"<!--{SUBJECTS}-->")
    yield f"<?xml version='1.0' encoding='utf-8'?>\n{head}".encode()
    for subject in _subjects(export, events):
        yield ET.tostring(subject, encoding="unicode").encode()
    yield tail.encode()


def odm_document(export: Export) -> bytes:
    """The whole ODM document at once (tests, small exports)."""
    return b"".join(odm_chunks(export))
