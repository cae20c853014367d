"""B1 fan-out: 10,000 reminders due the same minute, dispatched into the Twilio stand-in at 50 ms per request.

    .venv/bin/python bench/b1_fanout.py                  # SQLite x1, PostgreSQL x1, PostgreSQL x2
    .venv/bin/python bench/b1_fanout.py --only pg2 --concurrency 16 --batch 100

For each variant: real `flask --app wsgi dispatch` processes are started and left idle (as at 19:59),
then 10,000 planned reminders become due in one commit, and we time until every row is 'sent'.
Beside it, in the same run and against the same stand-in process, the stand-in's own maximum:
the same number of client processes and threads calling the same Twilio sender in a tight loop.
Targets: >= 500 messages/s on PostgreSQL, and >= 80 % of the stand-in's maximum.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import common
from common import PY, ROOT

VARIANTS = {"sqlite": ("sqlite", 1), "pg1": ("pg", 1), "pg2": ("pg", 2)}

_CLIENT = r"""
import json, sys, threading, time
from notifications.senders import TwilioSmsSender
url, threads, per_thread, start_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sender = TwilioSmsSender(
    account_sid="AC" + "0" * 27 + "bench", auth_token="token", from_number="+15005550006", api_base_url=url
)
errors = []
def loop(k):
    for i in range(per_thread):
        try:
            sender.send(to="+8613900%06d" % (k * per_thread + i), body="standin max " + "x" * 60)
        except Exception as exc:
            errors.append(type(exc).__name__)
time.sleep(max(0.0, start_at - time.time()))
started = time.time()
pool = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
[t.start() for t in pool]
[t.join() for t in pool]
print(json.dumps({"start": started, "end": time.time(), "errors": len(errors)}))
"""


def standin_max(standin: common.StandIn, *, processes: int, threads: int, total: int, latency_ms: float) -> dict:
    """The stand-in's own throughput at this client concurrency (same processes x threads as the dispatchers)."""
    standin.control(reset=True, latency_ms=latency_ms)
    per_thread = max(1, total // (processes * threads))
    start_at = time.time() + 3.0  # after every client has imported the SDK
    procs = [
        subprocess.Popen(
            [PY, "-c", _CLIENT, standin.url, str(threads), str(per_thread), str(start_at)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    sent = per_thread * threads * processes
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    standin.control(reset=True, latency_ms=latency_ms)
    return {
        "messages": sent,
        "seconds": round(elapsed, 2),
        "per_second": round(sent / elapsed, 1),
        "errors": sum(r["errors"] for r in results),
    }


def insert_due_reminders(app, participant_ids: list[int], *, due: datetime, seq: int = 1) -> None:
    """One dose per participant and its planned reminder, all due at `due`, committed at once (as the planner does)."""
    from sqlalchemy import insert, select

    from backend.db import get_database
    from notifications.models import OutboundMessage
    from notifications.templates import render
    from schedules.models import Dose

    engine = get_database(app).engine
    day = due.date()
    with engine.begin() as conn:
        doses = [
            {
                "participant_id": pid,
                "seq": seq,
                "local_date": day,
                "due_at": due,
                "window_opens_at": due - timedelta(hours=12),
                "window_closes_at": due + timedelta(hours=12),
                "state": "scheduled",
                "note": "",
                "updated_at": due,
            }
            for pid in participant_ids
        ]
        for k in range(0, len(doses), 1000):
            conn.execute(insert(Dose.__table__), doses[k : k + 1000])
        dose_ids = dict(
            conn.execute(
                select(Dose.__table__.c.participant_id, Dose.__table__.c.id).where(Dose.__table__.c.seq == seq)
            ).all()
        )
    bodies = {
        lang: render("dose_reminder", lang, local_date=day.isoformat(), site_phone="+861088325555")
        for lang in ("zh-CN", "en")
    }
    rows = [
        {
            "participant_id": pid,
            "site_id": None,
            "recipient_ciphertext": "",
            "purpose": "dose_reminder",
            "ref_type": "dose",
            "ref_id": dose_ids[pid],
            "dedupe_key": f"dose_reminder:dose:{dose_ids[pid]}",
            "language": "en" if i % 3 == 0 else "zh-CN",
            "body": bodies["en" if i % 3 == 0 else "zh-CN"],
            "priority": 5,
            "due_at": due,
            "not_after": due + timedelta(hours=2),
            "next_attempt_at": due,
            "status": "planned",
            "provider_status": "",
            "attempts": 0,
            "recoveries": 0,
            "last_error": "",
            "claimed_by": "",
            "created_at": due,
        }
        for i, pid in enumerate(participant_ids)
    ]
    with engine.begin() as conn:  # the one commit that makes all 10,000 due together
        for k in range(0, len(rows), 2000):
            conn.execute(insert(OutboundMessage.__table__), rows[k : k + 2000])


def _count(app, status: str) -> int:
    from sqlalchemy import func, select

    from backend.db import get_database
    from notifications.models import OutboundMessage

    with get_database(app).engine.connect() as conn:
        return conn.execute(select(func.count()).where(OutboundMessage.status == status)).scalar_one()


def run_fanout(
    kind: str,
    dispatchers: int,
    *,
    n: int = 10_000,
    concurrency: int = 32,
    batch: int = 200,
    latency_ms: float = 50,
    rate_cap: float = 0,
    scheduler: bool = False,
    scheduler_seconds: int = 150,
    measure_max: bool = True,
    profile_seconds: int = 10,
) -> dict:
    """One variant end to end; returns its figures (and peak RSS of the processes it ran)."""
    with (
        common.database(kind, "b1") as url,
        tempfile.TemporaryDirectory(prefix="bench-b1-") as work,
        common.StandIn(latency_ms) as standin,
    ):
        extra = {"DISPATCH_CONCURRENCY": concurrency, "DISPATCH_BATCH_SIZE": batch, "SEND_RATE_PER_SECOND": rate_cap}
        if rate_cap:
            extra["RATELIMIT_STORAGE_URI"] = common.REDIS_URL
        env = common.env_for(url, work, **common.twilio_env(standin, **extra))
        app = common.make_app(env)
        common.migrate(app)
        study_id, site_id = common.study_and_site(app)
        today = datetime.now(timezone.utc).date()
        t = time.perf_counter()
        ids = common.bulk_participants(app, study_id=study_id, site_id=site_id, n=n, first_dose=today)
        setup_s = time.perf_counter() - t

        result: dict = {
            "variant": f"{kind} x{dispatchers}",
            "n": n,
            "concurrency": concurrency,
            "batch": batch,
            "latency_ms": latency_ms,
            "rate_cap": rate_cap,
        }
        if measure_max:
            result["standin_max"] = standin_max(
                standin, processes=dispatchers, threads=concurrency, total=n, latency_ms=latency_ms
            )

        procs = {}
        for i in range(dispatchers):
            command = [PY, "-m", "flask", "--app", "wsgi", "dispatch", "--poll", "0.5"]
            procs[f"dispatcher {i + 1}"] = common.spawn(command, env, f"{work}/dispatch{i}.log")
        watcher = common.RssWatcher({name: p.pid for name, p in procs.items()}).start()
        try:
            # A dispatcher logs "ready" once imported, connected and idle.
            common.wait_for(
                lambda: all(" ready: " in open(f"{work}/dispatch{i}.log").read() for i in range(dispatchers)),
                timeout=120,
                what="dispatchers polling",
            )
            due = datetime.now(timezone.utc).replace(microsecond=0)
            insert_due_reminders(app, ids, due=due)
            t0 = time.perf_counter()
            spies = [
                common.profile(p.pid, f"b1-{kind}x{dispatchers}-{name.replace(' ', '')}", seconds=profile_seconds)
                for name, p in procs.items()
                if name.startswith("dispatcher")
            ]
            common.wait_for(lambda: _count(app, "sent") >= n, timeout=900, every=0.1, what=f"{n} messages sent")
            wall = time.perf_counter() - t0
            if scheduler:
                # B5: the scheduler, started now (so its planner does not race the bench's own insert), runs its jobs
                # at once over these 10,000 participants; sample it until plan_messages is done or
                # scheduler_seconds pass.
                procs["scheduler"] = common.spawn(
                    [PY, "-m", "flask", "--app", "wsgi", "scheduler", "--no-dispatch"], env, f"{work}/scheduler.log"
                )
                watcher.named["scheduler"] = procs["scheduler"].pid
                t_sched = time.perf_counter()
                try:
                    common.wait_for(
                        lambda: "job plan_messages" in open(f"{work}/scheduler.log").read(),
                        timeout=scheduler_seconds,
                        every=1,
                        what="scheduler's first plan_messages run",
                    )
                    result["scheduler_plan_messages_s"] = round(time.perf_counter() - t_sched, 1)
                except TimeoutError:
                    result["scheduler_plan_messages_s"] = f"not finished after {scheduler_seconds} s"
            for spy in spies:
                if spy is not None:
                    spy.wait(timeout=profile_seconds + 30)
        finally:
            peaks = watcher.stop()
            for p in procs.values():
                common.stop_process(p)
        received = standin.messages()
        stamps = sorted(datetime.fromisoformat(m["received_at"]).timestamp() for m in received)
        handover = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
        result.update(
            {
                "participants_setup_s": round(setup_s, 2),
                "seconds_commit_to_all_sent": round(wall, 2),
                "per_second": round(n / wall, 1),
                "per_second_first_to_last_handover": round((len(stamps) - 1) / handover, 1),
                "received": len(received),
                "distinct_recipients": len({m["To"] for m in received}),
                "failed_or_retrying": n - _count(app, "sent"),
                "peak_rss_mb": {k: round(v, 1) for k, v in peaks.items()},
            }
        )
        if measure_max:
            result["ratio_to_standin_max"] = round(result["per_second"] / result["standin_max"]["per_second"], 2)
        if scheduler:
            result["scheduler_log_tail"] = [
                line for line in open(f"{work}/scheduler.log").read().splitlines() if "job " in line
            ][-4:]
        app.extensions["database"].engine.dispose()
        return result


def show(result: dict) -> None:
    """Print one variant's figures."""
    print(
        f"-- {result['variant']}: {result['n']} reminders, "
        f"{result['concurrency']} threads x batch {result['batch']} per dispatcher, "
        f"stand-in {result['latency_ms']:g} ms"
        + (f", send cap {result['rate_cap']:g}/s via Redis" if result["rate_cap"] else "")
    )
    print(
        f"   commit -> all sent: {result['seconds_commit_to_all_sent']} s = {result['per_second']} messages/s "
        f"(first->last hand-over {result['per_second_first_to_last_handover']}/s)"
    )
    if "standin_max" in result:
        m = result["standin_max"]
        print(
            f"   stand-in max at the same concurrency: {m['per_second']} messages/s ({m['errors']} errors) "
            f"-> ratio {result['ratio_to_standin_max']}"
        )
    print(
        f"   received {result['received']}, distinct recipients {result['distinct_recipients']}, "
        f"not sent {result['failed_or_retrying']}"
    )
    print(f"   peak RSS MB: {result['peak_rss_mb']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(VARIANTS), action="append")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32, help="DISPATCH_CONCURRENCY per dispatcher")
    parser.add_argument("--batch", type=int, default=200, help="DISPATCH_BATCH_SIZE")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument(
        "--rate-cap", type=float, default=0, help="SEND_RATE_PER_SECOND shared through Redis (0 = uncapped)"
    )
    parser.add_argument("--no-max", action="store_true", help="skip measuring the stand-in's own maximum")
    args = parser.parse_args()
    common.banner("B1 fan-out")
    for name in args.only or ["sqlite", "pg1", "pg2"]:
        kind, dispatchers = VARIANTS[name]
        result = run_fanout(
            kind,
            dispatchers,
            n=args.n,
            concurrency=args.concurrency,
            batch=args.batch,
            latency_ms=args.latency_ms,
            rate_cap=args.rate_cap,
            measure_max=not args.no_max,
        )
        show(result)
        common.record("B1", result)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
