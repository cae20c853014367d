"""B7 the embedded default under write load: gunicorn 4 workers on SQLite, 4 x 50 concurrent writes.

    .venv/bin/python bench/b7_sqlite_writes.py

Four clients, each firing 50 writes at the same moment (200 in flight): half signed inbound SMS
("1" from 100 participants whose dose window is open), half staff enrollments through the API
(each writing a participant, 46 doses and their audit rows). The database is tuned on purpose
(backend/db.py): WAL, busy_timeout 30 s, BEGIN IMMEDIATE for every transaction, so writers queue
instead of failing. Target: zero "database is locked", every write answered 2xx; p95 reported.
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

import common
from b2_inbound import free_port, insert_open_doses, signed_requests, start_gunicorn
from b4_enroll import staff_token


def fire(port: int, jobs: list[tuple[str, str, dict]]) -> list[dict]:
    """Start one thread per job, release them together, return status and latency of each."""
    barrier = threading.Barrier(len(jobs))
    results: list[dict] = []
    lock = threading.Lock()

    def one(kind, body, headers):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        barrier.wait()
        t = time.perf_counter()
        try:
            path = "/sms/inbound" if kind == "webhook" else "/api/v1/participants"
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            text = response.read().decode(errors="replace")
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            status, text = 0, type(exc).__name__
        with lock:
            results.append(
                {"kind": kind, "status": status, "ms": 1000 * (time.perf_counter() - t), "locked": "locked" in text}
            )

    threads = [threading.Thread(target=one, args=job) for job in jobs]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--per-client", type=int, default=50)
    args = parser.parse_args()
    total = args.clients * args.per_client
    common.banner(f"B7 SQLite under gunicorn 4 workers: {args.clients} x {args.per_client} concurrent writes")
    with common.database("sqlite", "b7") as url, tempfile.TemporaryDirectory(prefix="bench-b7-") as work:
        env = common.env_for(url, work)
        app = common.make_app(env)
        common.migrate(app)
        study_id, site_id = common.study_and_site(app)
        texters = total // 2
        ids = common.bulk_participants(
            app, study_id=study_id, site_id=site_id, n=texters, first_dose=datetime.now(timezone.utc).date()
        )
        insert_open_doses(app, ids)
        token = staff_token(app)
        webhooks = signed_requests(
            "B7", texters, texters, token=env["TWILIO_AUTH_TOKEN"], base_url=env["PUBLIC_BASE_URL"]
        )
        first = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
        jobs = [
            ("webhook", body, {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
            for sig, body in webhooks
        ]
        jobs += [
            (
                "enroll",
                json.dumps(
                    {
                        "study": "NCT04237987",
                        "study_code": f"S-{i:05d}",
                        "arm": "il2",
                        "site": "BENCH",
                        "phone": common.phone(700_000 + i),
                        "time_zone": "Asia/Shanghai",
                        "reminder_time": "20:00",
                        "first_dose_date": first,
                    }
                ),
                {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            for i in range(total - texters)
        ]
        # Interleave so each client's 50 mix both kinds.
        jobs = [job for pair in zip(jobs[:texters], jobs[texters:]) for job in pair]
        port = free_port()
        web = start_gunicorn(env, port, "wsgi:app", f"{work}/web.log", workers=4)
        try:
            started = time.perf_counter()
            results = fire(port, jobs)
            wall = time.perf_counter() - started
        finally:
            common.stop_process(web)
        log = open(f"{work}/web.log").read()
        from sqlalchemy import text

        from backend.db import get_database

        with get_database(app).engine.connect() as conn:
            inbound = conn.execute(text("SELECT count(*) FROM inboundmessage")).scalar_one()
            enrolled = conn.execute(text("SELECT count(*) FROM participant WHERE study_code LIKE 'S-%'")).scalar_one()
        app.extensions["database"].engine.dispose()

    statuses: dict[str, dict[int, int]] = {}
    for r in results:
        statuses.setdefault(r["kind"], {}).setdefault(r["status"], 0)
        statuses[r["kind"]][r["status"]] += 1
    ms = [r["ms"] for r in results]
    by_kind = {
        kind: round(common.percentile([r["ms"] for r in results if r["kind"] == kind], 95), 1)
        for kind in ("webhook", "enroll")
    }
    locked = sum(r["locked"] for r in results) + log.count("database is locked")
    out = {
        "writes": total,
        "wall_s": round(wall, 2),
        "statuses": statuses,
        "database_is_locked": locked,
        "p50_ms": round(common.percentile(ms, 50), 1),
        "p95_ms": round(common.percentile(ms, 95), 1),
        "max_ms": round(max(ms), 1),
        "p95_by_kind_ms": by_kind,
        "rows": {"inbound": inbound, "enrolled": enrolled},
        "errors_logged": log.count('"level": "ERROR"'),
    }
    print(f"-- {total} writes released together, done in {out['wall_s']} s: statuses {statuses}")
    print(f"   'database is locked': {locked} (target 0); ERROR lines logged: {out['errors_logged']}")
    print(
        f"   latency p50 {out['p50_ms']} ms, p95 {out['p95_ms']} ms, max {out['max_ms']} ms; "
        f"p95 webhook {by_kind['webhook']} ms, enroll {by_kind['enroll']} ms"
    )
    print(f"   rows: {inbound} inbound messages, {enrolled} enrolled")
    common.record("B7", out)


if __name__ == "__main__":
    main()
