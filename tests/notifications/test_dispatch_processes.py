"""Real `flask dispatch` processes against a committed database and the Twilio stand-in:
a SIGKILL mid-run loses nothing and duplicates at most what was in flight; two workers never
send the same message twice."""

import collections
import re
import signal
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from backend.db import Database
from notifications.models import OutboundMessage, OutboxStatus
from notifications.twilio_standin import TwilioStandIn
from schedules.dbtypes import utcnow
from tests.conftest import PG_URL
from tests.factories import VAULT
from tests.sms_helpers import start_worker, stop_worker, wait_until, worker_env


def queue_due(database: Database, count: int) -> None:
    """`count` messages due now, each with its own recipient and body."""
    now = utcnow() - timedelta(seconds=5)
    rows = [
        dict(
            recipient_ciphertext=VAULT.encrypt(f"+86139{i:08d}"),
            purpose="staff_alert",
            ref_type="test",
            dedupe_key=f"test:{i}",
            language="en",
            body=f"message {i}",
            priority=5,
            due_at=now,
            next_attempt_at=now,
            status="planned",
            provider_status="",
            attempts=0,
            recoveries=0,
            last_error="",
            claimed_by="",
            created_at=now,
        )
        for i in range(count)
    ]
    with database.session() as s:
        s.execute(OutboundMessage.__table__.insert(), rows)


def status_counts(database: Database) -> dict[str, int]:
    with database.session() as s:
        return dict(s.exec(select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)).all())


def bodies(standin: TwilioStandIn) -> collections.Counter:
    return collections.Counter(m["Body"] for m in standin.messages)


def test_dispatcher_killed_mid_run_then_restarted_sends_everything_with_duplicates_bounded_by_in_flight(
    committed, tmp_path
):
    total = 500
    queue_due(committed, total)
    with TwilioStandIn(latency_ms=15) as standin:
        env = worker_env(
            committed.url,
            standin,
            tmp_path,
            SENDING_STALE_AFTER_SECONDS=1,
            DISPATCH_CONCURRENCY=4,
            DISPATCH_BATCH_SIZE=25,
        )
        worker = start_worker(env, log_path=tmp_path / "worker1.log")
        try:
            wait_until(
                lambda: len(standin.messages) >= total // 3, timeout=30, what="a third of the messages to arrive"
            )
            # Hold the next create open, so the kill surely lands with a batch in flight.
            seen = standin.requests_seen()
            standin.hang_next(3)
            wait_until(lambda: standin.requests_seen() > seen, timeout=10, what="the held request")
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        at_kill = status_counts(committed)
        reached_before_restart = sum(bodies(standin).values())
        in_flight = at_kill.get(OutboxStatus.SENDING.value, 0)
        assert 0 < reached_before_restart < total and in_flight > 0

        restarted = start_worker(env, log_path=tmp_path / "worker2.log")
        try:
            wait_until(
                lambda: status_counts(committed) == {OutboxStatus.SENT.value: total},
                timeout=45,
                what="every message to be recorded as sent",
            )
        finally:
            stop_worker(restarted)

    received = bodies(standin)
    assert set(received) == {f"message {i}" for i in range(total)}
    duplicates = sum(received.values()) - total
    assert duplicates <= in_flight
    with committed.session() as s:
        assert s.exec(select(func.max(OutboundMessage.recoveries))).one() <= 1


def test_two_dispatch_processes_send_each_message_exactly_once(committed, tmp_path):
    # PostgreSQL: FOR UPDATE SKIP LOCKED hands each worker disjoint rows. SQLite: BEGIN IMMEDIATE
    # serialises the claims. A smaller batch on SQLite keeps the run short; the rule is the same.
    total, workers = (2000 if PG_URL else 600), 2
    queue_due(committed, total)
    with TwilioStandIn(latency_ms=2) as standin:
        env = worker_env(committed.url, standin, tmp_path, DISPATCH_CONCURRENCY=4, DISPATCH_BATCH_SIZE=20)
        procs = [start_worker(env, log_path=tmp_path / f"worker{n}.log") for n in range(workers)]
        try:
            wait_until(
                lambda: status_counts(committed) == {OutboxStatus.SENT.value: total},
                timeout=60,
                what="every message to be recorded as sent",
            )
        finally:
            for proc in procs:
                stop_worker(proc)

    received = bodies(standin)
    assert len(received) == total and set(received.values()) == {1}
    with committed.session() as s:
        claimed_by = dict(
            s.exec(select(OutboundMessage.claimed_by, func.count()).group_by(OutboundMessage.claimed_by)).all()
        )
        assert s.exec(select(func.max(OutboundMessage.attempts))).one() == 1
    assert len(claimed_by) == workers, "both workers took part"


def test_a_slow_send_holds_back_nothing_else_and_sigterm_waits_for_it(committed, tmp_path):
    total = 200
    queue_due(committed, total)
    with TwilioStandIn(latency_ms=5) as standin:
        standin.hang_next(8)  # the first message's provider answers only after 8 s (the SDK waits up to 10)
        env = worker_env(committed.url, standin, tmp_path, DISPATCH_CONCURRENCY=4, DISPATCH_BATCH_SIZE=20)
        worker = start_worker(env, log_path=tmp_path / "worker.log")
        try:
            wait_until(lambda: standin.requests_seen() >= 1, timeout=60, what="the dispatcher's first send")
            # The other 199 are sent and recorded while the slow one is still out: no batch waits for its slowest send.
            wait_until(
                lambda: status_counts(committed) == {OutboxStatus.SENT.value: total - 1, OutboxStatus.SENDING.value: 1},
                timeout=6,
                what="every message but the slow one to be recorded as sent",
            )
        finally:
            # A deploy's SIGTERM stops claiming but waits for the send in flight and records it.
            stop_worker(worker, timeout=15)
        assert worker.returncode == 0

    assert status_counts(committed) == {OutboxStatus.SENT.value: total}
    assert len(standin.messages) == total
    assert "dispatcher stopped: claimed 200, sent 200" in (tmp_path / "worker.log").read_text()


def _worker_id(log_path) -> str:
    """The id a dispatcher announced in its log ("dispatcher dispatch-… ready")."""
    found = re.findall(r"dispatcher (dispatch-[0-9a-f]+) ready", log_path.read_text() if log_path.exists() else "")
    return found[-1] if found else ""


def test_capped_dispatchers_killed_in_turn_lose_nothing_and_never_hold_rows_behind_the_cap(committed, tmp_path):
    # B8 in small (bench/b8_crash.py): the cap, not the provider, is the bottleneck, so a dispatcher that
    # claimed ahead would hold rows waiting for tokens; killed, those would count as crashed sends.
    total, concurrency, kills = 150, 8, 3
    queue_due(committed, total)
    in_flight = []
    with TwilioStandIn(latency_ms=20) as standin:
        env = worker_env(
            committed.url,
            standin,
            tmp_path,
            SEND_RATE_PER_SECOND=20,
            DISPATCH_CONCURRENCY=concurrency,
            SENDING_STALE_AFTER_SECONDS=1,
        )
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        procs = [start_worker(env, log_path=log) for log in logs]
        ids = [wait_until(lambda log=log: _worker_id(log), timeout=30, what="a dispatcher ready") for log in logs]
        try:
            for k in range(kills):
                victim = k % 2
                wait_until(lambda: len(standin.messages) >= (k + 1) * total // 5, timeout=30, what="sends under way")
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait(timeout=10)
                with committed.session() as s:
                    held = s.exec(
                        select(OutboundMessage.body).where(
                            OutboundMessage.status == OutboxStatus.SENDING.value,
                            OutboundMessage.claimed_by == ids[victim],
                        )
                    ).all()
                # Held rows are calls answered but not yet recorded, calls under way, or rows next in line with
                # their token: never more than the threads plus one pool's worth queued behind them have not reached
                # the provider. (Usually far fewer, ~1 token per claim past the first burst; but a dispatcher starved
                # of CPU for half a second on a loaded machine banks a full claim's tokens, so that is no bound.) A
                # dispatcher that claimed ahead of the cap held 17-32 here.
                not_reached = set(held) - set(bodies(standin))
                pool_and_queue = 2 * concurrency
                assert len(not_reached) <= pool_and_queue, f"{len(not_reached)} claimed rows never reached the provider"
                in_flight.append(len(held))
                logs[victim].write_text("")
                procs[victim] = start_worker(env, log_path=logs[victim])
                ids[victim] = wait_until(lambda v=victim: _worker_id(logs[v]), timeout=30, what="restarted")
            wait_until(
                lambda: not {OutboxStatus.PLANNED.value, OutboxStatus.SENDING.value} & set(status_counts(committed)),
                timeout=60,
                what="every message sent (or, killed twice in flight, given up)",
            )
        finally:
            for proc in procs:
                stop_worker(proc)

    received = bodies(standin)
    assert set(received) == {f"message {i}" for i in range(total)}  # nothing lost
    assert sum(received.values()) - total <= sum(in_flight)  # duplicates only from calls under way at a kill
