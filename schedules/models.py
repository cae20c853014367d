"""Tables of the trial domain: studies, sites, participants, doses, alerts, VAS and adverse events."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Optional

from sqlalchemy import Column, ForeignKeyConstraint, Index, Numeric, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from schedules.dbtypes import UTCDateTime, utcnow


def _utc(**kw):
    return Field(sa_type=UTCDateTime, **kw)


# Alert priorities: high goes to the top of the nurse queue (two missed in a row, suspected serious).
HIGH, NORMAL = "high", "normal"


class Study(SQLModel, table=True):
    """A trial and the protocol it was loaded from (kept as JSON so history is reproducible)."""

    __audited__ = True
    id: Optional[int] = Field(default=None, primary_key=True)
    code: str = Field(index=True, unique=True, max_length=40)
    title: str
    protocol_json: str = Field(sa_column=Column(Text, nullable=False))
    source_file: str = ""
    loaded_at: datetime = _utc(default_factory=utcnow)


class Site(SQLModel, table=True):
    """A trial site: its time zone, its phone for participants and its on-call numbers."""

    __audited__ = True
    __audit_redact__ = {"on_call_ciphertext"}
    id: Optional[int] = Field(default=None, primary_key=True)
    code: str = Field(index=True, unique=True, max_length=40)
    name: str
    time_zone: str
    phone: str = ""  # the site's public number, quoted in help texts
    on_call_ciphertext: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _utc(default_factory=utcnow)


class ParticipantStatus(str, enum.Enum):
    """Where a participant stands in the trial."""

    ACTIVE = "active"
    ON_HOLD = "on_hold"
    WITHDRAWN = "withdrawn"


class Participant(SQLModel, table=True):
    """An enrolled participant; phone stored encrypted and found by keyed hash."""

    __audited__ = True
    __audit_redact__ = {"phone_ciphertext", "phone_hash", "calendar_token_hash"}
    __audit_participant__ = "id"  # the participant's trail (backend/participant_trail.py)
    __table_args__ = (UniqueConstraint("study_id", "study_code", name="uq_participant_study_code"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    study_code: str = Field(max_length=40)
    arm: str = Field(max_length=40)
    phone_ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    phone_hash: str = Field(index=True, max_length=64)
    phone_last2: str = Field(default="", max_length=2)
    time_zone: str
    language: str = Field(default="zh-CN", max_length=8)
    reminder_time: str = Field(max_length=5)  # HH:MM local wall time
    first_dose_date: date
    treatment_end_date: Optional[date] = None  # exclusive; None for arms without a regimen
    follow_up_end_date: date
    sms_consent: bool = True
    status: str = Field(default=ParticipantStatus.ACTIVE.value, index=True, max_length=16)
    hold_reason: str = ""
    held_from: Optional[date] = None
    withdrawn_at: Optional[datetime] = _utc(default=None, nullable=True)
    opted_out: bool = False
    opted_out_at: Optional[datetime] = _utc(default=None, nullable=True)
    calendar_token_hash: str = Field(default="", max_length=64, index=True)
    enrolled_at: datetime = _utc(default_factory=utcnow)


class DoseState(str, enum.Enum):
    """Dose life cycle: scheduled, then exactly one outcome."""

    SCHEDULED = "scheduled"
    TAKEN = "taken"
    TAKEN_LATE = "taken_late"
    SKIPPED = "skipped"
    MISSED = "missed"
    HELD = "held"
    CANCELLED = "cancelled"


REPORTED_STATES = {DoseState.TAKEN.value, DoseState.TAKEN_LATE.value, DoseState.SKIPPED.value}
EXCLUDED_STATES = {DoseState.HELD.value, DoseState.CANCELLED.value}


class InjectionSite(str, enum.Enum):
    """Where the participant injected."""

    ABDOMEN_LEFT = "abdomen_left"
    ABDOMEN_RIGHT = "abdomen_right"
    THIGH_LEFT = "thigh_left"
    THIGH_RIGHT = "thigh_right"
    ARM_LEFT = "arm_left"
    ARM_RIGHT = "arm_right"


class Dose(SQLModel, table=True):
    """One planned injection with its reminder time and report window, all in UTC."""

    __audited__ = True
    __audit_participant__ = "participant_id"
    __table_args__ = (
        UniqueConstraint("participant_id", "seq", name="uq_dose_participant_seq"),
        # The missed-dose job reads only scheduled doses by window close: cost follows what closed.
        Index("ix_dose_state_window_closes", "state", "window_closes_at"),
        # A participant's doses by date: the missed-dose job steps back to the previous dose along it.
        Index("ix_dose_participant_local_date", "participant_id", "local_date"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id")
    seq: int
    local_date: date
    due_at: datetime = _utc()
    window_opens_at: datetime = _utc()
    window_closes_at: datetime = _utc()
    state: str = Field(default=DoseState.SCHEDULED.value, max_length=16)
    reported_at: Optional[datetime] = _utc(default=None, nullable=True)
    taken_at: Optional[datetime] = _utc(default=None, nullable=True)
    injection_site: Optional[str] = Field(default=None, max_length=16)
    source: Optional[str] = Field(default=None, max_length=16)
    note: str = ""
    updated_at: datetime = _utc(default_factory=utcnow)


class DoseEvent(SQLModel, table=True):
    """A recorded transition of a dose: from, to, by whom, through which channel, when."""

    id: Optional[int] = Field(default=None, primary_key=True)
    dose_id: int = Field(foreign_key="dose.id", index=True)
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    source: str = Field(max_length=16)
    actor: str = Field(max_length=80)
    at: datetime = _utc()
    note: str = ""


class AlertKind(str, enum.Enum):
    """What needs a human."""

    MISSED_DOSE = "missed_dose"
    SERIOUS_AE = "serious_ae"
    ADVERSE_EVENT = "adverse_event"
    UNREADABLE_REPLY = "unreadable_reply"
    CONTACT_PROBLEM = "contact_problem"
    OPTED_OUT = "opted_out"
    AUDIT_CHAIN_BROKEN = "audit_chain_broken"  # for admins: no participant, no site


class AlertState(str, enum.Enum):
    """An alert's life: open, acknowledged, resolved (with a note)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(SQLModel, table=True):
    """One item of the nurse queue; dedupe_key makes a second copy of the same alert impossible."""

    __audited__ = True
    __audit_participant__ = "participant_id"
    __table_args__ = (Index("ix_alert_site_state", "site_id", "state"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    participant_id: Optional[int] = Field(default=None, foreign_key="participant.id", index=True)
    # None: an alert about the whole system (a broken audit chain), seen by admins only.
    site_id: Optional[int] = Field(default=None, foreign_key="site.id")
    kind: str = Field(max_length=24)
    priority: str = Field(default="normal", max_length=8)  # normal | high
    state: str = Field(default=AlertState.OPEN.value, max_length=16)
    ref_type: str = Field(default="", max_length=24)
    ref_id: Optional[int] = None
    dedupe_key: str = Field(unique=True, max_length=120)
    summary: str = ""
    annotation: str = ""
    opened_at: datetime = _utc()
    deadline_at: Optional[datetime] = _utc(default=None, nullable=True)
    acknowledged_at: Optional[datetime] = _utc(default=None, nullable=True)
    acknowledged_by: str = ""
    resolved_at: Optional[datetime] = _utc(default=None, nullable=True)
    resolved_by: str = ""
    resolution_note: str = ""


class VasScore(SQLModel, table=True):
    """A patient-global VAS answer; withdrawals and corrections are new rows, never overwrites."""

    __audited__ = True
    __audit_participant__ = "participant_id"
    id: Optional[int] = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    value: Decimal = Field(sa_column=Column(Numeric(3, 1), nullable=False))
    recorded_at: datetime = _utc()
    source: str = Field(max_length=16)
    inbound_id: Optional[int] = None
    status: str = Field(default="valid", max_length=16)  # valid | withdrawn | corrected
    replaces_id: Optional[int] = Field(default=None, foreign_key="vasscore.id")
    withdrawn_at: Optional[datetime] = _utc(default=None, nullable=True)
    reason: str = ""
    # How it was measured: a number typed (SMS, a nurse, a client sending no mode) or a mark on the app line.
    # The two are different instruments; analysis must never pool them unknowingly.
    mode: str = Field(default="sms_numeric", max_length=16)  # sms_numeric | vas_line


class AdverseEvent(SQLModel, table=True):
    """A participant's adverse-event report and, later, its investigator review."""

    __audited__ = True
    __audit_participant__ = "participant_id"
    id: Optional[int] = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    reported_at: datetime = _utc()
    source: str = Field(max_length=16)
    raw_text: str = ""
    term: str = Field(default="other", max_length=40)
    other_text: str = ""
    onset_date: Optional[date] = None
    severity: Optional[str] = Field(default=None, max_length=16)
    ongoing: Optional[bool] = None
    went_to_hospital: Optional[bool] = None
    suspected_serious: bool = False
    matched_keywords: str = ""
    ctcae_grade: Optional[int] = None
    serious: Optional[bool] = None
    serious_criteria: str = ""
    relatedness: Optional[str] = Field(default=None, max_length=24)
    outcome: Optional[str] = Field(default=None, max_length=32)
    reviewed_by: str = ""
    reviewed_at: Optional[datetime] = _utc(default=None, nullable=True)
    stop_date: Optional[date] = None
    narrative: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The SAE record (issue 16): the CTCAE v5 term's MedDRA code ("" until a nurse codes it; schedules.ctcae),
    # what was done with the study drug (vocabulary.ACTIONS_TAKEN), and when the site became aware, which
    # starts the reporting clock (reported_at until someone says otherwise; set on every report and by migration
    # 0013 for the older ones, so never None in practice).
    ctcae_term: str = Field(default="", max_length=16)
    action_taken: Optional[str] = Field(default=None, max_length=24)
    aware_at: Optional[datetime] = _utc(default=None, nullable=True)
    # The version being worked on: a signed version is frozen, so a later change opens the next one.
    version: int = 1
    # The latest signature of the current version (empty again once a follow-up opens a new version).
    signed_off_by: str = ""
    signed_off_at: Optional[datetime] = _utc(default=None, nullable=True)
    # An injection-site reaction's site: the one of the participant's latest injection before the report.
    injection_site: Optional[str] = Field(default=None, max_length=16)


class AdverseEventVersion(SQLModel, table=True):
    """An adverse event's content as it was first signed, frozen: the database refuses UPDATE and DELETE here."""

    __tablename__ = "ae_version"
    __audited__ = True
    __table_args__ = (UniqueConstraint("adverse_event_id", "version", name="uq_ae_version"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    adverse_event_id: int = Field(foreign_key="adverseevent.id", index=True)
    version: int
    content: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON (schedules.ae_versions)
    content_hash: str = Field(max_length=64)  # SHA-256 of `content`
    frozen_at: datetime = _utc()


class AdverseEventSignature(SQLModel, table=True):
    """An electronic signature of one version of an adverse event: who, when, meaning, and the hash of what was signed.

    Append-only like the audit trail (the database refuses UPDATE and DELETE); the signer's password was entered
    again to make it."""

    __tablename__ = "ae_signature"
    __audited__ = True
    __table_args__ = (
        UniqueConstraint("adverse_event_id", "version", "signer_id", "meaning", name="uq_ae_signature"),
        # Every signature points at the frozen content it signed.
        ForeignKeyConstraint(
            ["adverse_event_id", "version"],
            ["ae_version.adverse_event_id", "ae_version.version"],
            name="fk_ae_signature_version",
        ),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    adverse_event_id: int = Field(index=True)
    version: int
    signer_id: int = Field(foreign_key="staff.id")
    signer_email: str = Field(max_length=254)  # as the account read when signing: the name printed with it
    signer_role: str = Field(max_length=16)
    meaning: str = Field(max_length=16)  # schedules.vocabulary.SIGNATURE_MEANINGS
    signed_at: datetime = _utc()
    content_hash: str = Field(max_length=64)


class DeviationKind(str, enum.Enum):
    """What departed from the protocol (schedules/deviations.py says how each is found)."""

    MISSED_DOSE = "missed_dose"  # no report by the window's close, or "not taken"
    LATE_DOSE = "late_dose"  # taken after the window closed
    HOLD = "hold"  # a nurse paused dosing
    OUT_OF_WINDOW_CHANGE = "out_of_window_change"  # staff changed a dose's record after its window closed


class DeviationClass(str, enum.Enum):
    """How much a deviation matters, by the protocol's [deviations] rules."""

    MINOR = "minor"
    MAJOR = "major"


class DeviationReview(str, enum.Enum):
    """A nurse's review of a deviation: still open, reviewed (with a comment), or judged not a deviation."""

    OPEN = "open"
    REVIEWED = "reviewed"
    NOT_A_DEVIATION = "not_a_deviation"


class Deviation(SQLModel, table=True):
    """One protocol deviation of the log; dedupe_key makes detection idempotent (a second copy cannot be inserted)."""

    __tablename__ = "deviation"
    __audited__ = True
    __audit_participant__ = "participant_id"
    __table_args__ = (
        Index("ix_deviation_site_review", "site_id", "review_state"),
        Index("ix_deviation_participant_date", "participant_id", "local_date"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id")
    site_id: int = Field(foreign_key="site.id")  # the participant's site, for scoping without a join
    dose_id: Optional[int] = Field(default=None, foreign_key="dose.id", index=True)
    kind: str = Field(max_length=24)
    classification: str = Field(max_length=8)
    rule: str = Field(default="", max_length=200)  # which protocol rule classified it, in words
    detail: str = ""  # facts found later, e.g. "later reported taken late"
    local_date: date  # the participant's local day of the dose
    detected_at: datetime = _utc()
    dedupe_key: str = Field(unique=True, max_length=80)
    review_state: str = Field(default=DeviationReview.OPEN.value, max_length=16)
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    reviewed_by: str = ""
    reviewed_at: Optional[datetime] = _utc(default=None, nullable=True)
