"""marshmallow schemas of the participant app API: activation, tokens, /me, calendar. No arm anywhere."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm import object_session

from backend.extensions import get_vault
from backend.identity.app_tokens import ACCESS_TTL
from backend.web.api.schemas import HHMM, LANGS, NO_NUL, site_code_of, study_code_of
from backend.web.api.symptom_schemas import StructuredAdverseEventSchema
from schedules.dbtypes import utcnow
from schedules.models import DoseState, InjectionSite, Site, Study
from schedules.phones import region_of
from schedules.studies import protocol_of
from schedules.vocabulary import VAS_MODES

INJECTION_SITES = [s.value for s in InjectionSite]
_EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _plausible_instant(value: datetime) -> None:
    """Refuse instants no dose could have been taken at (and ones too extreme to convert to UTC)."""
    try:
        if value.astimezone(timezone.utc) < _EARLIEST:
            raise ValidationError("must be an instant after 2000-01-01")
    except (OverflowError, ValueError):
        raise ValidationError("must be an instant after 2000-01-01") from None


# --- staff side --------------------------------------------------------------------------------------
class ActivationCodeRequestSchema(Schema):
    """Options for a new activation code."""

    send_sms = fields.Boolean(
        load_default=False, metadata={"description": "also text the code to the participant's phone", "example": True}
    )


class ActivationCodeSchema(Schema):
    """A one-time activation code: shown once, typed into the app, valid for 72 hours."""

    participant_id = fields.Integer(attribute="row.participant_id", metadata={"example": 3})
    code = fields.String(
        metadata={"description": "12 characters; dashes, spaces and case do not matter", "example": "7KQ2-M9XD-4TBA"}
    )
    expires_at = fields.DateTime(attribute="row.expires_at", metadata={"example": "2026-03-04T08:00:00+00:00"})
    sent_by_sms = fields.Boolean(attribute="row.sent_by_sms", metadata={"example": True})


class DeviceRevokeSchema(Schema):
    """Why the participant's devices are being signed out."""

    reason = fields.String(
        required=True, validate=[validate.Length(min=1, max=120), NO_NUL], metadata={"example": "phone reported lost"}
    )


class DeviceRevokeResultSchema(Schema):
    """What a device revocation did."""

    devices_revoked = fields.Integer(metadata={"example": 1})
    codes_revoked = fields.Integer(metadata={"description": "unused activation codes withdrawn too", "example": 0})


class DeviceSchema(Schema):
    """A signed-in (or signed-out) app installation of a participant."""

    id = fields.Integer(metadata={"example": 5})
    device_name = fields.String(metadata={"example": "Pixel 8"})
    created_at = fields.DateTime(metadata={"example": "2026-03-01T08:00:00+00:00"})
    last_used_at = fields.DateTime(
        metadata={"description": "last token refresh", "example": "2026-03-02T08:00:00+00:00"}
    )
    revoked_at = fields.DateTime(allow_none=True, metadata={"example": None})
    revoked_reason = fields.String(metadata={"example": ""})


# --- activation and tokens -------------------------------------------------------------------------
class ActivateSchema(Schema):
    """The code from the study team, and a name for this device."""

    code = fields.String(required=True, validate=validate.Length(min=1, max=40), metadata={"example": "7KQ2-M9XD-4TBA"})
    device_name = fields.String(
        load_default="", validate=[validate.Length(max=80), NO_NUL], metadata={"example": "Pixel 8"}
    )


class RefreshSchema(Schema):
    """The current refresh token (it is spent by this call)."""

    refresh_token = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata={"example": "tcr_3q2…"}
    )


class TokenPairSchema(Schema):
    """A short-lived access token and the refresh token to renew it; both shown once."""

    access_token = fields.String(
        required=True, metadata={"description": "send as 'Authorization: Bearer <access_token>'", "example": "tca_Zx8…"}
    )
    token_type = fields.Constant("Bearer", required=True, metadata={"example": "Bearer"})
    expires_in = fields.Function(
        lambda pair: int(ACCESS_TTL.total_seconds()),
        required=True,
        metadata={"description": "seconds until the access token expires", "example": 900},
    )
    access_token_expires_at = fields.DateTime(
        attribute="access_expires_at", required=True, metadata={"example": "2026-03-01T08:15:00+00:00"}
    )
    refresh_token = fields.String(
        required=True, metadata={"description": "use once at /api/v1/app/token/refresh", "example": "tcr_3q2…"}
    )
    refresh_token_expires_at = fields.DateTime(
        attribute="refresh_expires_at", required=True, metadata={"example": "2026-03-31T08:00:00+00:00"}
    )


# --- /me -------------------------------------------------------------------------------------------
def _protocol_of(participant):
    return protocol_of(object_session(participant).get(Study, participant.study_id))


def _emergency_number(participant) -> str:
    """The emergency number of the country of the participant's phone, as the SMS answers name it."""
    region = region_of(get_vault().decrypt(participant.phone_ciphertext))
    return _protocol_of(participant).safety.emergency_number(region)


def _vas_scale(participant) -> dict:
    """The protocol's VAS scale and the line's end anchors in the participant's language."""
    rule = _protocol_of(participant).vas

    def said(anchors: dict[str, str]) -> str:
        return anchors.get(participant.language) or anchors.get("en") or next(iter(anchors.values()))

    return {
        "scale_min": float(rule.scale_min),
        "scale_max": float(rule.scale_max),
        "decimals": rule.decimals,
        "anchor_low": said(rule.anchor_low),
        "anchor_high": said(rule.anchor_high),
    }


class VasScaleSchema(Schema):
    """The study's VAS scale, and what the two ends of the line say (in the participant's language)."""

    scale_min = fields.Float(metadata={"example": 0.0})
    scale_max = fields.Float(metadata={"example": 10.0})
    decimals = fields.Integer(metadata={"description": "decimal places recorded", "example": 1})
    anchor_low = fields.String(metadata={"description": "the left end of the line", "example": "Not active"})
    anchor_high = fields.String(metadata={"description": "the right end of the line", "example": "Extremely active"})


class _VasScaleField(fields.Nested):
    """The participant's VAS scale, computed from their protocol (documented as VasScaleSchema)."""

    def get_value(self, obj, attr, accessor=None, default=None):
        return _vas_scale(obj)


class MeSchema(Schema):
    """The signed-in participant as the app shows them (no arm)."""

    study = fields.Function(study_code_of, metadata={"example": "NCT04237987"})
    study_code = fields.String(metadata={"example": "P-021"})
    site = fields.Function(site_code_of, metadata={"example": "PKUPH"})
    site_phone = fields.Function(
        lambda p: object_session(p).get(Site, p.site_id).phone,
        metadata={"description": "call this number with questions or if unwell", "example": "+861088325555"},
    )
    language = fields.String(validate=validate.OneOf(LANGS), metadata={"example": "zh-CN"})
    reminder_time = fields.String(metadata={"description": "local wall-clock time of reminders", "example": "20:00"})
    time_zone = fields.String(metadata={"example": "Asia/Shanghai"})
    status = fields.String(metadata={"example": "active"})
    sms_opted_out = fields.Boolean(attribute="opted_out", metadata={"example": False})
    emergency_number = fields.Function(
        _emergency_number,
        metadata={
            "description": "the emergency number of the country of my phone (call it if in danger)",
            "example": "120",
        },
    )
    vas = _VasScaleField(VasScaleSchema, metadata={"description": "the VAS scale and the line's end anchors"})


class MeUpdateSchema(Schema):
    """What the participant may change themselves; reminders are re-planned at once."""

    reminder_time = fields.String(validate=HHMM, metadata={"example": "21:30"})
    language = fields.String(validate=validate.OneOf(LANGS), metadata={"example": "en"})


class MyDoseSchema(Schema):
    """One dose of the participant's schedule: reminder time, window (UTC) and state."""

    seq = fields.Integer(metadata={"description": "dose number, 1-based", "example": 3})
    local_date = fields.Date(metadata={"example": "2026-03-05"})
    due_at = fields.DateTime(metadata={"description": "reminder time", "example": "2026-03-05T12:00:00+00:00"})
    window_opens_at = fields.DateTime(metadata={"example": "2026-03-04T16:00:00+00:00"})
    window_closes_at = fields.DateTime(metadata={"example": "2026-03-06T04:00:00+00:00"})
    state = fields.String(validate=validate.OneOf([s.value for s in DoseState]), metadata={"example": "scheduled"})
    # The edge reads the clock: "open now" is about the moment of the answer.
    window_open = fields.Function(
        lambda d: d.window_opens_at <= utcnow() < d.window_closes_at,
        metadata={"description": "the window is open now", "example": True},
    )
    reported_at = fields.DateTime(allow_none=True, metadata={"example": None})
    taken_at = fields.DateTime(allow_none=True, metadata={"example": None})
    injection_site = fields.String(
        allow_none=True, validate=validate.OneOf(INJECTION_SITES), metadata={"example": None}
    )
    source = fields.String(
        allow_none=True, metadata={"description": "how it was reported: app | sms | staff | job", "example": None}
    )


class DoseQuerySchema(Schema):
    """Which doses to list."""

    when = fields.String(
        load_default="all",
        validate=validate.OneOf(["all", "upcoming", "past"]),
        metadata={"description": "upcoming: window not closed yet; past: window closed", "example": "upcoming"},
    )


class MyDoseReportSchema(Schema):
    """The participant reports a dose: taken (when, where) or not taken."""

    taken = fields.Boolean(required=True, metadata={"example": True})
    taken_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        default_timezone=None,
        validate=_plausible_instant,
        metadata={"description": "default: now", "example": "2026-03-05T12:30:00+00:00"},
    )
    injection_site = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(INJECTION_SITES), metadata={"example": "thigh_left"}
    )
    note = fields.String(load_default="", validate=[validate.Length(max=1000), NO_NUL], metadata={"example": ""})


class VasValue(fields.Field):
    """A VAS value sent as a JSON number (4.5) or string ("4.5"); read on the protocol's scale as SMS reads it."""

    def _deserialize(self, value, attr, data, **kwargs):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, str))
            or (isinstance(value, str) and len(value) > 20)
        ):
            # Only the type is checked here; whether the number is on the scale is the protocol's business.
            raise ValidationError("must be a number, or a string holding one, e.g. 4.5")
        return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else float(Decimal(value))


class MyVasCreateSchema(Schema):
    """A patient-global VAS: how active the disease has felt, on the protocol's scale (NCT04237987: 0.0 to 10.0)."""

    value = VasValue(
        required=True,
        metadata={
            "description": "a number or a string on the protocol's scale, e.g. 0.0-10.0, one decimal",
            "example": 4.5,
            "oneOf": [{"type": "number"}, {"type": "string", "maxLength": 20}],
        },
    )
    mode = fields.String(
        load_default="sms_numeric",
        validate=validate.OneOf(VAS_MODES),
        metadata={
            "description": "vas_line: a mark on the 100 mm line (value = its position on the scale); "
            "sms_numeric (default): a number typed",
            "example": "vas_line",
        },
    )


class MyVasSchema(Schema):
    """A VAS the participant sent."""

    id = fields.Integer(metadata={"example": 17})
    value = fields.Float(metadata={"example": 4.5})
    recorded_at = fields.DateTime(metadata={"example": "2026-03-01T12:40:00+00:00"})
    source = fields.String(metadata={"example": "app"})
    mode = fields.String(
        validate=validate.OneOf(VAS_MODES),
        metadata={"description": "vas_line (the app's line) or sms_numeric (a number typed)", "example": "vas_line"},
    )
    status = fields.String(metadata={"description": "valid | withdrawn | corrected", "example": "valid"})


class MyAdverseEventCreateSchema(StructuredAdverseEventSchema):
    """A side effect, as structured in the app, with the participant's own words."""

    description = fields.String(
        load_default="",
        validate=[validate.Length(max=2000), NO_NUL],
        metadata={
            "description": "anything else, in the participant's words",
            "example": "started the evening after the injection",
        },
    )


class MyAdverseEventSchema(Schema):
    """An adverse event the participant reported, with what to do if it is urgent."""

    id = fields.Integer(metadata={"example": 9})
    reported_at = fields.DateTime(metadata={"example": "2026-03-05T13:00:00+00:00"})
    source = fields.String(metadata={"example": "app"})
    term = fields.String(metadata={"example": "fever"})
    other_text = fields.String(metadata={"example": ""})
    description = fields.String(attribute="raw_text", metadata={"example": "started the evening after the injection"})
    onset_date = fields.Date(allow_none=True, metadata={"example": "2026-03-05"})
    severity = fields.String(allow_none=True, metadata={"example": "moderate"})
    ongoing = fields.Boolean(allow_none=True, metadata={"example": True})
    went_to_hospital = fields.Boolean(allow_none=True, metadata={"example": False})
    suspected_serious = fields.Boolean(metadata={"description": "the on-call nurse has been alerted", "example": False})
    injection_site = fields.String(
        allow_none=True,
        metadata={
            "description": "an injection-site reaction: the site of my latest injection before it",
            "example": None,
        },
    )
    advice = fields.String(
        metadata={
            "description": "what to do if it is urgent (participant's language)",
            "example": "Thank you, we received your report and a nurse will review it. ...",
        }
    )


class MessageQuerySchema(Schema):
    """How many messages to list."""

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200), metadata={"example": 50})


class MyMessageSchema(Schema):
    """One SMS to or from the participant."""

    direction = fields.String(validate=validate.OneOf(["outbound", "inbound"]), metadata={"example": "outbound"})
    at = fields.DateTime(metadata={"example": "2026-03-05T12:00:00+00:00"})
    body = fields.String(metadata={"example": "Reminder: today's injection (2026-03-05) is due. ..."})
    purpose = fields.String(
        allow_none=True,
        metadata={
            "description": "outbound only: dose_reminder, dose_nudge, vas_prompt, dose_and_vas (a reminder that "
            "asks the VAS prompt too), study_closing, reply, activation",
            "example": "dose_reminder",
        },
    )
    status = fields.String(
        allow_none=True, metadata={"description": "outbound only: delivery status", "example": "delivered"}
    )


class CalendarTokenSchema(Schema):
    """The secret address of the participant's dose calendar (shown once; a new one replaces the old)."""

    url = fields.String(metadata={"example": "https://trial.example.org/api/v1/calendar/Hk3….ics"})
    webcal_url = fields.String(
        metadata={
            "description": "the same feed for calendar apps that subscribe via webcal://",
            "example": "webcal://trial.example.org/api/v1/calendar/Hk3….ics",
        }
    )


class InjectionSiteUseSchema(Schema):
    """One of the protocol's injection sites and when I last used it."""

    site = fields.String(validate=validate.OneOf(INJECTION_SITES), metadata={"example": "thigh_left"})
    label = fields.String(metadata={"description": "in my language", "example": "Left thigh"})
    last_used_at = fields.DateTime(
        allow_none=True, metadata={"description": "my latest injection there; null: never", "example": None}
    )


class InjectionSitesSchema(Schema):
    """The sites to rotate between, in the protocol's order, and the one to use next."""

    suggested = fields.String(
        validate=validate.OneOf(INJECTION_SITES),
        metadata={"description": "a site never used, else the least recently used", "example": "thigh_left"},
    )
    sites = fields.List(fields.Nested(InjectionSiteUseSchema))
