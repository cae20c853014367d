"""What an adverse event's signatures sign: its content per version, the hash of that content, its versions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlmodel import Session, select

from schedules.models import AdverseEvent, AdverseEventSignature, AdverseEventVersion

# Who reviewed and signed is kept beside the content, not in it: a signature does not sign itself.
UNSIGNED_FIELDS = frozenset({"reviewed_by", "reviewed_at", "signed_off_by", "signed_off_at"})


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def signed_content(ae: AdverseEvent) -> dict[str, object]:
    """The content a signature covers: every column of the adverse event but who reviewed and signed it.

    A column added later (SAE reporting fields) joins the content by itself; empty values are left out, so a
    new column that is still empty changes no hash and earlier signatures stay intact. The same holds for
    `aware_at` while it is its default, the report's own time: a version signed before the column existed
    keeps its hash, and one signed later still covers the value (a different time is in the content)."""
    content = {}
    for column in AdverseEvent.__table__.columns:
        if column.key in UNSIGNED_FIELDS:
            continue
        value = getattr(ae, column.key)
        if value is None or value == "":
            continue
        if column.key == "aware_at" and value == ae.reported_at:
            continue
        content[column.key] = _plain(value)
    return content


def canonical(content: dict[str, object]) -> str:
    """The one text of a content: sorted keys, no spaces, UTF-8 as it is."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(content: dict[str, object]) -> str:
    """SHA-256 of the canonical text of a content."""
    return hashlib.sha256(canonical(content).encode()).hexdigest()


@dataclass(frozen=True)
class SignatureView:
    """A signature and whether what it signed is still what the record holds (False: changed after signing)."""

    signature: AdverseEventSignature
    intact: bool


@dataclass(frozen=True)
class VersionView:
    """One version of an adverse event: its content, what changed since the version before, its signatures."""

    adverse_event_id: int
    version: int
    current: bool
    content: dict[str, object]
    content_hash: str
    frozen_at: datetime | None  # when first signed; None while the version is still open
    signatures: list[SignatureView] = field(default_factory=list)
    changes: list[tuple[str, object, object]] = field(default_factory=list)  # (field, before, after)

    @property
    def signed(self) -> bool:
        """True once anyone signed this version: it is frozen and a change opens the next one."""
        return bool(self.signatures)


def _changes(before: dict[str, object], after: dict[str, object]) -> list[tuple[str, object, object]]:
    ignored = {"version"}
    keys = sorted((set(before) | set(after)) - ignored)
    return [(key, before.get(key), after.get(key)) for key in keys if before.get(key) != after.get(key)]


def histories(session: Session, aes: list[AdverseEvent]) -> dict[int, list[VersionView]]:
    """Every version of each adverse event, oldest first; the current one shows the record as it is now."""
    ids = [ae.id for ae in aes]
    if not ids:
        return {}
    frozen: dict[tuple[int, int], AdverseEventVersion] = {
        (row.adverse_event_id, row.version): row
        for row in session.exec(select(AdverseEventVersion).where(AdverseEventVersion.adverse_event_id.in_(ids)))
    }
    signatures: dict[tuple[int, int], list[AdverseEventSignature]] = {}
    for row in session.exec(
        select(AdverseEventSignature)
        .where(AdverseEventSignature.adverse_event_id.in_(ids))
        .order_by(AdverseEventSignature.signed_at, AdverseEventSignature.id)
    ):
        signatures.setdefault((row.adverse_event_id, row.version), []).append(row)
    result = {}
    for ae in aes:
        views, before = [], None
        for number in range(1, ae.version + 1):
            snapshot = frozen.get((ae.id, number))
            current = number == ae.version
            if current:
                content = signed_content(ae)
                digest = content_hash(content)
            elif snapshot is not None:
                content = json.loads(snapshot.content)
                # Recomputed, not read: a snapshot edited behind the triggers' back shows as changed.
                digest = hashlib.sha256(snapshot.content.encode()).hexdigest()
            else:
                continue  # an earlier version is always signed, so frozen; nothing to show otherwise
            views.append(
                VersionView(
                    adverse_event_id=ae.id,
                    version=number,
                    current=current,
                    content=content,
                    content_hash=digest,
                    frozen_at=snapshot.frozen_at if snapshot else None,
                    signatures=[
                        SignatureView(sig, sig.content_hash == digest) for sig in signatures.get((ae.id, number), [])
                    ],
                    changes=_changes(before, content) if before is not None else [],
                )
            )
            before = content
        result[ae.id] = views
    return result


def history(session: Session, ae: AdverseEvent) -> list[VersionView]:
    """Every version of one adverse event, oldest first."""
    return histories(session, [ae])[ae.id]


def current_version_signed(session: Session, ae: AdverseEvent) -> bool:
    """True when someone signed the version being worked on (so it is frozen)."""
    found = session.exec(
        select(AdverseEventSignature.id).where(
            AdverseEventSignature.adverse_event_id == ae.id, AdverseEventSignature.version == ae.version
        )
    ).first()
    return found is not None
