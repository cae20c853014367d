"""Who is changing clinical data and why: carried on the session for the audit trail."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from sqlalchemy.orm import Session

SOURCES = ("sms", "app", "staff", "job", "cli", "system")


@dataclass(frozen=True)
class Actor:
    """The origin of a change: a source channel and who within it (e.g. staff:3, job:flag_missed_doses)."""

    source: str
    name: str

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"unknown change source {self.source!r}")

    @property
    def label(self) -> str:
        """source:name, as written into the audit trail."""
        return f"{self.source}:{self.name}"


SYSTEM = Actor("system", "system")


@contextmanager
def acting(session: Session, actor: Actor, reason: str | None = None) -> Iterator[None]:
    """Attribute every change flushed inside the block to `actor`, with `reason`."""
    previous = (session.info.get("actor"), session.info.get("reason"))
    session.info["actor"], session.info["reason"] = actor, reason
    try:
        yield
        # Flush inside the block so the audit rows carry this actor, not whoever commits later.
        session.flush()
    finally:
        session.info["actor"], session.info["reason"] = previous


def current_actor(session: Session) -> tuple[Actor, str | None]:
    """The actor and reason the session is acting under (system if none was set)."""
    return session.info.get("actor") or SYSTEM, session.info.get("reason")


# Bulk writes done with SQL statements bypass the ORM flush, so they report their changes here.
# The backend registers the writer (the audit trail); without one, as without the listener, nothing is kept.
@dataclass(frozen=True)
class Changes:
    """Rows of one model written with bulk SQL: `created` holds each new row's column values (primary
    key included), `updated` (primary key, {field: (old, new)}) pairs."""

    model: type
    created: Sequence[dict] = ()
    updated: Sequence[tuple[object, dict]] = ()


ChangeWriter = Callable[[Session, Sequence[Changes]], None]
_writers: list[ChangeWriter] = []


def set_change_writer(writer: ChangeWriter) -> None:
    """Register the writer of changes made outside the ORM flush (the backend's audit trail)."""
    _writers[:] = [writer]


def record_changes(
    session: Session, model: type, *, created: Sequence[dict] = (), updated: Sequence[tuple[object, dict]] = ()
) -> None:
    """Report rows written with bulk SQL, as the flush would: `created` holds each new row's column
    values (primary key included), `updated` (primary key, {field: (old, new)}) pairs; attributed
    to the session's current actor and reason."""
    record_many(session, [Changes(model, created, updated)])


def record_many(session: Session, changes: Sequence[Changes]) -> None:
    """Report the bulk-written rows of several models at once (one audit statement for all), in order."""
    changes = [c for c in changes if c.created or c.updated]
    if changes:
        for writer in _writers:
            writer(session, changes)
