"""Tables of the participant app: activation codes, device sessions with their tokens, idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from schedules.dbtypes import UTCDateTime


def _utc(**kw):
    return Field(sa_type=UTCDateTime, **kw)


class ActivationCode(SQLModel, table=True):
    """A one-time code that lets the app sign a participant in; found by its selector, checked by its hash."""

    __tablename__ = "activation_code"
    __audited__ = True
    __audit_participant__ = "participant_id"
    __audit_redact__ = {"code_hash"}

    @staticmethod
    def __audit_filter__(action: str, field: str, old, new) -> bool:
        # Who created, used or withdrew a code matters; each failed guess is counted, not audited.
        return action != "update" or field in ("used_at", "revoked_at", "revoked_reason")

    id: Optional[int] = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    selector: str = Field(unique=True, max_length=8)
    code_hash: str = Field(max_length=64)
    created_at: datetime = _utc()
    created_by: str = Field(default="", max_length=80)
    expires_at: datetime = _utc()
    used_at: Optional[datetime] = _utc(default=None, nullable=True)
    failed_attempts: int = 0
    revoked_at: Optional[datetime] = _utc(default=None, nullable=True)
    revoked_reason: str = Field(default="", max_length=120)
    sent_by_sms: bool = False


class DeviceSession(SQLModel, table=True):
    """One signed-in device: the family its access and refresh tokens belong to, revoked as a whole."""

    __tablename__ = "device_session"
    __audited__ = True
    __audit_participant__ = "participant_id"

    @staticmethod
    def __audit_filter__(action: str, field: str, old, new) -> bool:
        # Sign-in and sign-out are audited; the refresh heartbeat (last_used_at) is not.
        return action != "update" or field in ("revoked_at", "revoked_reason")

    id: Optional[int] = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    activation_code_id: Optional[int] = Field(default=None, foreign_key="activation_code.id")
    device_name: str = Field(default="", max_length=80)
    created_at: datetime = _utc()
    last_used_at: datetime = _utc()
    revoked_at: Optional[datetime] = _utc(default=None, nullable=True)
    revoked_reason: str = Field(default="", max_length=120)


class AppToken(SQLModel, table=True):
    """An access or refresh token of a device session; only its SHA-256 is stored."""

    __tablename__ = "app_token"
    id: Optional[int] = Field(default=None, primary_key=True)
    device_session_id: int = Field(foreign_key="device_session.id", index=True)
    kind: str = Field(max_length=8)  # access | refresh
    token_hash: str = Field(unique=True, max_length=64)
    issued_at: datetime = _utc()
    expires_at: datetime = _utc(index=True)
    # A refresh token is good for one rotation; presenting it again means it was copied.
    rotated_at: Optional[datetime] = _utc(default=None, nullable=True)


class IdempotencyRecord(SQLModel, table=True):
    """The first successful response to a POST with an Idempotency-Key, replayed to retries (body encrypted)."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    scope: str = Field(max_length=80)  # the principal: staff:3, participant:7, anonymous
    key: str = Field(max_length=255)
    fingerprint: str = Field(max_length=64)  # SHA-256 of method, path, query and body
    method: str = Field(max_length=8)
    path: str = Field(max_length=300)
    status_code: Optional[int] = None  # None while the first request is still running
    content_type: str = Field(default="", max_length=100)
    location: str = Field(default="", max_length=300)
    body_ciphertext: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _utc()
    expires_at: datetime = _utc(index=True)
