"""B4 enrollment with schedule and planned reminders on PostgreSQL.

    .venv/bin/python bench/b4_enroll.py              # 500 in process, then 500 through the API under gunicorn

(a) in process: the enroll operation (schedule + planned messages), one transaction each, as `participants enroll` does,
    one after another from one client;
(b) the same from `--clients` (default 4) client processes at once, each one after another: what the
    domain code and PostgreSQL sustain with concurrent enrollments (the API's two workers, say), no HTTP;
(c) through `POST /api/v1/participants` with a staff token, gunicorn 2 workers x 4 threads, 8 clients.
Each enrollment writes the participant, every dose of the arm (46 for il2), their audit rows and the
reminders of the next 36 hours. Target: >= 200 participants/s.

    .venv/bin/python bench/b4_enroll.py --plan 10000  # instead: the plan_messages job over 10,000 participants
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

import common
from b2_inbound import free_port, start_gunicorn


def enroller(app):
    """one(i): enroll participant i with schedule and reminders in one transaction, as `participants enroll` does."""
    from sqlmodel import select

    from backend.db import get_database
    from backend.extensions import get_vault
    from backend.operations.participants import enroll
    from schedules.changes import Actor
    from schedules.models import Site, Study

    database, vault, actor = get_database(app), get_vault(app), Actor("cli", "bench")
    first = (datetime.now(timezone.utc) + timedelta(days=1)).date()

    def one(i):
        with app.app_context(), database.session() as session:
            study = session.exec(select(Study)).one()
            site = session.exec(select(Site)).one()
            now = datetime.now(timezone.utc)
            enroll(
                session,
                study=study,
                site=site,
                study_code=f"E-{i:06d}",
                arm="il2" if i % 2 else "control",
                phone=common.phone(500_000 + i),
                time_zone="Asia/Shanghai",
                language="zh-CN",
                reminder_time="20:00",
                first_dose_date=first,
                sms_consent=True,
                vault=vault,
                actor=actor,
                now=now,
            )

    return one


def enroll_in_process(app, n: int, *, profile: bool) -> dict:
    """n sequential enrollments, one transaction each."""
    one = enroller(app)
    profiler = cProfile.Profile() if profile else None
    one(0)  # warm caches (protocol parsing, statement cache) outside the timing
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for i in range(1, n + 1):
        one(i)
    if profiler:
        profiler.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    text = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(
            r"(schedules|notifications|backend)/", 16
        )
        text = out.getvalue()
    return {
        "enrolled": n,
        "seconds": round(elapsed, 2),
        "per_second": round(n / elapsed, 1),
        "ms_each": round(1000 * elapsed / n, 1),
        "client_cpu_ms_each": round(1000 * cpu / n, 1),
        "profile": text,
    }


def worker(start: int, count: int) -> None:
    """A client process for --clients: enroll [start, start + count) once told to go; print its timing as JSON."""
    app = common.make_app(dict(os.environ))
    one = enroller(app)
    one(start)  # warm-up, not timed
    print("ready", flush=True)
    sys.stdin.readline()
    began = time.time()
    for i in range(start + 1, start + count + 1):
        one(i)
    print(json.dumps({"start": began, "end": time.time()}), flush=True)


def enroll_concurrently(env: dict, n: int, clients: int, *, offset: int) -> dict:
    """n enrollments split over `clients` processes, each as enroll_in_process (one transaction per participant)."""
    per = n // clients
    procs = [
        subprocess.Popen(
            [common.PY, __file__, "--worker", str(offset + k * (per + 1)), str(per)],
            cwd=common.ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(clients)
    ]
    for p in procs:  # all imported and warmed up before any is timed
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("a client process did not start")
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    done = per * clients
    return {"enrolled": done, "clients": clients, "seconds": round(elapsed, 2), "per_second": round(done / elapsed, 1)}


def staff_token(app) -> str:
    """An admin account and a bearer token for it."""
    from backend.db import get_database
    from backend.identity.staff import create_staff, issue_staff_token

    with app.app_context(), get_database(app).session() as session:
        staff = create_staff(
            session,
            email="bench-admin@example.org",
            password="correct-Horse-battery-staple-42",
            role="admin",
            site=None,
        )
        session.flush()
        token, _ = issue_staff_token(session, staff=staff, now=datetime.now(timezone.utc), ttl=timedelta(hours=2))
    return token


def enroll_over_http(
    port: int, token: str, n: int, *, clients: int = 8, offset: int = 100_000, prefix: str = "H"
) -> dict:
    """n POSTs from `clients` keep-alive connections; statuses and latency."""
    first = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    lock, cursor = threading.Lock(), iter(range(n))
    statuses: dict[int, int] = {}
    latencies: list[float] = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            body = json.dumps(
                {
                    "study": "NCT04237987",
                    "study_code": f"{prefix}-{i:06d}",
                    "arm": "il2" if i % 2 else "control",
                    "site": "BENCH",
                    "phone": common.phone(offset + i),
                    "time_zone": "Asia/Shanghai",
                    "reminder_time": "20:00",
                    "first_dose_date": first,
                }
            )
            t = time.perf_counter()
            conn.request(
                "POST",
                "/api/v1/participants",
                body,
                {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            response = conn.getresponse()
            response.read()
            with lock:
                latencies.append(time.perf_counter() - t)
                statuses[response.status] = statuses.get(response.status, 0) + 1

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(clients)]
    [t.start() for t in pool]
    [t.join() for t in pool]
    elapsed = time.perf_counter() - started
    return {
        "enrolled": statuses.get(201, 0),
        "statuses": statuses,
        "clients": clients,
        "seconds": round(elapsed, 2),
        "per_second": round(statuses.get(201, 0) / elapsed, 1),
        "p50_ms": round(1000 * common.percentile(latencies, 50), 1),
        "p95_ms": round(1000 * common.percentile(latencies, 95), 1),
    }


def insert_schedules(app, participant_ids: list[int], *, first_dose) -> int:
    """Every il2 dose of each participant (46, as enrollment writes them), through COPY: realistic table sizes, fast."""
    from backend.db import get_database
    from schedules.models import Study
    from schedules.planning import plan_doses
    from schedules.studies import protocol_of
    from schedules.wallclock import parse_hhmm

    database = get_database(app)
    with database.session() as session:
        protocol = protocol_of(session.exec(__import__("sqlmodel").select(Study)).one())
    planned = plan_doses(
        protocol, protocol.arm("il2"), first_dose=first_dose, zone="Asia/Shanghai", reminder_time=parse_hhmm("20:00")
    )
    now = datetime.now(timezone.utc)
    raw = database.engine.raw_connection()
    try:
        with (
            raw.driver_connection.cursor() as cursor,
            cursor.copy(
                "COPY dose (participant_id, seq, local_date, due_at, window_opens_at, window_closes_at, state, note,"
                " updated_at) FROM STDIN"
            ) as copy,
        ):
            for pid in participant_ids:
                for i, d in enumerate(planned, start=1):
                    copy.write_row(
                        (pid, i, d.local_date, d.due_at, d.window_opens_at, d.window_closes_at, "scheduled", "", now)
                    )
        raw.driver_connection.commit()
        raw.driver_connection.execute("ANALYZE")
    finally:
        raw.close()
    return len(participant_ids) * len(planned)


def plan_at_scale(app, n: int) -> dict:
    """The scheduler's plan_messages job (backend.runtime.jobs, as it runs every 60 s) over n active il2 participants
    with full schedules: the first run plans everything, the second finds nothing changed."""
    from backend.runtime.jobs import run_job

    study_id, site_id = common.study_and_site(app)
    # First dose yesterday in Shanghai: a dose window open now and the next dose within 36 hours.
    first = (datetime.now(timezone.utc) + timedelta(hours=8) - timedelta(days=1)).date()
    ids = common.bulk_participants(app, study_id=study_id, site_id=site_id, n=n, first_dose=first)
    doses = insert_schedules(app, ids, first_dose=first)
    runs = []
    for label in ("first run (plans everything)", "second run (nothing changed)"):
        started = time.perf_counter()
        summary = run_job(app, "plan_messages")
        runs.append({"run": label, "seconds": round(time.perf_counter() - started, 2), "summary": summary})
    return {"participants": n, "doses": doses, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--clients", type=int, default=4, help="client processes for the concurrent in-process figure (0: skip it)"
    )
    parser.add_argument(
        "--plan", type=int, metavar="N", help="instead: time the plan_messages job over N participants (e.g. 10000)"
    )
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker)
    common.banner("B4 plan_messages at scale (PostgreSQL)" if args.plan else "B4 enrollment (PostgreSQL)")
    with common.database("pg", "b4") as url, tempfile.TemporaryDirectory(prefix="bench-b4-") as work:
        env = common.env_for(url, work)
        app = common.make_app(env)
        common.migrate(app)
        if args.plan:
            result = plan_at_scale(app, args.plan)
            for run in result["runs"]:
                print(
                    f"-- plan_messages over {result['participants']:,} participants "
                    f"({result['doses']:,} doses), {run['run']}: "
                    f"{run['seconds']} s; {run['summary']}"
                )
            common.record("B4-plan", result)
            app.extensions["database"].engine.dispose()
            return
        common.study_and_site(app)
        a = enroll_in_process(app, args.n, profile=args.profile)
        print(
            f"-- in process, one client, one transaction each: "
            f"{a['enrolled']} in {a['seconds']} s = {a['per_second']}/s "
            f"({a['ms_each']} ms each, of which {a['client_cpu_ms_each']} ms CPU in this process)  (target >= 200/s)"
        )
        if a["profile"]:
            print(a["profile"])
        c = enroll_concurrently(env, args.n, args.clients, offset=200_000) if args.clients else None
        if c:
            print(
                f"-- in process, {c['clients']} client processes, one transaction each: "
                f"{c['enrolled']} in {c['seconds']} s = {c['per_second']}/s"
            )
        token = staff_token(app)
        port = free_port()
        web = start_gunicorn(env, port, "wsgi:app", f"{work}/web.log")
        try:
            enroll_over_http(port, token, 16, offset=900_000, prefix="W")  # warm both workers
            b = enroll_over_http(port, token, args.n)
        finally:
            common.stop_process(web)
        print(
            f"-- POST /api/v1/participants, gunicorn 2x4, {b['clients']} clients: "
            f"{b['enrolled']} in {b['seconds']} s = {b['per_second']}/s, "
            f"p50 {b['p50_ms']} ms, p95 {b['p95_ms']} ms, statuses {b['statuses']}"
        )
        common.record(
            "B4", {"in_process": {k: v for k, v in a.items() if k != "profile"}, "in_process_concurrent": c, "http": b}
        )
        app.extensions["database"].engine.dispose()


if __name__ == "__main__":
    main()
