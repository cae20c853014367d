"""B10 the Celery peer: 10,000 reminders due at once, sent by Celery tasks with ETAs beside our outbox, then a SIGKILL.

    .venv/bin/python bench/b10_celery.py                 # make b10_celery (installs the bench extra: Celery)
    .venv/bin/python bench/b10_celery.py --n 1000 --skip-crash

The peer is Twilio's appointment-reminders tutorial for Flask: one Celery task per reminder published with
`apply_async(eta=due)`, Redis as the broker, no result backend, the task calling the Twilio SDK's
`Client.messages.create` (bench/celery_peer.py; the producer passes the rendered recipient and body in the
task's arguments instead of the task loading them from a database). Two `celery worker --pool threads -c 32`
processes, the same total concurrency as our two `flask --app wsgi dispatch` processes x DISPATCH_CONCURRENCY 32
on PostgreSQL. Both designs get the same 10,000 recipients and bodies, all due at one instant `--lead` seconds
ahead (queued before it: rows committed, tasks published), each its own Twilio stand-in process at 50 ms, and
the same clock: the stand-in's arrival time of each message.

Reported per design: messages/s (messages handed over / seconds from due to the last), seconds from due to
the first and the last, lateness p50/p99 (arrival - due, first arrival per recipient), lost and duplicated
(counted by `To` at the stand-in).
Crash phase: one of the two workers is SIGKILLed when `--kill-at` of the messages have reached the stand-in and
started again at once, as a supervisor would. Our outbox runs with SENDING_STALE_AFTER_SECONDS 5 (as B8);
Celery twice: with its defaults (a task is acknowledged when it starts, so the dead worker's prefetched tasks
stay unacknowledged in Redis until the visibility timeout, 1 hour: we wait `--settle` seconds and count what
never came), and with task_acks_late=True and visibility_timeout 90 s (redelivered after it: duplicates and how
late the last one was). The shared Redis server sees only this run's keys (a global key prefix per phase),
deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import common
from b1_fanout import _count, insert_due_reminders
from b8_crash import _rows, _unfinished, start_dispatcher
from common import PY

LATENCY_MS = 50
POLL = "0.5"  # the dispatchers' idle poll, as B1 and B8


# --- what both designs are measured by -------------------------------------------------------------------------
def _bodies(day) -> dict[str, str]:
    """The rendered reminder per language, as insert_due_reminders renders it (en for every third participant)."""
    from notifications.templates import render

    return {
        lang: render("dose_reminder", lang, local_date=day.isoformat(), site_phone="+861088325555")
        for lang in ("zh-CN", "en")
    }


def _figures(standin: common.StandIn, *, due: datetime, n: int) -> dict:
    """Throughput, lateness, losses and duplicates from what reached the stand-in (first arrival per recipient)."""
    messages = standin.messages()
    first: dict[str, float] = {}
    for m in messages:
        at = datetime.fromisoformat(m["received_at"]).timestamp()
        first[m["To"]] = min(at, first.get(m["To"], at))
    late = sorted(at - due.timestamp() for at in first.values())
    last = max((datetime.fromisoformat(m["received_at"]).timestamp() for m in messages), default=float("nan"))
    to_last = last - due.timestamp()
    counts = Counter(m["To"] for m in messages)
    return {
        "handed_over": len(messages),
        "per_second": round(len(first) / to_last, 1) if first else 0.0,
        "due_to_first_s": round(late[0], 2) if late else None,
        "due_to_last_s": round(to_last, 2) if messages else None,
        "lateness_p50_s": round(common.percentile(late, 50), 2) if late else None,
        "lateness_p99_s": round(common.percentile(late, 99), 2) if late else None,
        "lost": n - len(first),
        "duplicates": sum(counts.values()) - len(counts),
    }


def _wait_reached(standin: common.StandIn, count: int, timeout: float) -> None:
    common.wait_for(lambda: standin.stats()["messages"] >= count, timeout=timeout, every=0.02, what=f"{count} sent")


def _kill(proc) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _due(lead: float) -> datetime:
    return (datetime.now(timezone.utc) + timedelta(seconds=lead)).replace(microsecond=0) + timedelta(seconds=1)


def _queued_in_time(due: datetime, what: str) -> float:
    """Seconds left before due once everything was queued (warns when the queueing ran past it)."""
    left = due.timestamp() - time.time()
    if left < 0:
        print(f"   WARNING: {what} finished {-left:.1f} s after due: raise --lead", flush=True)
    return round(left, 2)


# --- our outbox ----------------------------------------------------------------------------------------------------
def run_outbox(*, n: int, concurrency: int, lead: float, kill_at: float | None, stale_after: int) -> dict:
    """The outbox on PostgreSQL: 2 real dispatchers, n rows committed before they fall due; optionally one kill."""
    with (
        common.database("pg", "b10") as url,
        tempfile.TemporaryDirectory(prefix="bench-b10-") as work,
        common.StandIn(LATENCY_MS) as standin,
    ):
        extra = {"DISPATCH_CONCURRENCY": concurrency}
        if kill_at is not None:
            extra["SENDING_STALE_AFTER_SECONDS"] = stale_after
        env = common.env_for(url, work, **common.twilio_env(standin, **extra))
        app = common.make_app(env)
        common.migrate(app)
        study_id, site_id = common.study_and_site(app)
        due = _due(lead)
        ids = common.bulk_participants(app, study_id=study_id, site_id=site_id, n=n, first_dose=due.date())
        logs = [f"{work}/dispatch{i}.log" for i in range(2)]

        def start(i: int):
            return start_dispatcher(env, logs[i], poll=POLL, name=f"dispatcher {i + 1}")

        procs = [start(0), start(1)]
        result: dict = {"design": "outbox", "n": n, "processes": 2, "concurrency": concurrency}
        try:
            due = _due(lead)
            insert_due_reminders(app, ids, due=due)  # one commit, before due
            result["queued_s_before_due"] = _queued_in_time(due, "the insert")
            if kill_at is None:
                common.wait_for(lambda: _count(app, "sent") >= n, timeout=900, every=0.1, what=f"{n} sent")
            else:
                _wait_reached(standin, int(kill_at * n), timeout=900)
                proc, worker = procs[0]
                _kill(proc)
                result["killed_at_standin"] = standin.stats()["messages"]
                result["in_flight_at_kill"] = _rows(app, status="sending", claimed_by=worker)
                procs[0] = start(0)
                # The crash rule returns the dead one's rows after stale_after; a dispatcher finds them when idle.
                common.wait_for(lambda: _unfinished(app) == 0, timeout=300, every=0.5, what="every row finished")
                result["stale_after_s"] = stale_after
        finally:
            for proc, _ in procs:
                common.stop_process(proc)
        result.update(_figures(standin, due=due, n=n))
        result["not_sent_rows"] = n - _count(app, "sent")
        app.extensions["database"].engine.dispose()
        return result


# --- the Celery peer -----------------------------------------------------------------------------------------------
def _delete_keys(prefix: str) -> int:
    """Delete this run's keys (only those: the Redis server is shared)."""
    import redis

    client = redis.Redis.from_url(common.REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for k in range(0, len(keys), 500):
        client.delete(*keys[k : k + 500])
    client.close()
    return len(keys)


def run_celery(
    *, n: int, concurrency: int, lead: float, kill_at: float | None, acks_late: bool, visibility: int, settle: float
) -> dict:
    """Two Celery workers and one task per reminder with its ETA; optionally one kill. Returns the figures."""
    import redis

    from bench.celery_peer import READY_LINE, create_celery

    run = uuid.uuid4().hex[:8]
    prefix, queue = f"bench-b10-{run}-", f"b10-{run}"
    variant = "celery, acks late" if acks_late else "celery, defaults"
    with tempfile.TemporaryDirectory(prefix="bench-b10-") as work, common.StandIn(LATENCY_MS) as standin:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "B10_"))}
        env.update(common.twilio_env(standin, TWILIO_AUTH_TOKEN=common.SECRETS["TWILIO_AUTH_TOKEN"]))
        env.update({"B10_BROKER_URL": common.REDIS_URL, "B10_KEY_PREFIX": prefix, "B10_QUEUE": queue})
        env["PYTHONUNBUFFERED"] = "1"
        if acks_late:
            env.update({"B10_ACKS_LATE": "1", "B10_VISIBILITY_TIMEOUT": str(visibility)})
        logs = [f"{work}/worker{i}.log" for i in range(2)]

        def start(i: int):
            offset = os.path.getsize(logs[i]) if os.path.exists(logs[i]) else 0
            command = [PY, "-m", "celery", "-A", "bench.celery_peer", "worker", "--pool", "threads"]
            command += ["-c", str(concurrency), "-Q", queue, "-n", f"b10-{run}-w{i}@%h", "-l", "WARNING"]
            command += ["--without-gossip", "--without-mingle"]
            proc = common.spawn(command, env, logs[i])
            common.wait_for(
                lambda: READY_LINE in open(logs[i]).read()[offset:], timeout=60, what=f"celery worker {i + 1} ready"
            )
            return proc

        result: dict = {"design": variant, "n": n, "processes": 2, "concurrency": concurrency}
        if acks_late:
            result["visibility_timeout_s"] = visibility
        app = create_celery(env)
        procs: list = []
        try:
            procs = [start(0), start(1)]
            task = app.tasks["send_sms_reminder"]
            due = _due(lead)
            bodies = _bodies(due.date())
            t = time.perf_counter()
            for i in range(n):  # the tutorial's producer: one apply_async per reminder, with its ETA
                task.apply_async(args=(i, common.phone(i), bodies["en" if i % 3 == 0 else "zh-CN"]), eta=due)
            result["publish_s"] = round(time.perf_counter() - t, 2)
            result["queued_s_before_due"] = _queued_in_time(due, "publishing")
            if kill_at is None:
                common.wait_for(lambda: standin.stats()["messages"] >= n, timeout=900, every=0.1, what=f"{n} sent")
            else:
                _wait_reached(standin, int(kill_at * n), timeout=900)
                _kill(procs[0])
                killed = time.monotonic()
                result["killed_at_standin"] = standin.stats()["messages"]
                procs[0] = start(0)
                try:
                    common.wait_for(
                        lambda: len({m["To"] for m in standin.messages()}) >= n,
                        timeout=settle,
                        every=1,
                        what="every reminder sent",
                    )
                except TimeoutError:
                    result["waited_after_kill_s"] = round(time.monotonic() - killed, 1)
                time.sleep(3)  # a redelivered task that was in flight at the kill arrives with the rest
                broker = redis.Redis.from_url(common.REDIS_URL)
                result["unacked_in_redis"] = broker.hlen(f"{prefix}unacked")
                broker.close()
        finally:
            for proc in procs:
                common.stop_process(proc)
            app.close()
            _delete_keys(prefix)
        result.update(_figures(standin, due=due, n=n))
        return result


# --- output ----------------------------------------------------------------------------------------------------------
def show(r: dict, *, crash: bool) -> None:
    """Print one phase's figures."""
    head = f"-- {r['design']}: {r['n']} reminders, {r['processes']} processes x {r['concurrency']} threads"
    if "visibility_timeout_s" in r:
        head += f", visibility_timeout {r['visibility_timeout_s']} s"
    if "publish_s" in r:
        head += f"; published in {r['publish_s']} s"
    print(head + f", queued {r['queued_s_before_due']} s before due")
    if crash:
        line = f"   SIGKILL of one of the two at {r['killed_at_standin']} at the stand-in, restarted at once"
        if "in_flight_at_kill" in r:
            line += f"; rows in 'sending' at the kill {r['in_flight_at_kill']}"
        print(line)
    print(
        f"   {r['per_second']} messages/s; due -> first handed over {r['due_to_first_s']} s, -> last "
        f"{r['due_to_last_s']} s; lateness p50 {r['lateness_p50_s']} s, p99 {r['lateness_p99_s']} s"
    )
    line = f"   lost {r['lost']}, duplicates {r['duplicates']} ({r['handed_over']} handed over)"
    if "waited_after_kill_s" in r:
        line += f"; still not sent {r['waited_after_kill_s']} s after the kill"
    if "unacked_in_redis" in r:
        line += f"; unacknowledged in Redis at the end: {r['unacked_in_redis']}"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32, help="threads per dispatcher and per Celery worker")
    parser.add_argument("--kill-at", type=float, default=0.4, help="share at the stand-in when one worker is killed")
    parser.add_argument("--skip-crash", action="store_true", help="only the runs without a kill")
    parser.add_argument("--lead", type=float, help="seconds from queueing to due (default max(5, n / 400))")
    parser.add_argument("--settle", type=float, default=120, help="Celery's bounded wait after the kill, seconds")
    parser.add_argument("--visibility-timeout", type=int, default=90, help="Celery acks-late run's, seconds")
    parser.add_argument("--stale-after", type=int, default=5, help="outbox crash run's SENDING_STALE_AFTER_SECONDS")
    args = parser.parse_args()
    lead = args.lead if args.lead is not None else max(5.0, args.n / 400)
    common.banner("B10 the Celery peer")
    common_args = {"n": args.n, "concurrency": args.concurrency, "lead": lead}
    phases = [("outbox", None, False), ("celery", None, False)]
    if not args.skip_crash:
        phases += [("outbox", args.kill_at, False), ("celery", args.kill_at, False), ("celery", args.kill_at, True)]
    rows = []
    for design, kill_at, acks_late in phases:
        if design == "outbox":
            result = run_outbox(kill_at=kill_at, stale_after=args.stale_after, **common_args)
        else:
            settle = args.settle + (args.visibility_timeout if acks_late else 0)
            result = run_celery(
                kill_at=kill_at, acks_late=acks_late, visibility=args.visibility_timeout, settle=settle, **common_args
            )
        result["phase"] = "no kill" if kill_at is None else f"SIGKILL at {kill_at:.0%}"
        show(result, crash=kill_at is not None)
        common.record("B10", result)
        rows.append(result)
    print("-- summary: design, phase | messages/s | due->last s | p50 / p99 lateness s | lost | duplicates")
    for r in rows:
        print(
            f"   {r['design']:<18} {r['phase']:<15} | {r['per_second']:>7} | {r['due_to_last_s']:>6} | "
            f"{r['lateness_p50_s']} / {r['lateness_p99_s']} | {r['lost']} | {r['duplicates']}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
