"""Job runs: each scheduled job's latest outcome, kept so that a stopped or failing scheduler is seen by
operators (`/metrics`, `jobs list`) and by nurses (a warning on their pages) instead of found days later."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, ContextManager, Protocol, Sequence

from sqlalchemy import func
from sqlmodel import Session, select

from backend.models import JobRun
from notifications.models import OutboundMessage, OutboxStatus

log = logging.getLogger(__name__)

LATE_FLOOR = timedelta(minutes=10)  # no job counts as late sooner: a restart or one slow run is not an outage
REWRITE_AFTER = timedelta(
    seconds=30
)  # a success like the last one is written at most this often (dispatch polls every few s)
OUTBOX_LATE_AFTER = timedelta(minutes=15)  # due messages older than this mean nothing is sending
# Without these two no missed dose is flagged and no reminder is planned: nurses must hear when they stop.
WATCHED_FOR_NURSES = ("flag_missed_doses", "plan_messages")


class Job(Protocol):
    """What this module needs of a job definition (backend.runtime.jobs.JobSpec)."""

    name: str
    every_seconds: int


def _upsert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(JobRun.__table__)


class RunRecorder:
    """Writes each job's outcome to job_run in its own short transaction; never lets a job fail because of it."""

    def __init__(self, sessions: Callable[[], ContextManager[Session]], dialect: str):
        self.sessions, self.dialect = sessions, dialect
        self._last: dict[str, tuple[datetime, bool]] = {}
        self._lock = threading.Lock()

    def record(self, name: str, *, at: datetime, seconds: float, summary: str = "", error: str | None = None) -> None:
        """Keep this run's outcome (a repeated success only every REWRITE_AFTER)."""
        ok = error is None
        with self._lock:
            previous = self._last.get(name)
            if ok and previous is not None and previous[1] and at - previous[0] < REWRITE_AFTER:
                return
            self._last[name] = (at, ok)
        values = {"last_finished_at": at, "last_seconds": round(seconds, 3), "last_summary": summary[:300]}
        values.update({"last_succeeded_at": at} if ok else {"last_failed_at": at, "last_error": (error or "")[:200]})
        statement = _upsert(self.dialect).values(name=name, **{"last_error": "", **values})
        statement = statement.on_conflict_do_update(index_elements=["name"], set_=values)
        try:
            with self.sessions() as session:
                session.execute(statement)
        except Exception as exc:  # the job itself did its work; losing one heartbeat is not worth failing it
            log.warning("could not record the run of job %s (%s)", name, type(exc).__name__)
            with self._lock:
                self._last.pop(name, None)


def allowed_silence(every_seconds: int) -> timedelta:
    """How long a job may go without a success before it counts as late: three intervals, at least LATE_FLOOR."""
    return max(LATE_FLOOR, timedelta(seconds=3 * every_seconds))


@dataclass(frozen=True)
class JobHealth:
    """One job's latest outcome and whether it is overdue."""

    name: str
    every_seconds: int
    last_succeeded_at: datetime | None
    last_failed_at: datetime | None
    last_error: str
    last_summary: str
    late: bool

    @property
    def failing(self) -> bool:
        """The most recent run failed."""
        return self.last_failed_at is not None and (
            self.last_succeeded_at is None or self.last_failed_at > self.last_succeeded_at
        )


def job_health(session: Session, jobs: Sequence[Job], *, now: datetime) -> list[JobHealth]:
    """Every job's health in the given order; a job that never succeeded is late."""
    rows = {row.name: row for row in session.exec(select(JobRun)).all()}
    out = []
    for job in jobs:
        row = rows.get(job.name)
        succeeded = row.last_succeeded_at if row else None
        out.append(
            JobHealth(
                job.name,
                job.every_seconds,
                succeeded,
                row.last_failed_at if row else None,
                row.last_error if row else "",
                row.last_summary if row else "",
                succeeded is None or now - succeeded > allowed_silence(job.every_seconds),
            )
        )
    return out


@dataclass(frozen=True)
class OutboxBacklog:
    """Due messages not yet sent, and how long the oldest has waited."""

    due: int
    oldest_due_at: datetime | None
    sending: int

    def waited(self, now: datetime) -> timedelta:
        """How long the oldest due message has waited (zero when none)."""
        return max(timedelta(0), now - self.oldest_due_at) if self.oldest_due_at else timedelta(0)


def outbox_backlog(session: Session, *, now: datetime) -> OutboxBacklog:
    """Planned messages due by now, the oldest due time, and messages a dispatcher holds."""
    o = OutboundMessage
    due, oldest = session.execute(
        select(func.count(), func.min(o.next_attempt_at)).where(
            o.status == OutboxStatus.PLANNED.value, o.next_attempt_at <= now
        )
    ).one()
    sending = session.execute(select(func.count()).where(o.status == OutboxStatus.SENDING.value)).scalar_one()
    return OutboxBacklog(due, oldest, sending)


CHECKS_STOPPED, OUTBOX_STUCK = "checks_stopped", "outbox_stuck"


@dataclass(frozen=True)
class NurseWarning:
    """Something nurses must know about the system itself: what stopped, since when, what it means.
    The pages word it in the reader's language from `kind`, `count` and `masked` (backend.web.words)."""

    kind: str  # CHECKS_STOPPED | OUTBOX_STUCK
    silent_for: timedelta | None  # None: the checks never ran
    count: int = 0  # messages waiting (OUTBOX_STUCK)
    masked: bool = False  # for the masked assessor: no dosing words (the same for every arm)


def nurse_warnings(session: Session, jobs: Sequence[Job], *, now: datetime, masked: bool = False) -> list[NurseWarning]:
    """Nurse-page warnings: the checks that flag missed doses and plan reminders stopped, or messages are stuck."""
    watched = [job for job in jobs if job.name in WATCHED_FOR_NURSES]
    late = [h for h in job_health(session, watched, now=now) if h.late]
    warnings = []
    if late:
        last = [h.last_succeeded_at for h in late if h.last_succeeded_at is not None]
        silent = now - min(last) if len(last) == len(late) else None
        warnings.append(NurseWarning(CHECKS_STOPPED, silent, masked=masked))
    backlog = outbox_backlog(session, now=now)
    if backlog.due and backlog.waited(now) > OUTBOX_LATE_AFTER:
        warnings.append(NurseWarning(OUTBOX_STUCK, backlog.waited(now), count=backlog.due, masked=masked))
    return warnings
