"""Who is changing clinical data and why: carried on the session for the audit trail."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

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
