"""Tables of the SMS channel: the outbox every message passes through, and raw inbound messages."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from schedules.dbtypes import UTCDateTime, utcnow


class Purpose(str, enum.Enum):
    """Why a message is sent; part of its dedupe key."""

    DOSE_REMINDER = "dose_reminder"
    DOSE_NUDGE = "dose_nudge"
    VAS_PROMPT = "vas_prompt"
    DOSE_AND_VAS = "dose_and_vas"  # a dose reminder that also asks the VAS prompt due in the same hour
    STUDY_CLOSING = "study_closing"  # the one message on the follow-up end date
    REPLY = "reply"
    STAFF_ALERT = "staff_alert"
    DIGEST = "digest"
    ACTIVATION = "activation"


# Messages that ask for a VAS score: a bare number soon after one of them may answer it.
VAS_ASKING_PURPOSES = (Purpose.VAS_PROMPT.value, Purpose.DOSE_AND_VAS.value)


class OutboxStatus(str, enum.Enum):
    """Outbox life cycle. Provider statuses only ever move forward (see STATUS_RANK)."""

    PLANNED = "planned"
    SENDING = "sending"
    SENT = "sent"  # handed to the provider
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# Rank of provider-reported statuses: a callback may only raise the rank, never lower it.
# Every status Twilio documents for an outbound message (scheduled and canceled are its scheduled sends;
# partially_delivered is a multi-part message of which some parts arrived).
STATUS_RANK = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "canceled": 4,
    "undelivered": 4,
    "failed": 4,
    "partially_delivered": 5,
    "delivered": 5,
    "read": 6,
}
FINAL_STATUSES = {OutboxStatus.EXPIRED.value, OutboxStatus.CANCELLED.value, OutboxStatus.FAILED.value}
PENDING_STATUSES = {OutboxStatus.PLANNED.value}


class OutboundMessage(SQLModel, table=True):
    """One outbound SMS, a row before it leaves; dedupe_key forbids a second copy."""

    # Audited only where a person would ask "why did this not go out?"; routine sends are not.
    __audited__ = True
    __audit_redact__ = {"recipient_ciphertext", "body"}
    # Not in a participant's audit trail: delivery bookkeeping (a reminder cancelled by a report or a hold),
    # shown in the message log of the nurse page; what changed their care or consent is in the rows that caused it.
    __audit_participant__ = None

    @staticmethod
    def __audit_filter__(action: str, field: str, old, new) -> bool:
        return action == "update" and field == "status" and new in ("expired", "cancelled", "failed")

    # ix_outbox_ref: the missed-dose job asks which reminders of the doses it flags arrived (migration 0005).
    __table_args__ = (
        Index("ix_outbox_status_due", "status", "next_attempt_at"),
        Index("ix_outbox_ref", "ref_type", "ref_id"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    participant_id: Optional[int] = Field(default=None, foreign_key="participant.id", index=True)
    site_id: Optional[int] = Field(default=None, foreign_key="site.id")
    recipient_ciphertext: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    purpose: str = Field(max_length=16)
    ref_type: str = Field(default="", max_length=24)
    ref_id: Optional[int] = None
    dedupe_key: str = Field(unique=True, max_length=120)
    language: str = Field(default="zh-CN", max_length=8)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    priority: int = 5  # lower goes first: staff safety alerts 0, replies 1, routine 5
    due_at: datetime = Field(sa_type=UTCDateTime)
    not_after: Optional[datetime] = Field(default=None, sa_type=UTCDateTime, nullable=True)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=OutboxStatus.PLANNED.value, max_length=16)
    provider_status: str = Field(default="", max_length=24)  # "partially_delivered" (migration 0007)
    provider_sid: Optional[str] = Field(default=None, unique=True, max_length=64)
    attempts: int = 0
    recoveries: int = 0  # times a crash left it in 'sending' and it was put back (at most once)
    last_error_code: Optional[int] = None
    last_error: str = ""
    claimed_by: str = Field(default="", max_length=64)
    claimed_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime, nullable=True)
    sent_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime, nullable=True)
    status_updated_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime, nullable=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InboundMessage(SQLModel, table=True):
    """A raw inbound SMS, stored before anything else happens; MessageSid makes replays harmless."""

    id: Optional[int] = Field(default=None, primary_key=True)
    message_sid: str = Field(unique=True, max_length=64)
    from_hash: str = Field(index=True, max_length=64)
    participant_id: Optional[int] = Field(default=None, foreign_key="participant.id", index=True)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    params_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    received_at: datetime = Field(sa_type=UTCDateTime)
    intent: str = Field(default="", max_length=24)
    outcome: str = ""
    needs_review: bool = False
    reply_body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    processed_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime, nullable=True)


class StatusCallback(SQLModel, table=True):
    """Every delivery-status callback as received, in arrival order, for the message log."""

    id: Optional[int] = Field(default=None, primary_key=True)
    message_sid: str = Field(index=True, max_length=64)
    status: str = Field(max_length=24)
    error_code: Optional[int] = None
    received_at: datetime = Field(sa_type=UTCDateTime)
    applied: bool = False
