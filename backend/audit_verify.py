"""Walking the audit trail's hash chain: the first broken link and why, or how many rows hold together."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import false, select
from sqlalchemy.orm import Session

from backend.audit_chain import CONTENT, HEAD_ID, HEAD_REMADE, row_hash
from backend.models import AuditChainHead, AuditEntry

CONTENT_CHANGED = "content changed"
ROW_MISSING = "row missing"
LINK_BROKEN = "link broken"
HEAD_MISSING = "chain head missing"

_TABLE = AuditEntry.__table__
_HEAD = AuditChainHead.__table__
_BATCH = 5000


@dataclass(frozen=True)
class ChainReport:
    """The walk's outcome: rows verified in id order up to the first break (if any), and that break."""

    verified: int
    last_id: int | None
    last_hash: str | None
    broken_id: int | None = None  # the row changed, missing or out of place (None: the head itself)
    problem: str | None = None  # one of the constants above
    detail: str = ""

    @property
    def intact(self) -> bool:
        """True when every row and the chain head agree."""
        return self.problem is None


def _head(connection) -> tuple[int | None, str | None] | None:
    found = connection.execute(select(_HEAD.c.last_id, _HEAD.c.last_hash).where(_HEAD.c.id == HEAD_ID)).first()
    return None if found is None else (found[0], found[1])


def _check(row, prev_id: int | None, prev_hash: str | None) -> tuple[int, str, str] | None:
    """What is wrong with this row following (prev_id, prev_hash), or None."""
    if row["hash"] is None or row_hash(row) != row["hash"]:
        return row["id"], CONTENT_CHANGED, "its content no longer matches its hash (edited)"
    if row["prev_id"] != prev_id:
        if row["prev_id"] is not None and (prev_id is None or row["prev_id"] > prev_id):
            after = f"after row {prev_id}" if prev_id is not None else "at the start"
            return (
                row["prev_id"],
                ROW_MISSING,
                f"row {row['id']} follows row {row['prev_id']}, which is gone (deleted), as is any row {after}",
            )
        claim = "to be the first row" if row["prev_id"] is None else f"to follow row {row['prev_id']}"
        return row["id"], LINK_BROKEN, f"it claims {claim}, but row {prev_id} comes before it (put out of order)"
    if row["prev_hash"] != prev_hash:
        # This row is intact, so what changed is the row before it, hash and all.
        return prev_id, CONTENT_CHANGED, f"it was rewritten with a new hash; row {row['id']} recorded the old one"
    if (row["action"], row["entity"]) == HEAD_REMADE:
        return (
            row["id"],
            HEAD_MISSING,
            "the chain head was deleted before this row (rows cut off before it cannot show)",
        )
    return None


def verify_chain(session: Session, *, known: tuple[int, str] | None = None) -> ChainReport:
    """Walk every audit row in id order, streaming, from the first to the one the chain head names last.

    Reads the head first, so rows committed during the walk are left to the next one; rows past the head
    that no append put there, a head row gone, and a tail cut off (the head names a row not there) all show.
    `known` is a row and its hash noted outside the database earlier: the chain must still hold it, which
    a rebuild of the whole chain (head included) cannot fake."""
    connection = session.connection()
    head = _head(connection)
    query = select(*[_TABLE.c[key] for key in CONTENT], _TABLE.c.hash).order_by(_TABLE.c.id)
    if head is not None and head[0] is not None:
        query = query.where(_TABLE.c.id <= head[0])
    elif head is not None:
        query = query.where(false())  # an empty chain: any row is past its head (checked below)
    prev_id, prev_hash, verified = None, None, 0
    result = connection.execute(query.execution_options(yield_per=_BATCH)).mappings()
    try:
        for row in result:
            broken = _check(row, prev_id, prev_hash)
            if broken is None and known is not None and row["id"] == known[0] and row["hash"] != known[1]:
                broken = row["id"], CONTENT_CHANGED, "its hash is not the one noted earlier (the chain was rebuilt)"
            if broken is not None:
                return ChainReport(verified, prev_id, prev_hash, *broken)
            prev_id, prev_hash, verified = row["id"], row["hash"], verified + 1
    finally:
        result.close()
    if head is None:
        return ChainReport(verified, prev_id, prev_hash, None, HEAD_MISSING, "a cut-off tail could not be seen")
    if head[0] != prev_id:
        return ChainReport(
            verified,
            prev_id,
            prev_hash,
            head[0],
            ROW_MISSING,
            f"the chain head names row {head[0]} as the last, but the rows end at {prev_id} (cut off the end)",
        )
    if known is not None and (prev_id is None or known[0] > prev_id):
        return ChainReport(
            verified, prev_id, prev_hash, known[0], ROW_MISSING, "the row noted earlier is not in the chain"
        )
    if head[1] != prev_hash:
        return ChainReport(
            verified, prev_id, prev_hash, prev_id, CONTENT_CHANGED, "its hash differs from the one the chain head keeps"
        )
    beyond = connection.execute(
        select(_TABLE.c.id).where(_TABLE.c.id > (prev_id or 0)).order_by(_TABLE.c.id).limit(1)
    ).scalar()
    if beyond is not None and _head(connection) == head:  # the head has not moved: no append put it there
        return ChainReport(
            verified, prev_id, prev_hash, beyond, LINK_BROKEN, f"it comes after row {prev_id}, the chain's last"
        )
    return ChainReport(verified, prev_id, prev_hash)


def describe(report: ChainReport) -> str:
    """The walk's outcome in one sentence, as `audit verify` and the daily job say it."""
    if report.intact:
        if report.last_id is None:
            return "audit chain intact: no rows yet"
        return (
            f"audit chain intact: {report.verified} row(s) verified, "
            f"the last is row {report.last_id} with hash {report.last_hash}"
        )
    where = f"row {report.broken_id}" if report.broken_id is not None else "the chain head"
    return (
        f"audit chain broken at {where}: {report.problem}: {report.detail}; {report.verified} row(s) before it verified"
    )
