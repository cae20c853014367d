"""Trial protocol files: TOML on disk, validated by marshmallow, loaded into frozen dataclasses.

Everything trial-specific (arms, regimen, windows, reminder timing, VAS, safety words) lives
in one file per trial, so a new trial is a new file rather than new code.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from schedules.ctcae import ctcae_codes
from schedules.models import InjectionSite
from schedules.vocabulary import AE_TERMS
from schedules.wallclock import format_hhmm, parse_hhmm

SUPPORTED_LANGUAGES = ("zh-CN", "en")
FOLLOW_UP_FROM = ("last_dose", "first_dose")
RESUME_POLICIES = ("keep_end_date", "extend_to_total_doses")
CLASSIFICATIONS = ("minor", "major")

# Used when a protocol file leaves the [safety] section out; PRODUCT.md's starting list.
DEFAULT_SERIOUS_KEYWORDS = (
    "hospital",
    "hospitalised",
    "hospitalized",
    "admitted",
    "emergency",
    "ER",
    "A&E",
    "hospitalisation",
    "hospitalization",
    "ICU",
    "intensive care",
    "ambulance",
    "120",
    "住院",
    "医院",
    "入院",
    "收入院",
    "急诊",
    "抢救",
    "重症",
    "救护车",
    "昏迷",
)

# Adverse-event terms that tell the arm of a trial with injections and a no-injection control.
DEFAULT_WITHHELD_AE_TERMS = ("injection_site_reaction",)
# Injection site reaction, Infusion site extravasation: only an arm with an injection has them.
DEFAULT_WITHHELD_CTCAE_TERMS = ("10022095", "10064774")

# The VAS line's end anchors, by language, when the protocol's [vas] gives none (the core-set patient global).
DEFAULT_VAS_ANCHORS = {
    "anchor_low": {"en": "Not active", "zh-CN": "完全没有活动"},
    "anchor_high": {"en": "Extremely active", "zh-CN": "极度活动"},
}

# Subcutaneous injection sites to rotate between, in the order the app lists them, and their plain labels.
DEFAULT_INJECTION_SITE_LABELS = {
    "abdomen_left": {"en": "Belly, left side", "zh-CN": "腹部左侧"},
    "abdomen_right": {"en": "Belly, right side", "zh-CN": "腹部右侧"},
    "thigh_left": {"en": "Left thigh", "zh-CN": "左大腿"},
    "thigh_right": {"en": "Right thigh", "zh-CN": "右大腿"},
    "arm_left": {"en": "Left upper arm", "zh-CN": "左上臂"},
    "arm_right": {"en": "Right upper arm", "zh-CN": "右上臂"},
}

# Emergency number by the ISO 3166 region of the participant's phone; "default" for any other region.
DEFAULT_EMERGENCY_NUMBERS = {
    "CN": "120",
    "HK": "999",
    "TW": "119",
    "US": "911",
    "CA": "911",
    "GB": "999",
    "default": "112",
}


class ProtocolInvalid(Exception):
    """A protocol file that cannot be used; .errors is a list of 'file: field.path: reason' strings, one per problem."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class Regimen:
    """What an arm's participants inject, how much, and how often, for how long."""

    drug: str
    dose_amount: Decimal
    dose_unit: str
    route: str
    interval_days: int
    treatment_months: int


@dataclass(frozen=True)
class Arm:
    """One arm of the trial; `regimen` is None when we schedule no doses for it."""

    code: str
    label: str
    regimen: Regimen | None
    follow_up_months: int
    follow_up_from: str  # 'last_dose' | 'first_dose'


@dataclass(frozen=True)
class DoseWindowRule:
    """When a dose counts as on time: from opens_at on the dose day to closes_at N days later."""

    opens_at: time
    closes_at: time
    closes_day_offset: int


@dataclass(frozen=True)
class ReminderRule:
    """Follow-up nudge delay, how late a reminder may still go out, and local quiet hours."""

    nudge_after_minutes: int
    stale_after_minutes: int
    quiet_start: time
    quiet_end: time


@dataclass(frozen=True)
class VasRule:
    """Patient-global VAS prompts: cadence, reply window, undo period and the scale itself."""

    every_days: int
    reply_window_hours: int
    undo_minutes: int
    scale_min: Decimal
    scale_max: Decimal
    decimals: int
    # What the two ends of the app's line say, by language ("not active" ... "extremely active").
    anchor_low: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_VAS_ANCHORS["anchor_low"]))
    anchor_high: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_VAS_ANCHORS["anchor_high"]))


@dataclass(frozen=True)
class InjectionSiteRule:
    """The injection sites participants rotate between (InjectionSite codes, in the order shown) and their labels."""

    sites: tuple[str, ...]
    labels: dict[str, dict[str, str]]

    def label(self, site: str, language: str) -> str:
        """The site in the participant's language (English if the protocol gives none in it)."""
        labels = self.labels.get(site) or DEFAULT_INJECTION_SITE_LABELS.get(site, {})
        return labels.get(language) or labels.get("en") or site


@dataclass(frozen=True)
class HoldRule:
    """What resuming after a nurse hold does to the treatment end date."""

    resume_policy: str  # 'keep_end_date' | 'extend_to_total_doses'


@dataclass(frozen=True)
class EnrollmentRule:
    """How far in the past a first-dose date may lie when a participant is enrolled."""

    max_backdate_days: int


@dataclass(frozen=True)
class BlindingRule:
    """What the masked outcome assessor is shown: the study's masked title, and adverse-event terms withheld
    because they tell the arm (an injection-site reaction needs an injection)."""

    masked_title: str
    withheld_ae_terms: tuple[str, ...]
    # CTCAE v5 terms (MedDRA codes) that tell the arm the same way, e.g. 10022095 Injection site reaction.
    withheld_ctcae_terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class SafetyRule:
    """Words that make an adverse-event report suspected-serious, and the reporting clock."""

    serious_keywords: tuple[str, ...]
    reporting_deadline_hours: int
    emergency_numbers: dict[str, str]
    chase_every_minutes: int = 30  # an unacknowledged suspected-serious alert pages on-call again this often

    def emergency_number(self, region: str | None) -> str:
        """The emergency number to tell a participant whose phone is from `region` (ISO 3166, e.g. CN)."""
        return self.emergency_numbers.get(region or "", self.emergency_numbers["default"])


@dataclass(frozen=True)
class DeviationRule:
    """How the deviation log classifies what it finds (schedules/deviations.py): minor or major."""

    missed_in_a_row_major: int  # this many doses not taken in a row are all major; fewer are minor
    late_major_after_hours: int  # taken more than this many hours after the window closed is major
    hold_classification: str
    out_of_window_change_classification: str


@dataclass(frozen=True)
class Protocol:
    """One trial's rules, as loaded from its protocol file."""

    study_code: str
    title: str
    condition: str
    default_language: str
    languages: tuple[str, ...]
    site_time_zone: str
    arms: tuple[Arm, ...]
    dose_window: DoseWindowRule
    reminders: ReminderRule
    vas: VasRule
    hold: HoldRule
    safety: SafetyRule
    show_drug_name_in_messages: bool
    enrollment: EnrollmentRule
    blinding: BlindingRule
    deviations: DeviationRule
    injection_sites: InjectionSiteRule

    def arm(self, code: str) -> Arm:
        """Return the arm with this code; KeyError if the trial has none."""
        for arm in self.arms:
            if arm.code == code:
                return arm
        raise KeyError(code)

    @property
    def arm_codes(self) -> tuple[str, ...]:
        """Arm codes in file order."""
        return tuple(arm.code for arm in self.arms)

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict that protocol_from_dict turns back into this protocol."""
        return _ProtocolSchema().dump(self)


# --- validation -------------------------------------------------------------------------


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _known_zone(value: str) -> None:
    # ZoneInfo raises different errors for unknown names, path-like names and directories.
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(f"Unknown IANA time zone {value!r}.") from None


def _no_duplicates(values: list) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("Must not list the same value twice.")


class _ClockTime(fields.Field):
    """A local wall-clock time written as an "HH:MM" string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> time:
        # Exactly "HH:MM" in a protocol file: no spaces forgiven, unlike a person typing it.
        if not isinstance(value, str) or value != value.strip():
            raise ValidationError('Not a valid time; write "HH:MM" in quotes, 00:00 to 23:59.')
        try:
            return parse_hhmm(value)
        except ValueError:
            raise ValidationError('Not a valid time; write "HH:MM" in quotes, 00:00 to 23:59.') from None

    def _serialize(self, value: time | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_hhmm(value)


class _StrictBool(fields.Boolean):
    """true/false only: marshmallow's Boolean would also take "yes", 1 or "on"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value


def _text(**kwargs: Any) -> fields.String:
    return fields.String(validate=_not_blank, **kwargs)


def _by_language(**kwargs: Any) -> fields.Dict:
    """Text by language code ({"en": "...", "zh-CN": "..."}): a supported language each, none blank."""
    return fields.Dict(
        keys=fields.String(validate=validate.OneOf(SUPPORTED_LANGUAGES)),
        values=_text(),
        validate=validate.Length(min=1, error="Must give the text in at least one language."),
        **kwargs,
    )


def _count(minimum: int, **kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=minimum), **kwargs)


class _RegimenSchema(Schema):
    drug = _text(required=True)
    dose_amount = fields.Decimal(required=True, as_string=True, validate=validate.Range(min=0, min_inclusive=False))
    dose_unit = _text(required=True)
    route = _text(required=True)
    interval_days = _count(1, required=True)
    treatment_months = _count(1, required=True)

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> Regimen:
        return Regimen(**data)


class _ArmSchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z][a-z0-9_]{0,31}$",
            error="Must be lower-case letters, digits or _, starting with a letter (at most 32).",
        ),
    )
    label = _text(required=True)
    regimen = fields.Nested(_RegimenSchema, load_default=None, allow_none=True)
    follow_up_months = _count(0, required=True)
    follow_up_from = fields.String(required=True, validate=validate.OneOf(FOLLOW_UP_FROM))

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _last_dose_needs_regimen(self, data: dict, original: Any, **kwargs: Any) -> None:
        # Look at the raw input: an invalid regimen is absent from `data` but was still given.
        given = isinstance(original, dict) and original.get("regimen") is not None
        if data.get("follow_up_from") == "last_dose" and not given:
            raise ValidationError(
                "'last_dose' needs a regimen; an arm without doses counts from 'first_dose'.",
                "follow_up_from",
            )

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> Arm:
        return Arm(**data)


class _DoseWindowSchema(Schema):
    opens_at = _ClockTime(load_default=time(0, 0))
    closes_at = _ClockTime(load_default=time(12, 0))
    closes_day_offset = _count(0, load_default=1)

    @validates_schema(skip_on_field_errors=False)
    def _closes_after_opening(self, data: dict, **kwargs: Any) -> None:
        opens, closes = data.get("opens_at"), data.get("closes_at")
        if data.get("closes_day_offset") == 0 and opens and closes and closes <= opens:
            raise ValidationError("Must be after opens_at when the window closes the same day.", "closes_at")

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> DoseWindowRule:
        return DoseWindowRule(**data)


class _ReminderSchema(Schema):
    nudge_after_minutes = _count(1, load_default=180)
    stale_after_minutes = _count(1, load_default=120)
    quiet_start = _ClockTime(load_default=time(22, 0))
    quiet_end = _ClockTime(load_default=time(8, 0))

    @validates_schema(skip_on_field_errors=False)
    def _quiet_hours_have_length(self, data: dict, **kwargs: Any) -> None:
        # Equal ends could mean "never quiet" or "always quiet"; make the author say which.
        start, end = data.get("quiet_start"), data.get("quiet_end")
        if start is not None and start == end:
            raise ValidationError("Must differ from quiet_start.", "quiet_end")

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> ReminderRule:
        return ReminderRule(**data)


class _VasSchema(Schema):
    every_days = _count(1, load_default=7)
    reply_window_hours = _count(1, load_default=24)
    undo_minutes = _count(0, load_default=60)
    scale_min = fields.Decimal(as_string=True, load_default=Decimal("0.0"))
    scale_max = fields.Decimal(as_string=True, load_default=Decimal("10.0"))
    decimals = fields.Integer(strict=True, validate=validate.Range(min=0, max=2), load_default=1)
    anchor_low = _by_language(load_default=lambda: dict(DEFAULT_VAS_ANCHORS["anchor_low"]))
    anchor_high = _by_language(load_default=lambda: dict(DEFAULT_VAS_ANCHORS["anchor_high"]))

    @validates_schema(skip_on_field_errors=False)
    def _scale_is_a_range(self, data: dict, **kwargs: Any) -> None:
        low, high = data.get("scale_min"), data.get("scale_max")
        if low is not None and high is not None and low >= high:
            raise ValidationError("Must be greater than scale_min.", "scale_max")

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> VasRule:
        return VasRule(**data)


_SITE_CODES = tuple(s.value for s in InjectionSite)


class _InjectionSitesSchema(Schema):
    sites = fields.List(
        fields.String(validate=validate.OneOf(_SITE_CODES)),
        validate=[validate.Length(min=1, error="Must list at least one."), _no_duplicates],
        load_default=lambda: list(DEFAULT_INJECTION_SITE_LABELS),
    )
    labels = fields.Dict(
        keys=fields.String(validate=validate.OneOf(_SITE_CODES)),
        values=_by_language(),
        load_default=dict,
    )

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> InjectionSiteRule:
        # A site the file gives no label keeps the plain default one; the file's labels win.
        labels = {
            site: {**DEFAULT_INJECTION_SITE_LABELS[site], **data["labels"].get(site, {})} for site in data["sites"]
        }
        return InjectionSiteRule(sites=tuple(data["sites"]), labels=labels)


class _HoldSchema(Schema):
    resume_policy = fields.String(validate=validate.OneOf(RESUME_POLICIES), load_default="keep_end_date")

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> HoldRule:
        return HoldRule(**data)


class _EnrollmentSchema(Schema):
    max_backdate_days = _count(0, load_default=7)

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> EnrollmentRule:
        return EnrollmentRule(**data)


class _DeviationSchema(Schema):
    missed_in_a_row_major = _count(1, load_default=2)
    late_major_after_hours = _count(0, load_default=24)
    hold_classification = fields.String(validate=validate.OneOf(CLASSIFICATIONS), load_default="minor")
    out_of_window_change_classification = fields.String(validate=validate.OneOf(CLASSIFICATIONS), load_default="minor")

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> DeviationRule:
        return DeviationRule(**data)


_REGION_ERROR = 'Must be a two-letter region code in capitals (CN, US, GB) or "default".'


class _BlindingSchema(Schema):
    masked_title = _text(load_default="A randomised study with a masked outcome assessment")
    withheld_ae_terms = fields.List(
        fields.String(validate=validate.OneOf(AE_TERMS)),
        validate=_no_duplicates,
        load_default=lambda: list(DEFAULT_WITHHELD_AE_TERMS),
    )
    withheld_ctcae_terms = fields.List(
        fields.String(validate=validate.OneOf(ctcae_codes(), error="Must be a MedDRA code of the CTCAE v5 list.")),
        validate=_no_duplicates,
        load_default=lambda: list(DEFAULT_WITHHELD_CTCAE_TERMS),
    )

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> BlindingRule:
        return BlindingRule(
            masked_title=data["masked_title"],
            withheld_ae_terms=tuple(data["withheld_ae_terms"]),
            withheld_ctcae_terms=tuple(data["withheld_ctcae_terms"]),
        )


class _SafetySchema(Schema):
    serious_keywords = fields.List(
        _text(),
        validate=[validate.Length(min=1, error="Must list at least one."), _no_duplicates],
        load_default=lambda: list(DEFAULT_SERIOUS_KEYWORDS),
    )
    reporting_deadline_hours = _count(1, load_default=24)
    chase_every_minutes = _count(1, load_default=30)
    emergency_numbers = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^(?:[A-Z]{2}|default)$", error=_REGION_ERROR)),
        values=fields.String(validate=validate.Regexp(r"^[0-9]{2,6}$", error="Must be 2 to 6 digits.")),
        load_default=lambda: dict(DEFAULT_EMERGENCY_NUMBERS),
    )

    @validates_schema(skip_on_field_errors=True)
    def _has_default_number(self, data: dict, **kwargs: Any) -> None:
        if "default" not in data.get("emergency_numbers", {}):
            raise ValidationError('Must give a "default" number for regions not listed.', "emergency_numbers")

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> SafetyRule:
        return SafetyRule(
            serious_keywords=tuple(data["serious_keywords"]),
            reporting_deadline_hours=data["reporting_deadline_hours"],
            emergency_numbers=dict(data["emergency_numbers"]),
            chase_every_minutes=data["chase_every_minutes"],
        )


def _section(schema: type[Schema]) -> fields.Nested:
    # A section left out of the file takes PRODUCT.md's defaults, built by the same schema.
    return fields.Nested(schema, load_default=lambda: schema().load({}))


class _ProtocolSchema(Schema):
    study_code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", error="Must be a registry id such as NCT04237987."),
    )
    title = _text(required=True)
    condition = _text(required=True)
    default_language = fields.String(required=True, validate=validate.OneOf(SUPPORTED_LANGUAGES))
    languages = fields.List(
        fields.String(validate=validate.OneOf(SUPPORTED_LANGUAGES)),
        required=True,
        validate=[validate.Length(min=1, error="Must list at least one."), _no_duplicates],
    )
    site_time_zone = fields.String(required=True, validate=_known_zone)
    arms = fields.List(
        fields.Nested(_ArmSchema),
        required=True,
        validate=validate.Length(min=1, error="Must list at least one."),
    )
    dose_window = _section(_DoseWindowSchema)
    reminders = _section(_ReminderSchema)
    vas = _section(_VasSchema)
    hold = _section(_HoldSchema)
    safety = _section(_SafetySchema)
    show_drug_name_in_messages = _StrictBool(load_default=False)
    enrollment = _section(_EnrollmentSchema)
    blinding = _section(_BlindingSchema)
    deviations = _section(_DeviationSchema)
    injection_sites = _section(_InjectionSitesSchema)

    @validates_schema(skip_on_field_errors=False)
    def _default_language_offered(self, data: dict, **kwargs: Any) -> None:
        default, offered = data.get("default_language"), data.get("languages")
        if default is not None and offered is not None and default not in offered:
            raise ValidationError(f"Must be one of languages ({', '.join(offered)}).", "default_language")

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _arm_codes_unique(self, data: dict, original: Any, **kwargs: Any) -> None:
        # Check the raw list so a duplicate is reported even when another arm field is wrong.
        raw_arms = original.get("arms") if isinstance(original, dict) else None
        if not isinstance(raw_arms, list):
            return
        first_seen: dict[str, int] = {}
        problems: dict[int, dict[str, list[str]]] = {}
        for index, raw in enumerate(raw_arms):
            code = raw.get("code") if isinstance(raw, dict) else None
            if not isinstance(code, str):
                continue
            if code in first_seen:
                reason = f"Duplicate arm code {code!r} (also arms.{first_seen[code]})."
                problems[index] = {"code": [reason]}
            else:
                first_seen[code] = index
        if problems:
            raise ValidationError({"arms": problems})

    @validates_schema(skip_on_field_errors=False)
    def _window_fits_interval(self, data: dict, **kwargs: Any) -> None:
        # Overlapping windows would make a reply ambiguous between two doses.
        # After field errors, marshmallow hands over partly-built dicts; only check what loaded.
        window, arms = data.get("dose_window"), data.get("arms")
        if not isinstance(window, DoseWindowRule) or not isinstance(arms, list):
            return
        open_minutes = (
            window.closes_day_offset * 1440
            + (window.closes_at.hour * 60 + window.closes_at.minute)
            - (window.opens_at.hour * 60 + window.opens_at.minute)
        )
        for arm in arms:
            if not isinstance(arm, Arm) or arm.regimen is None:
                continue
            if open_minutes > arm.regimen.interval_days * 1440:
                raise ValidationError(
                    f"The dose window must close before arm {arm.code!r}'s next dose day "
                    f"(every {arm.regimen.interval_days} day(s)).",
                    "dose_window",
                )

    @post_load
    def _build(self, data: dict, **kwargs: Any) -> Protocol:
        return Protocol(
            **{
                **data,
                "languages": tuple(data["languages"]),
                "arms": tuple(data["arms"]),
            }
        )


# --- loading ----------------------------------------------------------------------------


def _flatten(messages: Any, path: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Turn marshmallow's nested error dict into (dotted.path, reason) pairs."""
    if isinstance(messages, dict):
        pairs: list[tuple[str, str]] = []
        for key, value in messages.items():
            # Schema-level errors sit under "_schema"; they belong to the enclosing object.
            step = path if key == "_schema" else path + (str(key),)
            pairs.extend(_flatten(value, step))
        return pairs
    if isinstance(messages, (list, tuple)):
        return [pair for message in messages for pair in _flatten(message, path)]
    return [(".".join(path) or "(top level)", str(messages))]


def protocol_from_dict(data: dict, *, source: str = "<protocol>") -> Protocol:
    """Validate a protocol already parsed into a dict; ProtocolInvalid lists every problem."""
    try:
        return _ProtocolSchema().load(data)
    except ValidationError as error:
        problems = [f"{source}: {where}: {reason}" for where, reason in _flatten(error.messages)]
        raise ProtocolInvalid(problems) from None


_TOML_POSITION = re.compile(r"\s*\(at (line \d+, column \d+|end of document)\)$")


def load_protocol_file(path: str | Path) -> Protocol:
    """Read and validate a TOML protocol file; ProtocolInvalid for unreadable, malformed or invalid files."""
    source = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ProtocolInvalid([f"{source}: (file): Cannot read: {error.strerror or error}."]) from None
    except UnicodeDecodeError:
        raise ProtocolInvalid([f"{source}: (file): Not UTF-8 text."]) from None
    except tomllib.TOMLDecodeError as error:
        # Python 3.11's TOMLDecodeError carries the position only inside its message.
        message = str(error)
        match = _TOML_POSITION.search(message)
        where = match.group(1) if match else "(file)"
        reason = message[: match.start()] if match else message
        raise ProtocolInvalid([f"{source}: {where}: TOML syntax error: {reason}."]) from None
    return protocol_from_dict(data, source=source)
