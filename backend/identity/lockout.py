"""Timed sign-in lockout per staff email: N wrong passwords within M minutes lock it for M minutes.

Counted per email whatever the address (four machines count as one), for pages and API alike. The lock
always ends: tries while locked are refused without being counted, so they do not lengthen it, and the
count starts again afterwards. An attacker can keep an account locked only by keeping on guessing,
never for good, and learns nothing about the password meanwhile (a locked account checks none)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.models import SignInLock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockoutPolicy:
    """`attempts` wrong passwords within `minutes` lock the email for `minutes`."""

    attempts: int
    minutes: int

    @property
    def period(self) -> timedelta:
        """The counting window, and the length of the lock."""
        return timedelta(minutes=self.minutes)


def locked_until(session: Session, key: str, *, now: datetime) -> datetime | None:
    """When the lock on this email ends, or None when it is not locked."""
    until = session.execute(select(SignInLock.locked_until).where(SignInLock.email_digest == key)).scalar()
    return until if until is not None and until > now else None


def record_failure(session: Session, key: str, *, now: datetime, policy: LockoutPolicy) -> datetime | None:
    """Count a wrong password; returns the lock's end when this one reaches `policy.attempts`."""
    _forget_stale(session, now=now, policy=policy)
    if not _count(session, key, now=now, policy=policy):
        try:
            with session.begin_nested():
                session.add(SignInLock(email_digest=key, failures=1, window_started_at=now))
        except IntegrityError:
            _count(session, key, now=now, policy=policy)  # a concurrent first failure inserted it meanwhile
    failures = session.execute(select(SignInLock.failures).where(SignInLock.email_digest == key)).scalar()
    if failures is None or failures < policy.attempts:
        return None
    until = now + policy.period
    session.execute(
        update(SignInLock)
        .where(SignInLock.email_digest == key)
        .values(failures=0, window_started_at=now, locked_until=until)
        .execution_options(synchronize_session=False)
    )
    log.warning(
        "staff sign-in locked until %s after %d wrong passwords within %d minutes (email digest %s)",
        until.isoformat(),
        failures,
        policy.minutes,
        key[:12],
    )
    return until


def clear_failures(session: Session, key: str) -> None:
    """A right password: earlier wrong ones no longer count."""
    session.execute(
        delete(SignInLock).where(SignInLock.email_digest == key).execution_options(synchronize_session=False)
    )


def _count(session: Session, key: str, *, now: datetime, policy: LockoutPolicy) -> bool:
    """One more failure in the current window, or the first of a new one; False when the email has no row."""
    # One UPDATE, so failures arriving together are all counted (every SET reads the row as it was).
    stale = SignInLock.window_started_at <= now - policy.period
    result = session.execute(
        update(SignInLock)
        .where(SignInLock.email_digest == key)
        .values(
            failures=case((stale, 1), else_=SignInLock.failures + 1),
            window_started_at=case((stale, now), else_=SignInLock.window_started_at),
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount > 0


def _forget_stale(session: Session, *, now: datetime, policy: LockoutPolicy) -> None:
    """Drop rows whose window and lock are both over: they mean nothing any more (unknown emails pile up otherwise)."""
    session.execute(
        delete(SignInLock)
        .where(
            SignInLock.window_started_at <= now - policy.period,
            or_(SignInLock.locked_until.is_(None), SignInLock.locked_until <= now),
        )
        .execution_options(synchronize_session=False)
    )
