"""marshmallow schemas: the HTTP contract of the API (tables stay SQLModel)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm import object_session

from backend.web.masking import masked_status
from schedules.models import DoseState, InjectionSite, Site, Study
from schedules.protocol import SUPPORTED_LANGUAGES
from schedules.wallclock import parse_hhmm

# The languages the system can speak at all; which of them a study offers is its protocol's
# business, checked by enrollment and update_details.
LANGS = SUPPORTED_LANGUAGES


def HHMM(value: str) -> None:  # noqa: N802  (used like the validator object it replaced)
    """Refuse anything that is not a time of day in HH:MM form (the domain's own parser decides)."""
    try:
        parse_hhmm(value)
    except ValueError:
        raise ValidationError("must be a time of day in HH:MM form") from None


# PostgreSQL text cannot hold NUL; refusing it here keeps such input a 422 instead of a driver error.
NO_NUL = validate.Regexp(r"^[^\x00]*$", error="must not contain NUL characters")


class ApiErrorSchema(Schema):
    """The one error shape of the API."""

    code = fields.Integer(required=True, metadata={"example": 422})
    status = fields.String(required=True, metadata={"example": "Unprocessable Entity"})
    message = fields.String(metadata={"example": "time_zone: 'Mars/Olympus' is not an IANA time zone"})
    errors = fields.Dict(metadata={"example": {"json": {"time_zone": ["'Mars/Olympus' is not an IANA time zone"]}}})


class TokenRequestSchema(Schema):
    """Staff credentials."""

    email = fields.Email(required=True, metadata={"example": "nurse@example.org"})
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=200))


class TokenSchema(Schema):
    """A bearer token, shown once."""

    token = fields.String(required=True)
    expires_at = fields.DateTime(required=True)
    role = fields.String(required=True)


class SiteSchema(Schema):
    """A site."""

    id = fields.Integer(dump_only=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    time_zone = fields.String(required=True)
    phone = fields.String()


class StudySchema(Schema):
    """A loaded study and its arms."""

    code = fields.String(required=True)
    title = fields.String(required=True)
    arms = fields.List(fields.String())
    loaded_at = fields.DateTime()


class EnrollSchema(Schema):
    """What enrollment needs."""

    study = fields.String(required=True, metadata={"example": "NCT04237987"})
    study_code = fields.String(required=True, validate=validate.Length(min=1, max=40), metadata={"example": "P-021"})
    arm = fields.String(required=True, metadata={"example": "il2"})
    site = fields.String(required=True, metadata={"description": "site code", "example": "PKUPH"})
    phone = fields.String(required=True, load_only=True, metadata={"example": "+8613812345678"})
    time_zone = fields.String(required=True, metadata={"example": "Asia/Shanghai"})
    language = fields.String(
        load_default=None,
        validate=validate.OneOf(LANGS),
        metadata={"description": "default: the study protocol's default language", "example": "zh-CN"},
    )
    reminder_time = fields.String(required=True, validate=HHMM, metadata={"example": "20:00"})
    first_dose_date = fields.Date(required=True, metadata={"example": "2026-03-01"})
    sms_consent = fields.Boolean(load_default=True)


def study_code_of(row) -> str:
    """The code of the study a row belongs to (read through the row's own session)."""
    return object_session(row).get(Study, row.study_id).code


def site_code_of(row) -> str | None:
    """The code of the site a row belongs to (None for an alert about the whole system)."""
    return None if row.site_id is None else object_session(row).get(Site, row.site_id).code


class MaskedParticipantSchema(Schema):
    """A participant as the masked outcome assessor sees them: the same for every arm."""

    id = fields.Integer()
    study = fields.Function(study_code_of)
    study_code = fields.String()
    site = fields.Function(site_code_of)
    phone_masked = fields.Function(
        lambda p: "\u2022" * 6 + p.phone_last2, metadata={"description": "last two digits only"}
    )
    time_zone = fields.String()
    language = fields.String()
    reminder_time = fields.String()
    status = fields.Function(
        masked_status,
        metadata={"description": "active | withdrawn (a hold of dosing is not shown)", "example": "active"},
    )
    opted_out = fields.Boolean()
    sms_consent = fields.Boolean()
    enrolled_at = fields.DateTime()


class ParticipantSchema(MaskedParticipantSchema):
    """A participant as staff see them (the masked assessor gets MaskedParticipantSchema: no arm, no dosing
    dates, no follow-up end date (it is counted from the last dose in one arm), no hold)."""

    status = fields.String(metadata={"example": "active"})
    follow_up_end_date = fields.Date()
    arm = fields.String()
    first_dose_date = fields.Date()
    treatment_end_date = fields.Date(allow_none=True, metadata={"description": "exclusive"})


class ParticipantUpdateSchema(Schema):
    """Changes to a participant; each needs a reason."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    phone = fields.String(load_only=True)
    time_zone = fields.String()
    reminder_time = fields.String(validate=HHMM)
    language = fields.String(validate=validate.OneOf(LANGS))
    sms_consent = fields.Boolean()


class ReasonSchema(Schema):
    """A reason for a change."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class HoldSchema(ReasonSchema):
    """Hold dosing from a local date (default: today)."""

    effective_date = fields.Date(load_default=None, metadata={"example": "2026-03-10"})


class ResumeSchema(ReasonSchema):
    """Resume dosing on a local date (default: today)."""

    resume_date = fields.Date(load_default=None, metadata={"example": "2026-03-15"})


class DoseSchema(Schema):
    """A dose, its reminder time and its window (UTC, ISO 8601)."""

    seq = fields.Integer(metadata={"description": "dose number, 1-based"})
    local_date = fields.Date()
    due_at = fields.DateTime()
    window_opens_at = fields.DateTime()
    window_closes_at = fields.DateTime()
    state = fields.String(validate=validate.OneOf([s.value for s in DoseState]))
    reported_at = fields.DateTime(allow_none=True)
    taken_at = fields.DateTime(allow_none=True)
    injection_site = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    note = fields.String()


class DoseReportSchema(Schema):
    """A dose report (staff recording a phone call, or the app)."""

    taken = fields.Boolean(required=True)
    taken_at = fields.AwareDateTime(
        load_default=None, default_timezone=None, metadata={"example": "2026-03-03T12:30:00Z"}
    )
    injection_site = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf([s.value for s in InjectionSite])
    )
    note = fields.String(load_default="", validate=validate.Length(max=1000))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class AdherenceSchema(Schema):
    """Adherence: taken (on time or late) / doses due, held and cancelled excluded."""

    counted = fields.Integer()
    taken = fields.Integer()
    on_time = fields.Integer()
    adherence = fields.Float(allow_none=True)
    on_time_rate = fields.Float(allow_none=True)
    by_state = fields.Dict(keys=fields.String(), values=fields.Integer())
    last_dose_at = fields.DateTime(allow_none=True)
    awaiting_entry = fields.Integer(
        metadata={
            "description": "doses whose window closed before enrollment and that nobody has recorded yet: "
            "they wait for a nurse's entry and are in no other figure"
        }
    )


class AuditEntrySchema(Schema):
    """One row of the audit trail."""

    at = fields.DateTime()
    actor = fields.String()
    source = fields.String()
    action = fields.String()
    entity = fields.String()
    entity_id = fields.String()
    field = fields.String()
    old_value = fields.String(allow_none=True)
    new_value = fields.String(allow_none=True)
    reason = fields.String()


class ChangeResultSchema(Schema):
    """What a hold, resume or withdrawal changed."""

    participant = fields.Nested(ParticipantSchema)
    doses_changed = fields.Integer()
