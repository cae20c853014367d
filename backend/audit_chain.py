"""The audit trail's hash chain: each row's SHA-256 over its content and its predecessor's hash, appended in turn."""

from __future__ import annotations

from datetime import datetime, timezone
from hashlib import sha256
from json.encoder import encode_basestring_ascii as quote
from typing import Mapping, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend.models import AuditChainHead, AuditEntry
from schedules.bulk import bulk_insert

# Every column but the hash itself, in the canonical text under these names.
CONTENT = (
    "id",
    "at",
    "actor",
    "source",
    "action",
    "entity",
    "entity_id",
    "field",
    "old_value",
    "new_value",
    "reason",
    "prev_id",
    "prev_hash",
)
HEAD_ID = 1

_TABLE = AuditEntry.__table__
_HEAD = AuditChainHead.__table__
# The canonical text is JSON with sorted keys, no spaces, ASCII only (\u escapes) -- exactly what
# json.dumps(content, sort_keys=True, separators=(",", ":")) gives -- built here piece by piece, so the
# columns a whole batch shares are rendered once (the tests hold it to json.dumps).
_KEYS = tuple(sorted(CONTENT))
_TEMPLATE = "{" + ",".join(f'"{key}":%s' for key in _KEYS) + "}"


def utc_text(at: datetime) -> str:
    """An instant as the chain writes it: UTC, microseconds, Z (what both databases give back exactly)."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(value) -> str:
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if isinstance(value, datetime):
        return quote(utc_text(value))
    return quote(value)


def canonical(row: Mapping, rendered: Mapping[str, str] | None = None) -> str:
    """A row's content as the hash covers it: every column but `hash`, `at` as utc_text. `rendered` holds
    the JSON text of columns already rendered (those a batch shares)."""
    rendered = rendered or {}
    return _TEMPLATE % tuple(rendered[key] if key in rendered else _json(row[key]) for key in _KEYS)


def row_hash(row: Mapping, rendered: Mapping[str, str] | None = None) -> str:
    """SHA-256 (hex) of the row's canonical content."""
    return sha256(canonical(row, rendered).encode("ascii")).hexdigest()


def _lock_head(session: Session) -> tuple[int | None, str | None, int]:
    """The chain's last row and hash, and the highest id in the table, with the head locked until commit.

    PostgreSQL: SELECT ... FOR UPDATE, so appends from every process queue here, one transaction at a time;
    SQLite: the transaction's BEGIN IMMEDIATE already holds the database's one write lock."""
    connection = session.connection()
    highest = select(func.max(_TABLE.c.id)).scalar_subquery()
    query = select(_HEAD.c.last_id, _HEAD.c.last_hash, highest).where(_HEAD.c.id == HEAD_ID)
    found = connection.execute(query.with_for_update(of=_HEAD)).first()
    if found is None:
        # No head (a schema built without the migration, or the row deleted): start from the table's last row.
        last = connection.execute(select(_TABLE.c.id, _TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)).first()
        bulk_insert(
            session,
            _HEAD,
            [{"id": HEAD_ID, "last_id": last and last.id, "last_hash": last and last.hash}],
            skip_conflicts_on="id",
        )
        found = connection.execute(query.with_for_update(of=_HEAD)).first()
    return found[0], found[1], found[2] or 0


def append(session: Session, batches: Sequence[tuple[list[dict], dict]]) -> None:
    """Write audit rows at the end of the chain, in order: each batch is (rows, the columns its rows share).

    Ids are given here, after the chain head's last one, so id order is chain order whatever commits first."""
    last_id, last_hash, highest = _lock_head(session)
    next_id = max(last_id or 0, highest) + 1
    for rows, shared in batches:
        rendered = {key: _json(value) for key, value in shared.items()}
        for row in rows:
            row["id"], row["prev_id"], row["prev_hash"] = next_id, last_id, last_hash
            last_hash = row["hash"] = row_hash(row, rendered)
            last_id, next_id = next_id, next_id + 1
        bulk_insert(session, _TABLE, rows, shared=shared)
    session.connection().execute(
        update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(last_id=last_id, last_hash=last_hash)
    )
