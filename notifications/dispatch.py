"""Dispatch: claim due outbox rows, commit the claim, send, then record each outcome.

The crash rule for rows left in 'sending' is applied by notifications.crash_rule, which the
dispatcher runs at start and when idle.

Retry rule: a refusal with an HTTP answer (429, 5xx) is retried with backoff (Retry-After
honoured) until the message's last useful moment (not_after), then it expires; a message with
no deadline (staff SMS) gets DISPATCH_MAX_ATTEMPTS. A timeout is ambiguous (Twilio may have
taken it), so timeouts always count against DISPATCH_MAX_ATTEMPTS. Anything else fails at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import bindparam, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from notifications.crash_rule import recover_stuck
from notifications.delivery_alerts import delivery_failed
from notifications.housekeeping import expire_stale
from notifications.models import OutboundMessage, OutboxStatus, Purpose, StatusCallback
from notifications.rate_limit import SendLimiter
from notifications.senders import SendResult, SmsSender, SmsSendError
from notifications.status import replay_early_callbacks
from schedules.bulk import in_values
from schedules.changes import Actor, acting, record_changes
from schedules.models import Participant
from schedules.participants import closing_allowed, messaging_allowed
from schedules.phones import PhoneVault

log = logging.getLogger("notifications.dispatch")
Outbox = OutboundMessage
JOB_ACTOR = Actor("job", "dispatch_outbox")


@dataclass(frozen=True)
class DispatchConfig:
    """How a dispatcher behaves; all from Settings (backend.runtime.jobs.dispatch_config), which holds the defaults."""

    batch_size: int
    max_attempts: int
    concurrency: int
    sending_stale_after: timedelta
    status_callback_url: str | None
    worker_id: str = field(default_factory=lambda: f"dispatch-{uuid.uuid4().hex[:8]}")


@dataclass
class DispatchReport:
    """Counts of one dispatch run."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    expired: int = 0
    recovered: int = 0
    failed_codes: dict[int, int] = field(default_factory=dict)

    def add(self, other: "DispatchReport") -> None:
        """Fold another report into this one."""
        for name in ("claimed", "sent", "retried", "failed", "cancelled", "expired", "recovered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, n in other.failed_codes.items():
            self.failed_codes[code] = self.failed_codes.get(code, 0) + n

    def __str__(self) -> str:
        return (
            f"claimed {self.claimed}, sent {self.sent}, retrying {self.retried}, failed {self.failed}, "
            f"cancelled {self.cancelled}, expired {self.expired}, recovered {self.recovered}"
        )


SessionFactory = Callable[[], AbstractContextManager[Session]]


def claim_due(session: Session, *, now: datetime, limit: int, worker: str) -> list[int]:
    """Mark up to `limit` due rows as sending for this worker and return their ids (caller commits).

    PostgreSQL: FOR UPDATE SKIP LOCKED lets any number of dispatchers claim disjoint rows.
    SQLite: the write transaction is BEGIN IMMEDIATE, so claims are serialised by the database."""
    due = (
        sa_select(Outbox.id)
        .where(
            Outbox.status == OutboxStatus.PLANNED.value,
            Outbox.next_attempt_at <= now,
            or_(Outbox.not_after.is_(None), Outbox.not_after >= now),
        )
        .order_by(Outbox.priority, Outbox.next_attempt_at, Outbox.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(Outbox)
        .where(Outbox.id.in_(due.scalar_subquery()))
        .values(status=OutboxStatus.SENDING.value, claimed_by=worker, claimed_at=now, attempts=Outbox.attempts + 1)
        .returning(Outbox.id)
    )
    return sorted(session.execute(stmt, execution_options={"synchronize_session": False}).scalars().all())


@dataclass
class _Job:
    id: int
    to: str | None
    body: str
    skip: str | None = None  # why not to send: 'cancelled' | 'expired'
    outcome: SendResult | SmsSendError | None = None


def _may_reach(purpose: str, participant, *, now: datetime) -> bool:
    """Whether a participant may still get a message of this purpose: replies always (they answer a text just
    received), the closing message on the follow-up end date too, the rest while messaging is allowed."""
    if purpose == Purpose.REPLY.value:
        return True
    if purpose == Purpose.STUDY_CLOSING.value:
        return closing_allowed(participant, now=now)
    return messaging_allowed(participant, now=now)


def _prepare(session: Session, ids: list[int], *, vault: PhoneVault, now: datetime) -> list[_Job]:
    # Plain rows of the columns needed, not ORM objects: this runs for every message sent.
    # Safety alerts first within the batch too, not only in the claim.
    rows = session.execute(
        sa_select(
            Outbox.id, Outbox.participant_id, Outbox.purpose, Outbox.not_after, Outbox.recipient_ciphertext, Outbox.body
        )
        .where(in_values(session, Outbox.id, ids))
        .order_by(Outbox.priority, Outbox.next_attempt_at, Outbox.id)
    ).all()
    P = Participant
    wanted = {r.participant_id for r in rows if r.participant_id}
    participants = (
        {
            p.id: p
            for p in session.execute(
                sa_select(
                    P.id, P.status, P.opted_out, P.sms_consent, P.time_zone, P.follow_up_end_date, P.phone_ciphertext
                ).where(in_values(session, P.id, list(wanted)))
            )
        }
        if wanted
        else {}
    )
    jobs = []
    for row in rows:
        participant = participants.get(row.participant_id)
        if row.not_after is not None and row.not_after < now:
            jobs.append(_Job(row.id, None, "", skip="expired"))
        elif participant is not None and not _may_reach(row.purpose, participant, now=now):
            jobs.append(_Job(row.id, None, "", skip="cancelled"))
        else:
            cipher = row.recipient_ciphertext or (participant.phone_ciphertext if participant else "")
            jobs.append(
                _Job(row.id, vault.decrypt(cipher) if cipher else None, row.body, skip=None if cipher else "cancelled")
            )
    return jobs


def _callback_url(config: DispatchConfig, outbox_id: int) -> str | None:
    """The status callback names its outbox row (Twilio signs the whole URL), so a status finds its message
    even when the dispatcher died before recording the provider's SID."""
    if not config.status_callback_url:
        return None
    return f"{config.status_callback_url}?outbox={outbox_id}"


def _backoff(attempts: int, error: SmsSendError) -> timedelta:
    if error.retry_after:
        return timedelta(seconds=min(error.retry_after, 600))
    return timedelta(seconds=min(5 * 2 ** (attempts - 1), 600))


_SENT_FIELDS = ("status", "provider_sid", "provider_status", "sent_at", "last_error", "status_updated_at")


def _record(
    session: Session, jobs: list[_Job], *, now: datetime, config: DispatchConfig, report: DispatchReport
) -> None:
    """Write each job's outcome, unless its row was recovered by someone else meanwhile (their outcome stands)."""
    sent = [job for job in jobs if isinstance(job.outcome, SendResult) and not job.skip]
    if sent:
        _record_sent(session, sent, now=now, config=config, report=report)
    others = [job for job in jobs if job.skip or not isinstance(job.outcome, SendResult)]
    if not others:
        return
    rows = {r.id: r for r in session.exec(select(Outbox).where(Outbox.id.in_([j.id for j in others]))).all()}
    for job in others:
        row = rows[job.id]
        if row.status != OutboxStatus.SENDING.value or row.claimed_by != config.worker_id:
            continue
        row.status_updated_at = now
        if job.skip:
            with acting(
                session,
                JOB_ACTOR,
                "participant may no longer be messaged" if job.skip == "cancelled" else "too late to be useful",
            ):
                row.status = OutboxStatus.CANCELLED.value if job.skip == "cancelled" else OutboxStatus.EXPIRED.value
                session.add(row)
            setattr(report, job.skip, getattr(report, job.skip) + 1)
        else:
            _record_failure(session, row, job.outcome, now=now, config=config, report=report)
        session.add(row)


def _record_sent(
    session: Session, jobs: list[_Job], *, now: datetime, config: DispatchConfig, report: DispatchReport
) -> None:
    """The common outcome in a fixed number of statements: lock the rows, update them in one
    executemany, report the changes to the audit trail, apply callbacks that beat the record."""
    columns = [getattr(Outbox, name) for name in _SENT_FIELDS]
    locked = sa_select(Outbox.id, Outbox.claimed_by, *columns).where(
        in_values(session, Outbox.id, [j.id for j in jobs])
    )
    if session.get_bind().dialect.name == "postgresql":
        locked = locked.with_for_update()  # SQLite: the write transaction already excludes everyone else
    before = {r.id: r for r in session.execute(locked)}
    mine = [
        j
        for j in jobs
        if (r := before.get(j.id)) is not None
        and r.status == OutboxStatus.SENDING.value
        and r.claimed_by == config.worker_id
    ]
    if not mine:
        return
    table = Outbox.__table__
    session.execute(
        table.update()
        .where(table.c.id == bindparam("b_id"))
        .values(
            status=OutboxStatus.SENT.value,
            provider_sid=bindparam("b_sid"),
            provider_status=bindparam("b_status"),
            sent_at=now,
            last_error="",
            status_updated_at=now,
        ),
        [{"b_id": j.id, "b_sid": j.outcome.provider_sid, "b_status": j.outcome.status} for j in mine],
    )
    updated = []
    for job in mine:
        new = (OutboxStatus.SENT.value, job.outcome.provider_sid, job.outcome.status, now, "", now)
        old = before[job.id]
        updated.append((job.id, {f: (getattr(old, f), v) for f, v in zip(_SENT_FIELDS, new) if getattr(old, f) != v}))
    record_changes(session, Outbox, updated=updated)
    report.sent += len(mine)
    sids = [j.outcome.provider_sid for j in mine]
    if session.exec(
        select(StatusCallback.id)
        .where(StatusCallback.message_sid.in_(sids), StatusCallback.applied.is_(False))
        .limit(1)
    ).first():
        replay_early_callbacks(
            session, rows=session.exec(select(Outbox).where(Outbox.id.in_([j.id for j in mine]))).all(), now=now
        )


def _retry_at(row: Outbox, error: SmsSendError, *, now: datetime, config: DispatchConfig) -> datetime | None:
    """When to try a failed send again, or None to give up.

    A refusal with an HTTP answer (429, 5xx) means Twilio did not take the message, so a retry
    costs no duplicate: a message with a deadline keeps trying until its deadline (a Twilio
    outage must not turn every reminder into a nurse alert). No answer at all (a timeout) is
    ambiguous, since Twilio may have taken it, so those count against max_attempts always."""
    if not error.transient:
        return None
    at = now + _backoff(row.attempts, error)
    if error.http_status is not None and row.not_after is not None:
        return at if at <= row.not_after else None
    return at if row.attempts < config.max_attempts else None


def _record_failure(
    session: Session, row: Outbox, error: SmsSendError, *, now: datetime, config: DispatchConfig, report: DispatchReport
) -> None:
    row.last_error_code, row.last_error = error.code, str(error)[:500]
    retry_at = _retry_at(row, error, now=now, config=config)
    if retry_at is not None:
        row.status, row.next_attempt_at, row.claimed_by = OutboxStatus.PLANNED.value, retry_at, ""
        report.retried += 1
        return
    if error.transient and error.http_status is not None and row.not_after is not None:
        # Still refused when its last useful moment came: too late, like any stale message.
        with acting(session, JOB_ACTOR, f"too late to be useful: Twilio kept refusing ({error})"):
            row.status = OutboxStatus.EXPIRED.value
            session.add(row)
        report.expired += 1
        return
    with acting(session, JOB_ACTOR, f"send failed: {error}"):
        row.status = OutboxStatus.FAILED.value
        session.add(row)
    report.failed += 1
    if error.code:
        report.failed_codes[error.code] = report.failed_codes.get(error.code, 0) + 1
    participant = session.get(Participant, row.participant_id) if row.participant_id else None
    if participant is None:
        return
    delivery_failed(
        session,
        message=row,
        participant=participant,
        error_code=error.code,
        now=now,
        actor=JOB_ACTOR,
        summary=f"{row.purpose.replace('_', ' ')} could not be sent ({_describe(error)})",
        unsubscribed_why="Twilio refused the send: the number has unsubscribed (21610)",
    )


def _describe(error: SmsSendError) -> str:
    if error.code:
        return f"error {error.code}"
    if error.http_status:
        return f"HTTP {error.http_status}"
    return "no answer from the provider" if error.transient else "unexpected failure"


class Dispatcher:
    """Keeps `concurrency` sends in flight: claims a little ahead, sends on a thread pool, records every 100 ms.

    All database work (claim, prepare, record) runs on the calling thread; the pool threads only talk
    to the provider, so a slow send never holds a transaction open. A claim takes its send-rate
    tokens first and never takes more than the threads plus one pool's worth queued behind them
    (2 x concurrency rows, each queued row waiting about one send's time): so no claimed row waits
    for the cap, and a row in 'sending' is a provider call under way, answered and not yet
    recorded (about `record_every` of them), or next in line for a thread. Only those meet the
    crash rule. (Committing a hand-over mark before each call would make the rule exact, but costs
    a transaction per few sends on this thread: measured 30 % slower in B1, so not done.)"""

    record_every = 0.1
    housekeeping_every = 30.0

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        sender: SmsSender,
        vault: PhoneVault,
        clock: Callable[[], datetime],
        config: DispatchConfig,
        limiter: SendLimiter | None = None,
        pool: ThreadPoolExecutor | None = None,
        on_record: Callable[[DispatchReport], None] | None = None,
    ):
        self.sessions, self.sender, self.vault, self.clock, self.config = sessions, sender, vault, clock, config
        self.limiter, self.pool, self.on_record = limiter, pool, on_record
        threads = max(1, config.concurrency)
        # A queue of one pool's worth ahead of the threads (one send's time, ~50 ms) keeps them busy while this
        # thread claims or records; rows never wait for the cap, whose tokens come before the claim.
        self.lead = threads if threads > 1 else 0
        self.high_water = threads + self.lead
        # Claim again once half a pool's worth has drained: batches big enough to be cheap.
        self.low_water = self.high_water - max(1, threads // 2)
        self.token_wait = 0.02  # when the cap granted nothing: ask again this soon (no row is held meanwhile)
        self._cap_down_until = 0.0
        self._done: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._outstanding = 0  # handed to the pool, outcome not back yet
        self._finished: list[_Job] = []  # outcome known, not yet written

    def run(self, *, until_idle: bool, stop: threading.Event | None = None, poll: float = 1.0) -> DispatchReport:
        """Dispatch until nothing is due (until_idle) or `stop` is set; always drains and records before returning."""
        total = DispatchReport()
        own_pool = self.pool is None and self.config.concurrency > 1
        if own_pool:
            self.pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="sms")
        burst = DispatchReport()
        try:
            self._housekeep(total)
            if not until_idle:
                log.info(
                    "dispatcher %s ready: %d sending thread(s), claims up to %d ahead, polls every %g s when idle",
                    self.config.worker_id,
                    max(1, self.config.concurrency),
                    self.high_water,
                    poll,
                )
            housekept = next_claim = last_record = time.monotonic()
            exhausted = False
            while True:
                stopping = stop is not None and stop.is_set()
                moment = time.monotonic()
                may_claim = not stopping and not (until_idle and exhausted) and moment >= next_claim
                if may_claim and self._outstanding <= self.low_water:
                    # While idle, one token probes for work: tokens taken but unused are lost to every dispatcher.
                    room = self._tokens(1 if exhausted else self.high_water - self._outstanding)
                    if room:
                        claimed = self._claim_and_submit(burst, room=room)
                        exhausted = claimed == 0
                        self._untake(room - claimed)
                        if exhausted:
                            next_claim = moment + poll
                    elif time.monotonic() < self._cap_down_until:
                        exhausted = until_idle  # a one-off run ends; the rows stay planned for the next one
                        next_claim = self._cap_down_until
                    else:
                        next_claim = moment + self.token_wait
                    continue_claiming = bool(room) and not exhausted and self._outstanding <= self.low_water
                else:
                    continue_claiming = False
                self._collect(timeout=0 if continue_claiming or not self._outstanding else self.record_every)
                if self._finished and (not self._outstanding or time.monotonic() - last_record >= self.record_every):
                    self._record(burst)
                    last_record = time.monotonic()
                if self._outstanding or self._finished or continue_claiming:
                    continue
                # Nothing in flight and nothing unrecorded.
                if burst.claimed:
                    total.add(burst)
                    if not until_idle:
                        log.info("dispatched a burst: %s", burst)
                    burst = DispatchReport()
                if stopping or (until_idle and exhausted):
                    return total
                # A dead dispatcher's rows are recovered soon after they go stale, not half a minute later.
                every = min(self.housekeeping_every, self.config.sending_stale_after.total_seconds())
                if exhausted and time.monotonic() - housekept >= every:
                    self._housekeep(total)
                    housekept = time.monotonic()
                wait = max(0.0, next_claim - time.monotonic())
                if stop is not None:
                    stop.wait(wait)
                else:
                    time.sleep(wait)
        finally:
            total.add(burst)
            if own_pool:
                self.pool.shutdown(wait=True)
                self.pool = None

    def _housekeep(self, total: DispatchReport) -> None:
        with self.sessions() as session:
            total.recovered += recover_stuck(session, now=self.clock(), stale_after=self.config.sending_stale_after)
            total.expired += expire_stale(session, now=self.clock())

    def _tokens(self, wanted: int) -> int:
        """Send-rate tokens for up to `wanted` rows, taken before the claim (0 if the cap has none now)."""
        if self.limiter is None:
            return wanted
        if time.monotonic() < self._cap_down_until:
            return 0
        try:
            return self.limiter.take(wanted)
        except Exception as exc:  # nothing is claimed yet, so no row waits out the cap's outage
            log.error("send-rate cap raised %s; claiming nothing for 5 s", type(exc).__name__)
            self._cap_down_until = time.monotonic() + 5
            return 0

    def _untake(self, unused: int) -> None:
        give_back = getattr(self.limiter, "give_back", None)
        if unused > 0 and give_back is not None:
            give_back(unused)

    def _claim_and_submit(self, report: DispatchReport, *, room: int) -> int:
        # One transaction: the claim commits (other dispatchers skip these rows) before any send starts.
        with self.sessions() as session:
            ids = claim_due(
                session, now=self.clock(), limit=min(self.config.batch_size, room), worker=self.config.worker_id
            )
            jobs = _prepare(session, ids, vault=self.vault, now=self.clock()) if ids else []
        if not ids:
            return 0
        report.claimed += len(ids)
        for job in jobs:
            if job.skip:
                self._finished.append(job)
            elif self.pool is None:
                self._finished.append(self._send(job))
            else:
                self._outstanding += 1
                self.pool.submit(self._send_and_report, job)
        return len(ids)

    def _collect(self, *, timeout: float) -> None:
        """Move finished sends from the pool's queue to the list to record, waiting up to `timeout` for the first."""
        try:
            job = self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait()
        except queue.Empty:
            return
        while True:
            self._finished.append(job)
            self._outstanding -= 1
            try:
                job = self._done.get_nowait()
            except queue.Empty:
                return

    def _record(self, report: DispatchReport) -> None:
        recorded = DispatchReport()
        with self.sessions() as session:
            _record(session, self._finished, now=self.clock(), config=self.config, report=recorded)
        self._finished = []
        report.add(recorded)
        if self.on_record is not None:
            self.on_record(recorded)

    def _send_and_report(self, job: _Job) -> None:
        try:
            self._send(job)
        finally:  # whatever happened, the coordinator must hear back, or it would wait for this job forever
            if job.outcome is None:
                job.outcome = SmsSendError("the sending thread stopped before an outcome; not retried", transient=False)
            self._done.put(job)

    def _send(self, job: _Job) -> _Job:
        try:
            job.outcome = self.sender.send(to=job.to, body=job.body, status_callback=_callback_url(self.config, job.id))
        except SmsSendError as exc:
            job.outcome = exc
        except Exception as exc:  # a bug or an SDK surprise must not strand the message in 'sending'
            # Type only: an exception's text may quote the phone number, which never goes to a log.
            log.error("send of outbox row %s raised %s", job.id, type(exc).__name__)
            # Not retried: whether the provider took it is unknown, and a retry could duplicate it.
            job.outcome = SmsSendError(f"unexpected {type(exc).__name__} while sending; not retried", transient=False)
        return job
