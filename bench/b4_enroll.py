"""B4 enrollment with schedule and planned reminders on PostgreSQL.

    .venv/bin/python bench/b4_enroll.py              # 500 in process, then 500 through the API under gunicorn

(a) in process: enroll_participant + sync_messages, one transaction each, as `participants enroll` does;
(b) through `POST /api/v1/participants` with a staff token, gunicorn 2 workers x 4 threads, 8 clients.
Each enrollment writes the participant, every dose of the arm (46 for il2), their audit rows and the
reminders of the next 36 hours. Target: >= 200 participants/s.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import pstats
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

import common
from b2_inbound import free_port, start_gunicorn


def enroll_in_process(app, n: int, *, profile: bool) -> dict:
    """n sequential enrollments, one transaction each."""
    from sqlmodel import select

    from backend.db import get_database
    from backend.participant_views import sync_messages
    from backend.services import get_vault
    from schedules.changes import Actor
    from schedules.models import Site, Study
    from schedules.participants import enroll_participant

    database, vault, actor = get_database(app), get_vault(app), Actor("cli", "bench")
    first = (datetime.now(timezone.utc) + timedelta(days=1)).date()
    profiler = cProfile.Profile() if profile else None

    def one(i):
        with app.app_context(), database.session() as session:
            study = session.exec(select(Study)).one()
            site = session.exec(select(Site)).one()
            now = datetime.now(timezone.utc)
            p = enroll_participant(session, study=study, site=site, study_code=f"E-{i:06d}", arm="il2" if i % 2 else "control",
                                   phone=common.phone(500_000 + i), time_zone="Asia/Shanghai", language="zh-CN", reminder_time="20:00",
                                   first_dose_date=first, sms_consent=True, vault=vault, actor=actor, now=now)
            sync_messages(session, p, now=now)

    one(0)  # warm caches (protocol parsing, statement cache) outside the timing
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for i in range(1, n + 1):
        one(i)
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    text = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(r"(schedules|notifications|backend)/", 16)
        text = out.getvalue()
    return {"enrolled": n, "seconds": round(elapsed, 2), "per_second": round(n / elapsed, 1), "ms_each": round(1000 * elapsed / n, 1), "profile": text}


def staff_token(app) -> str:
    """An admin account and a bearer token for it."""
    from backend.auth import create_staff, issue_staff_token
    from backend.db import get_database

    with app.app_context(), get_database(app).session() as session:
        staff = create_staff(session, email="bench-admin@example.org", password="correct-Horse-battery-staple-42", role="admin", site=None)
        session.flush()
        token, _ = issue_staff_token(session, staff=staff, now=datetime.now(timezone.utc), ttl=timedelta(hours=2))
    return token


def enroll_over_http(port: int, token: str, n: int, *, clients: int = 8, offset: int = 100_000, prefix: str = "H") -> dict:
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
            body = json.dumps({"study": "NCT04237987", "study_code": f"{prefix}-{i:06d}", "arm": "il2" if i % 2 else "control", "site": "BENCH",
                               "phone": common.phone(offset + i), "time_zone": "Asia/Shanghai", "reminder_time": "20:00",
                               "first_dose_date": first})
            t = time.perf_counter()
            conn.request("POST", "/api/v1/participants", body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
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
    return {"enrolled": statuses.get(201, 0), "statuses": statuses, "clients": clients, "seconds": round(elapsed, 2),
            "per_second": round(statuses.get(201, 0) / elapsed, 1), "p50_ms": round(1000 * common.percentile(latencies, 50), 1),
            "p95_ms": round(1000 * common.percentile(latencies, 95), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    common.banner("B4 enrollment (PostgreSQL)")
    with common.database("pg", "b4") as url, tempfile.TemporaryDirectory(prefix="bench-b4-") as work:
        env = common.env_for(url, work)
        app = common.make_app(env)
        common.migrate(app)
        common.study_and_site(app)
        a = enroll_in_process(app, args.n, profile=args.profile)
        print(f"-- in process, one transaction each: {a['enrolled']} in {a['seconds']} s = {a['per_second']}/s ({a['ms_each']} ms each)  (target >= 200/s)")
        if a["profile"]:
            print(a["profile"])
        token = staff_token(app)
        port = free_port()
        web = start_gunicorn(env, port, "wsgi:app", f"{work}/web.log")
        try:
            enroll_over_http(port, token, 16, offset=900_000, prefix="W")  # warm both workers
            b = enroll_over_http(port, token, args.n)
        finally:
            common.stop_process(web)
        print(f"-- POST /api/v1/participants, gunicorn 2x4, {b['clients']} clients: {b['enrolled']} in {b['seconds']} s = {b['per_second']}/s, "
              f"p50 {b['p50_ms']} ms, p95 {b['p95_ms']} ms, statuses {b['statuses']}")
        common.record("B4", {"in_process": {k: v for k, v in a.items() if k != "profile"}, "http": b})
        app.extensions["database"].engine.dispose()


if __name__ == "__main__":
    main()
