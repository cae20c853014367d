"""Tables owned by the web layer: staff accounts, API tokens, sign-in locks and the append-only audit trail."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from schedules.dbtypes import UTCDateTime, utcnow


class Role(str, enum.Enum):
    """Staff roles; the assessor is masked to arm and dosing."""

    ADMIN = "admin"
    INVESTIGATOR = "investigator"
    NURSE = "nurse"
    ASSESSOR = "assessor"


class Staff(SQLModel, table=True):
    """A staff account bound to one site (admins may have none: they see all sites)."""

    __audited__ = True
    __audit_redact__ = {"password_hash", "phone_ciphertext"}
    id: Optional[int] = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True, max_length=254)
    password_hash: str
    role: str = Field(max_length=16)
    site_id: Optional[int] = Field(default=None, foreign_key="site.id")
    language: Optional[str] = Field(default=None, max_length=8)  # the nurse pages' language; None: the site's
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StaffToken(SQLModel, table=True):
    """A staff API token; only its SHA-256 is stored."""

    id: Optional[int] = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime, nullable=True)
    label: str = ""


class SignInLock(SQLModel, table=True):
    """Wrong staff passwords of one email (an account's or not), from any address, and the lock they cause.

    Keyed by the SHA-256 of the normalised email, so an unknown email is counted and locked just like a
    real one and a lock tells nobody that an account exists. Operational state, not clinical data: not audited."""

    __tablename__ = "sign_in_lock"
    email_digest: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    window_started_at: datetime = Field(sa_type=UTCDateTime)
    locked_until: Optional[datetime] = Field(default=None, sa_type=UTCDateTime, nullable=True)


class AuditEntry(SQLModel, table=True):
    """One field-level change of clinical data; the database refuses UPDATE and DELETE here, and each row's
    hash covers its content and its predecessor's hash (backend/audit_chain.py), so a rewrite shows."""

    __tablename__ = "audit_entry"
    # A row's history, and a participant's trail, are found by (entity, entity_id) (migration 0010).
    __table_args__ = (Index("ix_audit_entry_entity_entity_id", "entity", "entity_id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=80)
    source: str = Field(max_length=16)
    action: str = Field(max_length=8)  # create | update | delete; backup (audit.record_operator_action)
    entity: str = Field(max_length=40)
    entity_id: str = Field(max_length=40)
    field: str = Field(default="", max_length=60)
    old_value: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    new_value: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The hash chain: the row before this one (none for the first), its hash, and SHA-256 of this row's content.
    prev_id: Optional[int] = None
    prev_hash: Optional[str] = Field(default=None, max_length=64)
    hash: str = Field(max_length=64)


class AuditChainHead(SQLModel, table=True):
    """The chain's last row and its hash, locked by every append: appends queue here, and a cut-off tail shows.

    One row (id 1); not clinical data, not audited."""

    __tablename__ = "audit_chain_head"
    id: int = Field(default=1, primary_key=True)
    last_id: Optional[int] = None
    last_hash: Optional[str] = Field(default=None, max_length=64)


class JobRun(SQLModel, table=True):
    """The latest outcome of one scheduled job: how operators and nurses tell that automatic checks stopped.

    Operational state, not clinical data: one row per job, overwritten, not audited."""

    __tablename__ = "job_run"
    name: str = Field(primary_key=True, max_length=64)
    last_finished_at: datetime = Field(sa_type=UTCDateTime)
    last_succeeded_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_failed_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_error: str = Field(default="", max_length=200)
    last_summary: str = Field(default="", max_length=300)
    last_seconds: float = 0.0


class KeyCheck(SQLModel, table=True):
    """The phone vault's encryption and lookup hash of a known value: do the configured keys open this database?

    One row, written with the keys the data was written with; not clinical data, not audited."""

    __tablename__ = "key_check"
    id: int = Field(default=1, primary_key=True)
    ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    lookup_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
