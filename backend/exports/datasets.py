"""The rows of every export dataset, one query per dataset over the participants in scope (never one per participant).

Times are UTC; a `*_local_date` is the participant's own calendar day (their time zone), where the protocol counts
in local days. Rows name participants by study code only: no phone, no name, no message text except the SMS a
participant typed to report a VAS score or an adverse event."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from backend.exports.variables import DatasetSpec, dataset_specs
from notifications.models import InboundMessage, OutboundMessage
from schedules.calendar import to_local
from schedules.ctcae import ctcae_term
from schedules.dose_numbering import dose_numbers
from schedules.models import (
    AdverseEvent,
    AdverseEventSignature,
    Alert,
    Deviation,
    Dose,
    Participant,
    Site,
    Study,
    VasScore,
)
from schedules.protocol import Protocol
from schedules.studies import protocol_of


@dataclass
class Dataset:
    """A declared dataset and its rows (dicts keyed by variable name)."""

    spec: DatasetSpec
    rows: list[dict]


@dataclass
class Export:
    """Everything one export holds: the study, the scope, when, whether masked, and the datasets in file order."""

    study: Study
    protocol: Protocol
    site_codes: tuple[str, ...]
    created_at: datetime
    datasets: list[Dataset]
    title: str
    masked: bool = False
    participants: dict[int, Participant] = field(default_factory=dict)

    def dataset(self, name: str) -> Dataset | None:
        """The dataset called `name`, or None when this variant has none."""
        return next((d for d in self.datasets if d.spec.name == name), None)

    def counts(self) -> dict[str, int]:
        """Rows per dataset (what the audit row records)."""
        return {d.spec.name: len(d.rows) for d in self.datasets}


def _local_date(instant: datetime | None, participant: Participant):
    return to_local(instant, participant.time_zone).date() if instant else None


def _ctcae_name(code: str) -> str:
    coded = ctcae_term(code) if code else None
    return coded.term if coded else ""


def _joined(values) -> str:
    return ",".join(part.strip() for part in (values or "").split(",") if part.strip())


class _Builder:
    """Builds each dataset's rows for the participants of the `in_scope` subquery."""

    def __init__(self, session: Session, participants: dict[int, Participant], in_scope, protocol: Protocol):
        self.session, self.participants, self.in_scope, self.protocol = session, participants, in_scope, protocol
        self.ae_seq: dict[int, int] = {}  # adverse event id -> its number within the participant
        self.dose_seq: dict[int, int] = {}  # dose id -> seq
        self.vas_seq: dict[int, int] = {}
        self.regimens = {arm.code: arm.regimen for arm in protocol.arms}

    def participants_rows(self, sites: dict[int, str]) -> list[dict]:
        rows = []
        for p in self.participants.values():
            rows.append(
                {
                    "study_code": p.study_code,
                    "site": sites.get(p.site_id, ""),
                    "arm": p.arm,
                    "status": p.status,
                    "language": p.language,
                    "time_zone": p.time_zone,
                    "enrolled_at": p.enrolled_at,
                    "enrolled_local_date": _local_date(p.enrolled_at, p),
                    "first_dose_date": p.first_dose_date,
                    "treatment_end_date": p.treatment_end_date,
                    "follow_up_end_date": p.follow_up_end_date,
                    "held_from": p.held_from,
                    "withdrawn_at": p.withdrawn_at,
                    "sms_consent": p.sms_consent,
                    "opted_out": p.opted_out,
                }
            )
        return rows

    def doses(self) -> list[dict]:
        query = select(Dose).where(Dose.participant_id.in_(self.in_scope)).order_by(Dose.participant_id, Dose.seq)
        doses = list(self.session.exec(query))
        by_participant: dict[int, list[Dose]] = defaultdict(list)
        for dose in doses:
            by_participant[dose.participant_id].append(dose)
        numbers = {k: v for group in by_participant.values() for k, v in dose_numbers(group).items()}
        rows = []
        for dose in doses:
            p = self.participants[dose.participant_id]
            regimen = self.regimens.get(p.arm)
            self.dose_seq[dose.id] = dose.seq
            rows.append(
                {
                    "study_code": p.study_code,
                    "dose_seq": dose.seq,
                    "dose_number": numbers.get(dose.id),
                    "local_date": dose.local_date,
                    "due_at": dose.due_at,
                    "window_opens_at": dose.window_opens_at,
                    "window_closes_at": dose.window_closes_at,
                    "state": dose.state,
                    "reported_at": dose.reported_at,
                    "taken_at": dose.taken_at,
                    "taken_local_date": _local_date(dose.taken_at, p),
                    "dose_amount": regimen.dose_amount if regimen else None,
                    "dose_unit": regimen.dose_unit if regimen else "",
                    "route": regimen.route if regimen else "",
                    "injection_site": dose.injection_site,
                    "source": dose.source,
                }
            )
        return rows

    def vas(self) -> list[dict]:
        query = (
            select(VasScore, InboundMessage.body)
            .outerjoin(InboundMessage, InboundMessage.id == VasScore.inbound_id)
            .where(VasScore.participant_id.in_(self.in_scope))
            .order_by(VasScore.participant_id, VasScore.recorded_at, VasScore.id)
        )
        numbers: dict[int, int] = defaultdict(int)
        rows = []
        for score, body in self.session.exec(query):
            p = self.participants[score.participant_id]
            numbers[p.id] += 1
            self.vas_seq[score.id] = numbers[p.id]
            rows.append(
                {
                    "study_code": p.study_code,
                    "vas_seq": numbers[p.id],
                    "value": score.value,
                    "recorded_at": score.recorded_at,
                    "local_date": _local_date(score.recorded_at, p),
                    "source": score.source,
                    "mode": score.mode,
                    "status": score.status,
                    "replaces_vas_seq": self.vas_seq.get(score.replaces_id) if score.replaces_id else None,
                    "withdrawn_at": score.withdrawn_at,
                    "raw_text": body or "",
                }
            )
        return rows

    def adverse_events(self) -> list[dict]:
        query = (
            select(AdverseEvent)
            .where(AdverseEvent.participant_id.in_(self.in_scope))
            .order_by(AdverseEvent.participant_id, AdverseEvent.reported_at, AdverseEvent.id)
        )
        numbers: dict[int, int] = defaultdict(int)
        rows = []
        for ae in self.session.exec(query):
            p = self.participants[ae.participant_id]
            numbers[p.id] += 1
            self.ae_seq[ae.id] = numbers[p.id]
            rows.append(
                {
                    "study_code": p.study_code,
                    "ae_seq": numbers[p.id],
                    "reported_at": ae.reported_at,
                    "reported_local_date": _local_date(ae.reported_at, p),
                    "aware_at": ae.aware_at,
                    "source": ae.source,
                    "term": ae.term,
                    "ctcae_term": ae.ctcae_term,
                    "ctcae_term_name": _ctcae_name(ae.ctcae_term),
                    "other_text": ae.other_text,
                    "raw_text": ae.raw_text,
                    "onset_date": ae.onset_date,
                    "stop_date": ae.stop_date,
                    "severity": ae.severity,
                    "ongoing": ae.ongoing,
                    "went_to_hospital": ae.went_to_hospital,
                    "suspected_serious": ae.suspected_serious,
                    "matched_keywords": _joined(ae.matched_keywords),
                    "ctcae_grade": ae.ctcae_grade,
                    "serious": ae.serious,
                    "serious_criteria": _joined(ae.serious_criteria),
                    "relatedness": ae.relatedness,
                    "action_taken": ae.action_taken,
                    "outcome": ae.outcome,
                    "narrative": ae.narrative,
                    "version": ae.version,
                    "reviewed_by": ae.reviewed_by,
                    "reviewed_at": ae.reviewed_at,
                    "signed_off_by": ae.signed_off_by,
                    "signed_off_at": ae.signed_off_at,
                }
            )
        return rows

    def ae_signatures(self) -> list[dict]:
        query = (
            select(AdverseEventSignature, AdverseEvent.participant_id)
            .join(AdverseEvent, AdverseEvent.id == AdverseEventSignature.adverse_event_id)
            .where(AdverseEvent.participant_id.in_(self.in_scope))
            .order_by(AdverseEvent.participant_id, AdverseEventSignature.signed_at, AdverseEventSignature.id)
        )
        return [
            {
                "study_code": self.participants[participant_id].study_code,
                "ae_seq": self.ae_seq[signature.adverse_event_id],
                "version": signature.version,
                "signer": f"staff:{signature.signer_id}",
                "signer_role": signature.signer_role,
                "meaning": signature.meaning,
                "signed_at": signature.signed_at,
                "content_hash": signature.content_hash,
            }
            for signature, participant_id in self.session.exec(query)
        ]

    def alerts(self) -> list[dict]:
        query = (
            select(Alert)
            .where(Alert.participant_id.in_(self.in_scope))
            .order_by(Alert.participant_id, Alert.opened_at, Alert.id)
        )
        rows = []
        for alert in self.session.exec(query):
            rows.append(
                {
                    "study_code": self.participants[alert.participant_id].study_code,
                    "kind": alert.kind,
                    "priority": alert.priority,
                    "state": alert.state,
                    "opened_at": alert.opened_at,
                    "deadline_at": alert.deadline_at,
                    "acknowledged_at": alert.acknowledged_at,
                    "acknowledged_by": alert.acknowledged_by,
                    "resolved_at": alert.resolved_at,
                    "resolved_by": alert.resolved_by,
                    "ae_seq": self.ae_seq.get(alert.ref_id) if alert.ref_type == "adverse_event" else None,
                    "dose_seq": self.dose_seq.get(alert.ref_id) if alert.ref_type == "dose" else None,
                }
            )
        return rows

    def deviations(self) -> list[dict]:
        query = (
            select(Deviation)
            .where(Deviation.participant_id.in_(self.in_scope))
            .order_by(Deviation.participant_id, Deviation.local_date, Deviation.id)
        )
        numbers: dict[int, int] = defaultdict(int)
        rows = []
        for deviation in self.session.exec(query):
            p = self.participants[deviation.participant_id]
            numbers[p.id] += 1
            rows.append(
                {
                    "study_code": p.study_code,
                    "deviation_seq": numbers[p.id],
                    "kind": deviation.kind,
                    "classification": deviation.classification,
                    "rule": deviation.rule,
                    "detail": deviation.detail,
                    "local_date": deviation.local_date,
                    "dose_seq": self.dose_seq.get(deviation.dose_id) if deviation.dose_id else None,
                    "detected_at": deviation.detected_at,
                    "review_state": deviation.review_state,
                    "comment": deviation.comment,
                    "reviewed_by": deviation.reviewed_by,
                    "reviewed_at": deviation.reviewed_at,
                }
            )
        return rows

    def messages(self) -> list[dict]:
        outbound = (
            select(OutboundMessage)
            .where(OutboundMessage.participant_id.in_(self.in_scope))
            .order_by(OutboundMessage.participant_id, OutboundMessage.due_at, OutboundMessage.id)
        )
        rows = [
            {
                "study_code": self.participants[m.participant_id].study_code,
                "direction": "outbound",
                "purpose": m.purpose,
                "intent": "",
                "status": m.status,
                "provider_status": m.provider_status,
                "at": m.due_at,
                "sent_at": m.sent_at,
                "needs_review": None,
            }
            for m in self.session.exec(outbound)
        ]
        inbound = (
            select(InboundMessage)
            .where(InboundMessage.participant_id.in_(self.in_scope))
            .order_by(InboundMessage.participant_id, InboundMessage.received_at, InboundMessage.id)
        )
        rows += [
            {
                "study_code": self.participants[m.participant_id].study_code,
                "direction": "inbound",
                "purpose": "",
                "intent": m.intent,
                "status": "",
                "provider_status": "",
                "at": m.received_at,
                "sent_at": None,
                "needs_review": m.needs_review,
            }
            for m in self.session.exec(inbound)
        ]
        rows.sort(key=lambda r: (r["study_code"], r["at"]))
        return rows


def build_datasets(session: Session, *, study: Study, scope, created_at: datetime) -> Export:
    """Every dataset of `study` for the participants whose site passes `scope` (a WHERE clause on a site id
    column, from backend.identity.scope, narrowed to one site when asked)."""
    protocol = protocol_of(study)
    in_scope = select(Participant.id).where(Participant.study_id == study.id, scope(Participant.site_id))
    participants = {
        p.id: p
        for p in session.exec(
            select(Participant)
            .where(Participant.study_id == study.id, scope(Participant.site_id))
            .order_by(Participant.study_code)
        )
    }
    site_rows = session.exec(select(Site).where(scope(Site.id)).order_by(Site.code)).all()
    sites = {site.id: site.code for site in site_rows}
    builder = _Builder(session, participants, in_scope, protocol)
    specs = {spec.name: spec for spec in dataset_specs(protocol)}
    rows = {"participants": builder.participants_rows(sites)}
    # In this order: a dataset may point at the numbers an earlier one gave (an alert at its adverse event).
    for name in ("doses", "vas", "adverse_events", "ae_signatures", "alerts", "deviations", "messages"):
        rows[name] = getattr(builder, name)()
    return Export(
        study=study,
        protocol=protocol,
        site_codes=tuple(sites.values()),
        created_at=created_at,
        datasets=[Dataset(spec, rows[name]) for name, spec in specs.items()],
        title=protocol.title,
        participants=participants,
    )
