"""B8 crashes: 1,000 due reminders, 2 dispatchers on PostgreSQL, a shared cap of 20/s, 10 SIGKILLs over the run.

    .venv/bin/python bench/b8_crash.py
    .venv/bin/python bench/b8_crash.py --n 1000 --kills 10 --rate-cap 20 --every 4

Real `flask --app wsgi dispatch` processes send into the Twilio stand-in (50 ms) under one send cap
shared through Redis. Every `--every` seconds one of them (in turn) is SIGKILLed and started again
at once, as a supervisor would. Right after each kill we count the rows the dead dispatcher left in
'sending': its provider calls in flight (started, or answered and not yet recorded). The crash rule
then puts those back after SENDING_STALE_AFTER_SECONDS.
Targets: 0 lost (every participant's reminder reached the stand-in), and duplicates no more than
the calls in flight at the kills.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone

import common
from b1_fanout import insert_due_reminders
from common import PY

_READY = re.compile(r"dispatcher (dispatch-[0-9a-f]+) ready")


def _worker_id(log_path: str, after: int) -> str:
    """The id the dispatcher started last in this log announced."""
    found = _READY.findall(open(log_path).read()[after:])
    return found[-1] if found else ""


def start_dispatcher(env: dict[str, str], log_path: str, *, poll: str = "0.5", name: str = "dispatcher"):
    """Start `flask --app wsgi dispatch` logging to `log_path` (appended: a restart keeps the log) and wait until
    it says it is ready; returns (process, the worker id it announced)."""
    offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    proc = common.spawn([PY, "-m", "flask", "--app", "wsgi", "dispatch", "--poll", poll], env, log_path)
    common.wait_for(lambda: _worker_id(log_path, offset), timeout=60, what=f"{name} ready")
    return proc, _worker_id(log_path, offset)


def capped_env(url: str, work: str, standin: common.StandIn, *, tag: str, rate_cap: float, concurrency: int, **extra):
    """The processes' environment with the real Twilio sender pointed at the stand-in and one send cap shared
    through Redis, under a key of this run's own (the Redis server is shared)."""
    key = f"trial:send-rate:{tag}:{os.getpid()}:{time.time_ns()}"
    return common.env_for(
        url,
        work,
        **common.twilio_env(
            standin,
            DISPATCH_CONCURRENCY=concurrency,
            SEND_RATE_PER_SECOND=rate_cap,
            RATELIMIT_STORAGE_URI=common.REDIS_URL,
            SEND_RATE_KEY=key,
            **extra,
        ),
    )


def _rows(app, **where) -> int:
    from sqlalchemy import func, select

    from backend.db import get_database
    from notifications.models import OutboundMessage as O

    query = select(func.count()).select_from(O)
    for column, value in where.items():
        query = query.where(getattr(O, column) == value)
    with get_database(app).engine.connect() as conn:
        return conn.execute(query).scalar_one()


def _unfinished(app) -> int:
    return _rows(app, status="planned") + _rows(app, status="sending")


def _contact_problems(app) -> int:
    from sqlalchemy import func, select

    from backend.db import get_database
    from schedules.models import Alert

    with get_database(app).engine.connect() as conn:
        return conn.execute(select(func.count()).where(Alert.kind == "contact_problem")).scalar_one()


def run(*, n: int, kills: int, every: float, rate_cap: float, concurrency: int, stale_after: int) -> dict:
    """One run end to end; returns its figures."""
    with (
        common.database("pg", "b8") as url,
        tempfile.TemporaryDirectory(prefix="bench-b8-") as work,
        common.StandIn(50) as standin,
    ):
        env = capped_env(
            url,
            work,
            standin,
            tag="b8",
            rate_cap=rate_cap,
            concurrency=concurrency,
            SENDING_STALE_AFTER_SECONDS=stale_after,
        )
        app = common.make_app(env)
        common.migrate(app)
        study_id, site_id = common.study_and_site(app)
        ids = common.bulk_participants(
            app, study_id=study_id, site_id=site_id, n=n, first_dose=datetime.now(timezone.utc).date()
        )
        logs = [f"{work}/dispatch{i}.log" for i in range(2)]

        def start(i: int):
            return start_dispatcher(env, logs[i], name=f"dispatcher {i + 1}")

        procs = [start(0), start(1)]
        in_flight_at_kills: list[int] = []
        try:
            insert_due_reminders(app, ids, due=datetime.now(timezone.utc).replace(microsecond=0))
            t0 = time.perf_counter()
            for k in range(kills):
                time.sleep(every)
                victim = k % 2
                proc, worker = procs[victim]
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                in_flight_at_kills.append(_rows(app, status="sending", claimed_by=worker))
                procs[victim] = start(victim)
            kills_done_s = time.perf_counter() - t0
            # The crash rule returns the last rows after stale_after; dispatchers find them when idle (30 s).
            common.wait_for(lambda: _unfinished(app) == 0, timeout=300, every=0.5, what="every row finished")
            wall = time.perf_counter() - t0
        finally:
            for proc, _ in procs:
                common.stop_process(proc)
        received = Counter(m["To"] for m in standin.messages())
        result = {
            "n": n,
            "dispatchers": 2,
            "rate_cap": rate_cap,
            "concurrency": concurrency,
            "kills": kills,
            "kills_over_s": round(kills_done_s, 1),
            "seconds_to_all_finished": round(wall, 1),
            "in_flight_at_each_kill": in_flight_at_kills,
            "in_flight_at_kills": sum(in_flight_at_kills),
            "reached_standin": len(received),
            "lost": n - len(received),
            "duplicates": sum(received.values()) - len(received),
            "sent": _rows(app, status="sent"),
            "failed_given_up": _rows(app, status="failed"),
            "recovered_once": n - _rows(app, recoveries=0),
            "contact_problem_alerts": _contact_problems(app),
        }
        app.extensions["database"].engine.dispose()
        return result


def show(r: dict) -> None:
    """Print the run's figures and whether the targets held."""
    print(
        f"-- {r['n']} reminders, {r['dispatchers']} dispatchers x {r['concurrency']} threads, "
        f"cap {r['rate_cap']:g}/s via Redis, {r['kills']} SIGKILLs over {r['kills_over_s']} s"
    )
    print(f"   all rows finished after {r['seconds_to_all_finished']} s")
    print(f"   rows in 'sending' at each kill: {r['in_flight_at_each_kill']} (total {r['in_flight_at_kills']})")
    print(
        f"   reached the stand-in {r['reached_standin']} of {r['n']}: lost {r['lost']} (target 0); "
        f"duplicates {r['duplicates']} (target <= {r['in_flight_at_kills']})"
    )
    print(
        f"   sent {r['sent']}, given up {r['failed_given_up']}, recovered once {r['recovered_once']}, "
        f"contact-problem alerts {r['contact_problem_alerts']}"
    )
    ok = r["lost"] == 0 and r["duplicates"] <= r["in_flight_at_kills"]
    print(f"   targets {'met' if ok else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--every", type=float, default=4.0, help="seconds between kills")
    parser.add_argument("--rate-cap", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32, help="DISPATCH_CONCURRENCY per dispatcher")
    parser.add_argument("--stale-after", type=int, default=5, help="SENDING_STALE_AFTER_SECONDS")
    args = parser.parse_args()
    common.banner("B8 crashes")
    result = run(
        n=args.n,
        kills=args.kills,
        every=args.every,
        rate_cap=args.rate_cap,
        concurrency=args.concurrency,
        stale_after=args.stale_after,
    )
    show(result)
    common.record("B8", result)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
