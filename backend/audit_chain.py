"""The audit trail's hash chain: each row's SHA-256 over its content and its predecessor's hash, appended in turn."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from hashlib import sha256
from json.encoder import encode_basestring_ascii as quote
from typing import Mapping, Sequence

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backend.models import AuditChainHead, AuditEntry
from schedules.bulk import FEW_ROWS, bulk_insert, bulk_insert_then

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
HEAD_REMADE = ("restart", "audit_chain_head")  # (action, entity) of the row an append writes after remaking the head

_TABLE = AuditEntry.__table__
_HEAD = AuditChainHead.__table__
# The canonical text is JSON with sorted keys, no spaces, ASCII only (\u escapes) -- exactly what
# json.dumps(content, sort_keys=True, separators=(",", ":")) gives -- built here piece by piece, so the
# columns a whole batch shares are rendered once (the tests hold it to json.dumps).
_KEYS = tuple(sorted(CONTENT))
_TEMPLATE = "{" + ",".join(f'"{key}":%s' for key in _KEYS) + "}"  # _chain fills it in _KEYS order


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


# The columns whose text depends on the row before (id follows it): cut out of the canonical text, so the text
# can be finished where the chain's last row is known. NUL never occurs in the canonical text (JSON escapes it).
_CHAINED = ("id", "prev_hash", "prev_id")  # in _KEYS order
_CUT = "\0"
assert tuple(key for key in _KEYS if key in _CHAINED) == _CHAINED


def _pieces(rows: list[dict], shared: Mapping) -> list[list[str]]:
    """Each row's canonical text but its chained columns: the four pieces around id, prev_hash and prev_id.
    canonical() unrolled for the audit listener's rows (text or None in every column of its own): half the time,
    and thousands of rows pass here per planning pass. The chain check after every test holds the two to the
    same text."""
    r = {key: _json(shared[key]) for key in ("actor", "at", "reason", "source")}
    actor, at, reason, source = r["actor"], r["at"], r["reason"], r["source"]
    pieces = []
    for row in rows:
        old, new = row["old_value"], row["new_value"]
        text = _TEMPLATE % (
            quote(row["action"]),
            actor,
            at,
            quote(row["entity"]),
            quote(row["entity_id"]),
            quote(row["field"]),
            _CUT,
            "null" if new is None else quote(new),
            "null" if old is None else quote(old),
            _CUT,
            _CUT,
            reason,
            source,
        )
        pieces.append(text.split(_CUT))
    return pieces


def _chain(rows: list[dict], shared: Mapping, last_id: int | None, last_hash: str | None, next_id: int):
    """Number and hash the rows of one batch after (last_id, last_hash); the new last."""
    for row, (before_id, before_prev_hash, before_prev_id, rest) in zip(rows, _pieces(rows, shared)):
        text = "".join(
            (
                before_id,
                str(next_id),
                before_prev_hash,
                "null" if last_hash is None else quote(last_hash),
                before_prev_id,
                "null" if last_id is None else str(last_id),
                rest,
            )
        )
        row["id"], row["prev_id"], row["prev_hash"] = next_id, last_id, last_hash
        last_hash = row["hash"] = sha256(text.encode("ascii")).hexdigest()
        last_id, next_id = next_id, next_id + 1
    return last_id, last_hash


# Plain SQL, run as it is: these two run once per committing transaction, SQLAlchemy's statement handling
# costs more than they do. The head is locked FOR UPDATE on PostgreSQL; SQLite's writer holds the lock already.
_READ_HEAD = f"SELECT last_id, last_hash, (SELECT max(id) FROM audit_entry) FROM audit_chain_head WHERE id = {HEAD_ID}"
_LOCK_HEAD = _READ_HEAD + " FOR UPDATE OF audit_chain_head"
_MOVE_HEAD = f"UPDATE audit_chain_head SET last_id = :head_last_id, last_hash = :head_last_hash WHERE id = {HEAD_ID}"


def _lock_head(session: Session) -> tuple[int | None, str | None, int, bool]:
    """The chain's last row and hash, the highest id in the table, and whether the head had to be made again,
    with the head locked until commit.

    PostgreSQL: SELECT ... FOR UPDATE, so appends from every process queue here, one transaction at a time;
    SQLite: the transaction's BEGIN IMMEDIATE already holds the database's one write lock."""
    connection = session.connection()
    query = _LOCK_HEAD if connection.dialect.name == "postgresql" else _READ_HEAD
    found = connection.exec_driver_sql(query).first()
    made = False
    if found is None:
        # The migration made the head: it was deleted. Start again from the table's last row (there may be
        # rows cut off after it), and say so in the chain itself (see append).
        last = connection.execute(select(_TABLE.c.id, _TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)).first()
        made = bool(
            bulk_insert(
                session,
                _HEAD,
                [{"id": HEAD_ID, "last_id": last and last.id, "last_hash": last and last.hash}],
                returning=("id",),
                skip_conflicts_on="id",
            )
        )
        found = connection.exec_driver_sql(query).first()
    return found[0], found[1], found[2] or 0, made


# PostgreSQL, a few rows: the head's lock, the numbering, the hashes, the rows and the head's move in one
# statement, the database finishing each row's canonical text from its pieces and hashing it (sha256() over the
# same ASCII text): a committing transaction holds the head one round trip less. No row back: the head is gone.
_ROW_COLUMNS = ("at", "actor", "source", "action", "entity", "entity_id", "field", "old_value", "new_value", "reason")
_APPEND_IN_DATABASE = text(
    f"""WITH RECURSIVE head AS MATERIALIZED (
    SELECT last_id, last_hash,
           GREATEST(COALESCE(last_id, 0), COALESCE((SELECT max(id) FROM audit_entry), 0)) + 1 AS next_id
    FROM audit_chain_head WHERE id = {HEAD_ID} FOR UPDATE OF audit_chain_head
), batch AS MATERIALIZED (
    SELECT * FROM json_to_recordset(CAST(:audit_rows AS json)) AS b(
        n integer, p0 text, p1 text, p2 text, p3 text, at timestamptz,
        {", ".join(f"{name} text" for name in _ROW_COLUMNS[1:])})
), chain (n, id, prev_id, prev_hash, hash) AS (
    SELECT b.n, h.next_id, h.last_id, h.last_hash::text, encode(sha256(convert_to(
        b.p0 || h.next_id || b.p1 || COALESCE('"' || h.last_hash || '"', 'null') || b.p2
        || COALESCE(h.last_id::text, 'null') || b.p3, 'UTF8')), 'hex')
    FROM head h JOIN batch b ON b.n = 1
    UNION ALL
    SELECT b.n, c.id + 1, c.id, c.hash, encode(sha256(convert_to(
        b.p0 || (c.id + 1) || b.p1 || '"' || c.hash || '"' || b.p2 || c.id || b.p3, 'UTF8')), 'hex')
    FROM chain c JOIN batch b ON b.n = c.n + 1
), inserted AS (
    INSERT INTO audit_entry (id, {", ".join(_ROW_COLUMNS)}, prev_id, prev_hash, hash)
    SELECT c.id, {", ".join(f"b.{name}" for name in _ROW_COLUMNS)}, c.prev_id, c.prev_hash, c.hash
    FROM chain c JOIN batch b ON b.n = c.n
)
UPDATE audit_chain_head SET last_id = last.id, last_hash = last.hash
FROM (SELECT id, hash FROM chain ORDER BY n DESC LIMIT 1) AS last
WHERE audit_chain_head.id = {HEAD_ID}
RETURNING audit_chain_head.last_id"""
)


def _append_in_database(session: Session, batches: Sequence[tuple[list[dict], dict]]) -> bool:
    """Append the rows in one statement (_APPEND_IN_DATABASE); False, with nothing written, if the head is gone."""
    payload = []
    for rows, shared in batches:
        common = {**shared, "at": utc_text(shared["at"])}
        for row, pieces in zip(rows, _pieces(rows, shared)):
            payload.append({**common, **row, "n": len(payload) + 1, **dict(zip(("p0", "p1", "p2", "p3"), pieces))})
    found = session.connection().execute(_APPEND_IN_DATABASE, {"audit_rows": json.dumps(payload)}).first()
    return found is not None


def _head_remade(at) -> tuple[list[dict], dict]:
    """The row a remade head starts with: verify reports it, so appends after a deleted head cannot hide it."""
    row = {
        "action": HEAD_REMADE[0],
        "entity": HEAD_REMADE[1],
        "entity_id": str(HEAD_ID),
        "field": "",
        "old_value": None,
        "new_value": None,
    }
    return [row], {"at": at, "actor": "system:audit_chain", "source": "system", "reason": "the chain head was gone"}


def append(session: Session, batches: Sequence[tuple[list[dict], dict]]) -> None:
    """Write audit rows at the end of the chain, in order: each batch is (rows, the columns its rows share).

    Ids are given here, after the chain head's last one, so id order is chain order whatever commits first."""
    few = 0 < sum(len(rows) for rows, _ in batches) <= FEW_ROWS
    if few and session.connection().dialect.name == "postgresql" and _append_in_database(session, batches):
        return
    last_id, last_hash, highest, remade = _lock_head(session)
    if remade:
        batches = [_head_remade(batches[0][1]["at"]), *batches]
    next_id = max(last_id or 0, highest) + 1
    for rows, shared in batches:
        if rows:
            last_id, last_hash = _chain(rows, shared, last_id, last_hash, next_id)
            next_id = last_id + 1
    # The rows and the new head go in one round trip where that is cheaper: every other transaction's commit
    # waits for this one's.
    bulk_insert_then(session, _TABLE, batches, _MOVE_HEAD, {"head_last_id": last_id, "head_last_hash": last_hash})
