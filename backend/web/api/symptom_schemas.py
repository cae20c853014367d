"""marshmallow schemas of the symptoms (VAS, adverse events) and alert-queue endpoints.

None of these carries an arm, regimen or dose field: the masked assessor reads them as they are."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, missing, post_load, validate
from sqlalchemy.orm import object_session

from backend.extensions import get_vault
from backend.web.alert_text import acknowledged_via, alert_summary
from backend.web.api.schemas import NO_NUL, site_code_of
from backend.web.shown import Shown
from notifications.pages import page_rounds
from schedules.ae_versions import VersionView
from schedules.ctcae import ctcae_codes, ctcae_term, suggested_ctcae_code
from schedules.dbtypes import utcnow
from schedules.models import (
    AdverseEvent,
    Alert,
    AlertKind,
    AlertState,
    Participant,
    VasScore,
)
from schedules.vocabulary import (
    ACTIONS_TAKEN,
    AE_TERMS,
    FOLLOW_UP_FIELDS,
    NARRATIVE_MAX,
    OUTCOMES,
    RECORD_FIELDS,
    RELATEDNESS,
    SERIOUS_CRITERIA,
    SEVERITIES,
    SIGNATURE_MEANINGS,
    VAS_MODES,
)

REASON = validate.Length(min=1, max=500)
CTCAE_CODE = validate.OneOf(ctcae_codes(), error="Not a MedDRA code of the CTCAE v5 list (GET /api/v1/ctcae-terms).")


def _csv(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def vas_shown(score: VasScore, participant: Participant, replaced_by: dict[int, int] | None = None) -> Shown:
    """A VAS row for VasSchema: with the study code and, for a corrected row, its correction."""
    return Shown(score, study_code=participant.study_code, replaced_by_id=(replaced_by or {}).get(score.id))


def ae_shown(
    ae: AdverseEvent, participant: Participant, alert: Alert | None, versions: list[VersionView] | None = None
) -> Shown:
    """An adverse event for AdverseEventSchema / MaskedAdverseEventSchema: with its study code, nurse alert and
    the signatures of its versions (`versions`, from schedules.ae_versions)."""
    coded = ctcae_term(ae.ctcae_term)
    return Shown(
        ae,
        study_code=participant.study_code,
        ctcae_term_name=coded.term if coded else "",
        ctcae_suggestion=suggested_ctcae_code(ae.term) if not ae.ctcae_term else "",
        matched_keywords=_csv(ae.matched_keywords),
        serious_criteria=_csv(ae.serious_criteria),
        alert_id=alert.id if alert else None,
        alert_state=alert.state if alert else None,
        deadline_at=alert.deadline_at if alert else None,
        signatures=[signature_shown(s) for v in versions or [] for s in v.signatures],
    )


def signature_shown(view) -> Shown:
    """A signature for AeSignatureSchema, with whether what it signed is unchanged."""
    return Shown(view.signature, intact=view.intact)


def version_shown(view: VersionView) -> Shown:
    """A version for AeVersionSchema."""
    return Shown(
        view,
        signed=view.signed,
        signatures=[signature_shown(s) for s in view.signatures],
        changes=[{"field": name, "before": before, "after": after} for name, before, after in view.changes],
    )


# --- VAS -------------------------------------------------------------------------------------------
class MaskedVasSchema(Schema):
    """One VAS row as the masked assessor sees it: without the reason staff typed (free text may tell the arm)."""

    id = fields.Integer(metadata={"example": 17})
    participant_id = fields.Integer(metadata={"example": 3})
    study_code = fields.String(metadata={"example": "P-021"})
    value = fields.Float(
        metadata={
            "description": "on the protocol's scale (NCT04237987: 0.0 not active to 10.0 "
            "extremely active, one decimal)",
            "example": 4.5,
        }
    )
    recorded_at = fields.DateTime(metadata={"example": "2026-03-01T12:40:00+00:00"})
    source = fields.String(metadata={"description": "sms | app | staff", "example": "sms"})
    mode = fields.String(
        validate=validate.OneOf(VAS_MODES),
        metadata={
            "description": "how it was measured: sms_numeric (a number typed: SMS, staff, an API client) "
            "or vas_line (a mark on the app's 100 mm line); different instruments, never pool them unknowingly",
            "example": "sms_numeric",
        },
    )
    status = fields.String(
        validate=validate.OneOf(["valid", "withdrawn", "corrected"]),
        metadata={
            "description": "valid; withdrawn (participant's UNDO); corrected (replaced by a staff correction)",
            "example": "valid",
        },
    )
    replaces_id = fields.Integer(
        allow_none=True, metadata={"description": "for a correction: the row it replaces", "example": None}
    )
    replaced_by_id = fields.Integer(
        allow_none=True, metadata={"description": "for a corrected row: the correction", "example": None}
    )
    withdrawn_at = fields.DateTime(allow_none=True, metadata={"example": None})


class VasSchema(MaskedVasSchema):
    """One VAS row; withdrawn and corrected rows stay in the history with their status."""

    reason = fields.String(metadata={"description": "why staff recorded or corrected it", "example": ""})


class VasCreateSchema(Schema):
    """A VAS score a participant gave staff (e.g. by phone); the reason is required."""

    value = fields.Decimal(
        required=True, metadata={"description": "on the protocol's scale, e.g. 0.0-10.0, 1 decimal", "example": 4.5}
    )
    reason = fields.String(
        required=True, validate=REASON, metadata={"example": "participant phoned the site; SMS not working"}
    )


class VasCorrectSchema(Schema):
    """A staff correction of a VAS: the original row is kept and marked corrected."""

    value = fields.Decimal(
        required=True, metadata={"description": "the corrected value, on the protocol's scale", "example": 5.4}
    )
    reason = fields.String(
        required=True, validate=REASON, metadata={"example": "participant says the digits were swapped"}
    )


# --- adverse events -------------------------------------------------------------------------------
class MaskedAdverseEventSchema(Schema):
    """An adverse event as the masked outcome assessor sees it: no free text, which could name the treatment."""

    id = fields.Integer(metadata={"example": 9})
    participant_id = fields.Integer(metadata={"example": 3})
    study_code = fields.String(metadata={"example": "P-021"})
    reported_at = fields.DateTime(metadata={"example": "2026-03-02T03:15:00+00:00"})
    source = fields.String(metadata={"description": "sms | app | staff", "example": "sms"})
    term = fields.String(
        validate=validate.OneOf(AE_TERMS),
        metadata={
            "description": "to the masked assessor, 'withheld' for a term that tells the arm",
            "example": "other",
        },
    )
    ctcae_term = fields.String(
        metadata={
            "description": "the CTCAE v5 term's MedDRA code (GET /api/v1/ctcae-terms); empty until a nurse codes "
            "the report; to the masked assessor, 'withheld' for a term that tells the arm",
            "example": "10016558",
        }
    )
    ctcae_term_name = fields.String(metadata={"description": "the CTCAE v5 term", "example": "Fever"})
    onset_date = fields.Date(allow_none=True, metadata={"example": "2026-03-01"})
    severity = fields.String(allow_none=True, validate=validate.OneOf(SEVERITIES), metadata={"example": "moderate"})
    ongoing = fields.Boolean(allow_none=True, metadata={"example": True})
    went_to_hospital = fields.Boolean(allow_none=True, metadata={"example": None})
    aware_at = fields.DateTime(
        metadata={
            "description": "when the site became aware of the event: the reporting deadline runs from here "
            "(the report's own time until corrected)",
            "example": "2026-03-02T03:15:00+00:00",
        }
    )
    suspected_serious = fields.Boolean(
        metadata={"description": "went to hospital, or a serious-event word in the text", "example": True}
    )
    matched_keywords = fields.List(fields.String(), metadata={"example": ["住院"]})
    alert_id = fields.Integer(allow_none=True, metadata={"example": 12})
    alert_state = fields.String(allow_none=True, metadata={"example": "open"})
    deadline_at = fields.DateTime(
        allow_none=True,
        metadata={
            "description": "reporting deadline of a suspected-serious event",
            "example": "2026-03-03T03:15:00+00:00",
        },
    )
    ctcae_grade = fields.Integer(allow_none=True, metadata={"example": 3})
    serious = fields.Boolean(allow_none=True, metadata={"example": True})
    serious_criteria = fields.List(fields.String(), metadata={"example": ["hospitalisation"]})
    relatedness = fields.String(allow_none=True, metadata={"example": "possible"})
    outcome = fields.String(allow_none=True, metadata={"example": "recovering"})
    reviewed_by = fields.String(metadata={"example": "staff:4"})
    reviewed_at = fields.DateTime(allow_none=True, metadata={"example": "2026-03-02T06:00:00+00:00"})
    signed_off_by = fields.String(metadata={"example": ""})
    signed_off_at = fields.DateTime(allow_none=True, metadata={"example": None})


class AeSignatureSchema(Schema):
    """An investigator's electronic signature of one version (21 CFR 11.50): signer, time, meaning."""

    version = fields.Integer(metadata={"description": "the version of the adverse event signed", "example": 1})
    meaning = fields.String(validate=validate.OneOf(SIGNATURE_MEANINGS), metadata={"example": "approved"})
    signer_id = fields.Integer(metadata={"description": "the staff account", "example": 4})
    signer_email = fields.String(metadata={"description": "the signer as printed", "example": "li.wei@example.org"})
    signer_role = fields.String(metadata={"example": "investigator"})
    signed_at = fields.DateTime(metadata={"example": "2026-03-02T06:10:00+00:00"})
    content_hash = fields.String(
        metadata={"description": "SHA-256 of the version's content as signed", "example": "9f2c…"}
    )
    intact = fields.Boolean(
        metadata={"description": "false when the content no longer matches what was signed", "example": True}
    )


class AdverseEventSchema(MaskedAdverseEventSchema):
    """An adverse-event report, its nurse alert and, once done, its investigator review and signatures."""

    raw_text = fields.String(metadata={"description": "the participant's own words (SMS)", "example": "发烧 住院了"})
    injection_site = fields.String(
        allow_none=True,
        metadata={
            "description": "an injection-site reaction: the site of the participant's latest injection before it",
            "example": None,
        },
    )
    other_text = fields.String(metadata={"example": ""})
    stop_date = fields.Date(allow_none=True, metadata={"description": "when the event ended", "example": None})
    ctcae_suggestion = fields.String(
        metadata={
            "description": "while not coded: the CTCAE code the report's term usually maps to (empty when it "
            "needs judgement, e.g. 'other')",
            "example": "",
        }
    )
    action_taken = fields.String(
        allow_none=True,
        validate=validate.OneOf(ACTIONS_TAKEN),
        metadata={"description": "with the study drug because of the event", "example": "drug_interrupted"},
    )
    narrative = fields.String(metadata={"description": "the investigator's follow-up narrative", "example": ""})
    version = fields.Integer(
        metadata={
            "description": "the version being worked on: a follow-up after a signature opens the next one, "
            "to be signed again (GET .../versions lists the earlier ones)",
            "example": 1,
        }
    )
    signatures = fields.List(
        fields.Nested(AeSignatureSchema),
        metadata={
            "description": "signatures of every version, oldest first; the current version's are those "
            "whose version equals `version`"
        },
    )


class AeChangeSchema(Schema):
    """A field a version changed from the version before it."""

    field = fields.String(metadata={"example": "outcome"})
    before = fields.Raw(allow_none=True, metadata={"example": "recovering"})
    after = fields.Raw(allow_none=True, metadata={"example": "recovered"})


class AeVersionSchema(Schema):
    """One version of an adverse event, as signed (earlier versions) or as it is now (the current one)."""

    version = fields.Integer(metadata={"example": 1})
    current = fields.Boolean(metadata={"description": "the version being worked on", "example": False})
    signed = fields.Boolean(metadata={"description": "signed, so frozen", "example": True})
    frozen_at = fields.DateTime(
        allow_none=True, metadata={"description": "its first signature", "example": "2026-03-02T06:10:00+00:00"}
    )
    content = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(allow_none=True),
        metadata={
            "description": "the adverse event's fields in this version (empty ones left out)",
            "example": {"term": "fever", "ctcae_grade": 3, "outcome": "recovering", "version": 1},
        },
    )
    content_hash = fields.String(metadata={"description": "SHA-256 of the canonical content", "example": "9f2c…"})
    changes = fields.List(fields.Nested(AeChangeSchema), metadata={"description": "since the version before"})
    signatures = fields.List(fields.Nested(AeSignatureSchema))


class AdverseEventSignSchema(Schema):
    """An electronic signature: the signer's own email and password again, and what the signature means."""

    email = fields.Email(required=True, validate=validate.Length(max=254), metadata={"example": "li.wei@example.org"})
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=200), metadata={"example": "••••••••"}
    )
    meaning = fields.String(
        required=True,
        validate=validate.OneOf(SIGNATURE_MEANINGS),
        metadata={
            "description": "reviewed: I have reviewed this record; approved: I approve this assessment",
            "example": "approved",
        },
    )


class AdverseEventFollowUpSchema(Schema):
    """Follow-up of an adverse event; the fields sent are changed, the others kept. A reason is required."""

    outcome = fields.String(validate=validate.OneOf(OUTCOMES), metadata={"example": "recovered"})
    stop_date = fields.Date(allow_none=True, metadata={"description": "null clears it", "example": "2026-03-09"})
    ongoing = fields.Boolean(allow_none=True, metadata={"example": False})
    action_taken = fields.String(allow_none=True, validate=validate.OneOf(ACTIONS_TAKEN), metadata={"example": None})
    narrative = fields.String(
        validate=[validate.Length(max=NARRATIVE_MAX), NO_NUL],
        metadata={"example": "Discharged on day 7; fever resolved without sequelae."},
    )
    reason = fields.String(
        required=True,
        validate=REASON,
        metadata={"description": "where the information comes from", "example": "discharge letter received"},
    )

    @post_load
    def _some_change(self, data, **_kwargs):
        if not set(data) & set(FOLLOW_UP_FIELDS):
            raise ValidationError(f"send at least one of {', '.join(FOLLOW_UP_FIELDS)}", field_name="outcome")
        return data


class AdverseEventRecordSchema(Schema):
    """Completing a report into an SAE-ready record (nurse, investigator, admin); the fields sent are set, the
    others kept. The participant's own words are never changed."""

    ctcae_term = fields.String(
        validate=CTCAE_CODE,
        metadata={"description": "MedDRA code of the CTCAE v5 term (GET /api/v1/ctcae-terms)", "example": "10016558"},
    )
    onset_date = fields.Date(allow_none=True, metadata={"example": "2026-03-01"})
    stop_date = fields.Date(allow_none=True, metadata={"description": "on or after the onset", "example": None})
    severity = fields.String(allow_none=True, validate=validate.OneOf(SEVERITIES), metadata={"example": "severe"})
    ongoing = fields.Boolean(allow_none=True, metadata={"example": True})
    went_to_hospital = fields.Boolean(allow_none=True, metadata={"example": True})
    action_taken = fields.String(
        allow_none=True, validate=validate.OneOf(ACTIONS_TAKEN), metadata={"example": "drug_interrupted"}
    )
    aware_at = fields.AwareDateTime(
        metadata={
            "description": "when the site became aware (with its offset); not in the future nor before the onset. "
            "Moves the open reporting deadline of a suspected-serious event",
            "example": "2026-03-02T03:15:00+00:00",
        }
    )
    narrative = fields.String(
        validate=[validate.Length(max=NARRATIVE_MAX), NO_NUL],
        metadata={"example": "Fever 39.5 °C from 1 March; admitted to the local hospital on 2 March."},
    )
    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=500),
        metadata={"description": "for the audit trail", "example": "called the participant back"},
    )

    @post_load
    def _some_field(self, data, **_kwargs):
        if not set(data) & set(RECORD_FIELDS):
            raise ValidationError(f"send at least one of {', '.join(RECORD_FIELDS)}", field_name="ctcae_term")
        return data


class CtcaeTermSchema(Schema):
    """One term of the CTCAE v5 list."""

    meddra_code = fields.String(metadata={"example": "10016558"})
    term = fields.String(metadata={"example": "Fever"})
    soc = fields.String(
        metadata={
            "description": "MedDRA system organ class",
            "example": "General disorders and administration site conditions",
        }
    )


class StructuredAdverseEventSchema(Schema):
    """The structured part of an adverse-event report, the same from the app and from staff."""

    term = fields.String(
        required=True,
        validate=validate.OneOf(AE_TERMS),
        metadata={"description": "see GET /api/v1/adverse-event-terms", "example": "fever"},
    )
    other_text = fields.String(
        load_default="",
        validate=[validate.Length(max=1000), NO_NUL],
        metadata={"description": "required when term is 'other'", "example": ""},
    )
    onset_date = fields.Date(load_default=None, allow_none=True, metadata={"example": "2026-03-05"})
    severity = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(SEVERITIES), metadata={"example": "moderate"}
    )
    ongoing = fields.Boolean(load_default=None, allow_none=True, metadata={"example": True})
    went_to_hospital = fields.Boolean(
        load_default=None,
        allow_none=True,
        metadata={"description": "yes makes it suspected-serious: on-call is alerted at once", "example": False},
    )

    @post_load
    def _trimmed(self, data, **_kwargs):
        data["other_text"] = data["other_text"].strip()
        return data


def structured_report(data: dict) -> dict:
    """The loaded structured fields, as the report operation takes them."""
    return {name: data[name] for name in StructuredAdverseEventSchema().fields}


class AdverseEventCreateSchema(StructuredAdverseEventSchema):
    """A structured adverse-event report entered by staff on the participant's behalf."""

    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=500),
        metadata={"example": "participant reported it by phone"},
    )


class AdverseEventReviewSchema(Schema):
    """Investigator grading of an adverse event."""

    ctcae_grade = fields.Integer(
        required=True,
        validate=validate.Range(1, 5),
        metadata={"description": "CTCAE v5: 1 mild ... 5 death", "example": 3},
    )
    serious = fields.Boolean(required=True, metadata={"example": True})
    serious_criteria = fields.List(
        fields.String(validate=validate.OneOf(SERIOUS_CRITERIA)),
        load_default=list,
        metadata={"description": "at least one when serious", "example": ["hospitalisation"]},
    )
    relatedness = fields.String(required=True, validate=validate.OneOf(RELATEDNESS), metadata={"example": "possible"})
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES), metadata={"example": "recovering"})
    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=500),
        metadata={"example": "discharge letter received"},
    )


class AeTermSchema(Schema):
    """A term participants and staff can pick, with its labels."""

    code = fields.String(metadata={"example": "fever"})
    labels = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"example": {"en": "Fever", "zh-CN": "发热"}}
    )


class AeTermListSchema(Schema):
    """The adverse-event vocabulary of the structured form."""

    terms = fields.List(fields.Nested(AeTermSchema))
    severities = fields.List(fields.String(), metadata={"example": list(SEVERITIES)})
    relatedness = fields.List(fields.String(), metadata={"example": list(RELATEDNESS)})
    outcomes = fields.List(fields.String(), metadata={"example": list(OUTCOMES)})
    serious_criteria = fields.List(fields.String(), metadata={"example": list(SERIOUS_CRITERIA)})
    signature_meanings = fields.List(fields.String(), metadata={"example": list(SIGNATURE_MEANINGS)})
    actions_taken = fields.List(
        fields.String(),
        metadata={"description": "not shown to the masked assessor (it tells the arm)", "example": list(ACTIONS_TAKEN)},
    )


# --- alerts ---------------------------------------------------------------------------------------
ALERT_KINDS = [k.value for k in AlertKind]
ALERT_STATES = [s.value for s in AlertState]


def _participant_code(alert) -> str | None:
    """The study code of the alert's participant (None for site-wide alerts)."""
    if alert.participant_id is None:
        return None
    return object_session(alert).get(Participant, alert.participant_id).study_code


class PageRecipientSchema(Schema):
    """One SMS of a page round."""

    number = fields.String(metadata={"description": "country code and last four digits", "example": "+86\u20260099"})
    status = fields.String(
        metadata={
            "description": "how far it got: planned, sending, sent, delivered, read, undelivered, failed, expired",
            "example": "delivered",
        }
    )


class PageRoundSchema(Schema):
    """One round of on-call pages: 1 when the event was reported, 2, 3... the repeats until someone acknowledges."""

    round = fields.Integer(metadata={"example": 2})
    at = fields.DateTime(metadata={"description": "when the round was queued", "example": "2026-03-02T03:45:00+00:00"})
    numbers = fields.Function(lambda r: len(r.recipients), metadata={"description": "SMS in the round", "example": 2})
    delivered = fields.Integer(metadata={"description": "of which the carrier reported delivered", "example": 1})
    recipients = fields.List(fields.Nested(PageRecipientSchema))


class _AlertPages(fields.List):
    """The alert's on-call pages, read from the outbox: they are no column of the alert."""

    def get_value(self, obj, attr, accessor=None, default=missing):
        return page_rounds(object_session(obj), obj, vault=get_vault())


class MaskedAlertSchema(Schema):
    """An adverse-event alert as the masked assessor sees it: without the notes nurses typed (free text may tell
    the arm)."""

    id = fields.Integer(metadata={"example": 12})
    kind = fields.String(validate=validate.OneOf(ALERT_KINDS), metadata={"example": "serious_ae"})
    priority = fields.String(validate=validate.OneOf(["high", "normal"]), metadata={"example": "high"})
    state = fields.String(validate=validate.OneOf(ALERT_STATES), metadata={"example": "open"})
    site = fields.Function(
        site_code_of,
        allow_none=True,
        metadata={"description": "none for an alert about the whole system (admins only)", "example": "PKUPH"},
    )
    participant_id = fields.Integer(allow_none=True, metadata={"example": 3})
    study_code = fields.Function(_participant_code, allow_none=True, metadata={"example": "P-021"})
    summary = fields.Function(alert_summary, metadata={"example": "suspected serious adverse event reported by sms"})
    ref_type = fields.String(metadata={"example": "adverse_event"})
    ref_id = fields.Integer(allow_none=True, metadata={"example": 9})
    opened_at = fields.DateTime(metadata={"example": "2026-03-02T03:15:00+00:00"})
    # The edge reads the clock: age and time left are about the moment of the answer.
    age_seconds = fields.Function(
        lambda a: max(0, int((utcnow() - a.opened_at).total_seconds())),
        metadata={"description": "seconds since the alert opened", "example": 1800},
    )
    deadline_at = fields.DateTime(allow_none=True, metadata={"example": "2026-03-03T03:15:00+00:00"})
    seconds_to_deadline = fields.Function(
        lambda a: int((a.deadline_at - utcnow()).total_seconds()) if a.deadline_at else None,
        allow_none=True,
        metadata={"description": "negative once overdue", "example": 84600},
    )
    acknowledged_at = fields.DateTime(allow_none=True, metadata={"example": None})
    acknowledged_by = fields.String(
        metadata={"description": "staff:... (queue) or sms:on-call +86…0099 (ACK by SMS)", "example": ""}
    )
    acknowledged_via = fields.Function(
        acknowledged_via, allow_none=True, metadata={"description": "queue | sms", "example": None}
    )
    pages = _AlertPages(
        fields.Nested(PageRoundSchema),
        metadata={"description": "on-call SMS pages of a suspected-serious alert, oldest round first", "example": []},
    )
    resolved_at = fields.DateTime(allow_none=True, metadata={"example": None})
    resolved_by = fields.String(metadata={"example": ""})


class AlertSchema(MaskedAlertSchema):
    """One item of the nurse queue."""

    annotation = fields.String(metadata={"example": ""})
    resolution_note = fields.String(metadata={"example": ""})


class AlertQuerySchema(Schema):
    """Filters of the queue; without `state` it shows what is not resolved yet."""

    state = fields.List(
        fields.String(validate=validate.OneOf(ALERT_STATES)),
        load_default=None,
        metadata={"description": "repeatable; default open and acknowledged", "example": ["open"]},
    )
    kind = fields.List(
        fields.String(validate=validate.OneOf(ALERT_KINDS)),
        load_default=None,
        metadata={"description": "repeatable", "example": ["serious_ae"]},
    )
    priority = fields.String(
        load_default=None, validate=validate.OneOf(["high", "normal"]), metadata={"example": "high"}
    )
    site = fields.String(
        load_default=None,
        metadata={"description": "site code; admins only (others always see their own site)", "example": "PKUPH"},
    )
    limit = fields.Integer(load_default=500, validate=validate.Range(1, 1000), metadata={"example": 100})


class AlertResolveSchema(Schema):
    """What was done about an alert."""

    note = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"example": "called the participant; went to the clinic, fine now"},
    )
