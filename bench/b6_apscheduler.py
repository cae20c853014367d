"""B6 the design we did not choose: one APScheduler date job per reminder in a SQLAlchemyJobStore, beside ours.

    .venv/bin/python bench/b6_apscheduler.py

B1's 10,000 reminders due in the same minute, PostgreSQL, the stand-in at 50 ms, 16 sending threads:
- APScheduler 3: 10,000 `date` jobs in a SQLAlchemyJobStore (time to add them), then a BackgroundScheduler
  with a 16-thread pool runs them; each job loads its outbox row, sends, marks it sent (what a per-reminder
  job has to do). Run twice: APScheduler's default misfire_grace_time (1 s), and None (run however late).
- ours: one `flask --app wsgi dispatch` with DISPATCH_CONCURRENCY=16 on the same data (bench/b1_fanout.py).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

import common
from b1_fanout import insert_due_reminders, run_fanout

APP = None  # the job function below reaches the app through this (jobs are stored by reference, not pickled closures)


def send_reminder(outbox_id: int) -> None:
    """One reminder as a per-reminder job would send it: load, decrypt, send, mark sent, commit."""
    from backend.db import get_database
    from backend.extensions import get_sender, get_vault
    from notifications.models import OutboundMessage
    from schedules.models import Participant

    with get_database(APP).session() as session:
        row = session.get(OutboundMessage, outbox_id)
        if row is None or row.status != "planned":
            return
        participant = session.get(Participant, row.participant_id)
        result = get_sender(APP).send(to=get_vault(APP).decrypt(participant.phone_ciphertext), body=row.body)
        row.status, row.provider_sid, row.sent_at = "sent", result.provider_sid, datetime.now(timezone.utc)
        session.add(row)


def _ids(app, prefix: str) -> list[int]:
    from sqlalchemy import select

    from backend.db import get_database
    from notifications.models import OutboundMessage

    with get_database(app).engine.connect() as conn:
        return list(
            conn.execute(
                select(OutboundMessage.id)
                .where(OutboundMessage.dedupe_key.like(f"{prefix}%"))
                .order_by(OutboundMessage.id)
            ).scalars()
        )


def _sent(app, ids: list[int]) -> int:
    from sqlalchemy import func, select

    from backend.db import get_database
    from notifications.models import OutboundMessage

    with get_database(app).engine.connect() as conn:
        return conn.execute(
            select(func.count()).where(OutboundMessage.status == "sent", OutboundMessage.id.between(ids[0], ids[-1]))
        ).scalar_one()


def add_jobs(url: str, table: str, ids: list[int], run_date: datetime, *, grace: int | None = 1) -> float:
    """Add one date job per reminder to a SQLAlchemyJobStore (scheduler paused); seconds taken."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url, tablename=table)}, timezone="UTC")
    scheduler.start(paused=True)
    started = time.perf_counter()
    for outbox_id in ids:
        # The grace time is stored with each job: set here, not in the scheduler that later runs them.
        scheduler.add_job(
            send_reminder,
            "date",
            run_date=run_date,
            args=[outbox_id],
            id=f"reminder-{outbox_id}",
            misfire_grace_time=grace,
        )
    elapsed = time.perf_counter() - started
    scheduler.shutdown(wait=False)
    return elapsed


def fire(app, url: str, ids: list[int], *, grace: int | None, threads: int, add_estimate: float) -> dict:
    """Store the jobs, let them come due together, and time until they are all sent (or stop coming)."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    table = f"apscheduler_fire_{'none' if grace is None else grace}"
    due = datetime.now(timezone.utc) + timedelta(seconds=add_estimate * 1.3 + 10)
    add_jobs(url, table, ids, due, grace=grace)
    missed, errors = [], []
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url, tablename=table)},
        executors={"default": ThreadPoolExecutor(threads)},
        job_defaults={"misfire_grace_time": grace, "coalesce": False},
        timezone="UTC",
    )
    lock = threading.Lock()

    def listen(event):
        with lock:
            (missed if event.code == EVENT_JOB_MISSED else errors).append(event.job_id)

    scheduler.add_listener(listen, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    scheduler.start()
    time.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()))
    t0 = time.perf_counter()
    last, last_change = -1, time.perf_counter()
    while time.perf_counter() - t0 < 900:
        sent = _sent(app, ids)
        with lock:
            settled = sent + len(missed) + len(errors)
        if settled >= len(ids):
            break
        if sent != last:
            last, last_change = sent, time.perf_counter()
        elif time.perf_counter() - last_change > 30:
            break  # nothing more is coming
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    scheduler.shutdown(wait=True)
    sent = _sent(app, ids)
    return {
        "misfire_grace_time": grace,
        "sent": sent,
        "missed": len(missed),
        "errors": len(errors),
        "seconds": round(wall, 2),
        "per_second": round(sent / wall, 1),
    }


def main() -> None:
    global APP
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    common.banner("B6 APScheduler date job per reminder vs our outbox dispatcher")
    with (
        common.database("pg", "b6") as url,
        tempfile.TemporaryDirectory(prefix="bench-b6-") as work,
        common.StandIn(50) as standin,
    ):
        env = common.env_for(url, work, **common.twilio_env(standin))
        APP = common.make_app(env)
        common.migrate(APP)
        study_id, site_id = common.study_and_site(APP)
        pids = common.bulk_participants(
            APP, study_id=study_id, site_id=site_id, n=args.n, first_dose=datetime.now(timezone.utc).date()
        )
        far = datetime.now(timezone.utc) + timedelta(days=1)
        # Outbox rows exist as our planner leaves them; APScheduler's jobs point at them. Not due for our dispatcher.
        insert_due_reminders(APP, pids, due=far, seq=1)
        first = _ids(APP, "dose_reminder:")
        insert_due_reminders(APP, pids, due=far, seq=2)
        second = sorted(set(_ids(APP, "dose_reminder:")) - set(first))
        ids = first
        add_s = add_jobs(url, "apscheduler_add", ids, far)
        print(
            f"-- APScheduler: adding {len(ids)} date jobs to SQLAlchemyJobStore took {add_s:.1f} s "
            f"({len(ids) / add_s:.0f} jobs/s)"
        )
        runs = []
        for grace, batch in ((1, first), (None, second)):
            standin.control(reset=True, latency_ms=50)
            r = fire(APP, url, batch, grace=grace, threads=args.threads, add_estimate=add_s)
            r["jobs"] = len(batch)
            runs.append(r)
            print(
                f"   misfire_grace_time={grace}: {r['jobs']} jobs due together -> "
                f"sent {r['sent']}, missed {r['missed']}, "
                f"errors {r['errors']} in {r['seconds']} s = {r['per_second']} messages/s"
            )
        APP.extensions["database"].engine.dispose()
    ours = run_fanout("pg", 1, n=args.n, concurrency=args.threads, batch=100, measure_max=False)
    print(
        f"-- ours (outbox + 1 dispatcher, {args.threads} threads): "
        f"{ours['n']} sent in {ours['seconds_commit_to_all_sent']} s = "
        f"{ours['per_second']} messages/s, nothing to add per reminder beyond its outbox row"
    )
    common.record(
        "B6",
        {
            "apscheduler_add_s": round(add_s, 2),
            "apscheduler_add_per_s": round(len(ids) / add_s, 1),
            "apscheduler_runs": runs,
            "ours": {k: ours[k] for k in ("n", "seconds_commit_to_all_sent", "per_second", "concurrency", "batch")},
        },
    )


if __name__ == "__main__":
    main()
