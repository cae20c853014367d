"""B2 inbound webhook under load: gunicorn (2 workers) on PostgreSQL vs a bare Flask endpoint in the same server config.

    .venv/bin/python bench/b2_inbound.py  # needs wrk (apt-get install -y wrk); falls back to a Python generator

1. Maximum rate: wrk (closed loop, 16 connections, 15 s) against the real /sms/inbound and against
   bench/bare_app.py, both served by `gunicorn -c infra/gunicorn.conf.py`. Every request is a distinct,
   correctly signed Twilio inbound message from an enrolled participant ("1", "HELP", "1", free text).
2. Latency at half the real maximum: an open-loop generator (requests scheduled at a fixed rate, latency
   measured from the scheduled time, so a stall is not hidden), 15 s.
3. Exactly once: inbound rows = distinct MessageSids answered 200, one reply row per message we answered,
   one 'taken' dose event per participant at most.
Targets: real/bare >= 0.5, p99 < 100 ms at half the maximum, no errors.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

import common
from common import PY, ROOT

BODIES = ("1", "HELP", "1", "my knee is swollen since yesterday")


def insert_open_doses(app, participant_ids: list[int]) -> None:
    """One dose per participant whose window is open now, so '1' records it."""
    from sqlalchemy import insert

    from backend.db import get_database
    from schedules.models import Dose

    now = datetime.now(timezone.utc)
    rows = [
        {
            "participant_id": pid,
            "seq": 1,
            "local_date": now.date(),
            "due_at": now - timedelta(hours=1),
            "window_opens_at": now - timedelta(hours=13),
            "window_closes_at": now + timedelta(hours=11),
            "state": "scheduled",
            "note": "",
            "updated_at": now,
        }
        for pid in participant_ids
    ]
    with get_database(app).engine.begin() as conn:
        for k in range(0, len(rows), 1000):
            conn.execute(insert(Dose.__table__), rows[k : k + 1000])


def signed_requests(prefix: str, count: int, participants: int, *, token: str, base_url: str) -> list[tuple[str, str]]:
    """(signature, form body) pairs: distinct MessageSids, round-robin over participants, bodies in rounds."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(token)
    url = base_url.rstrip("/") + "/sms/inbound"
    out = []
    for i in range(count):
        who, round_ = i % participants, i // participants
        params = {
            "MessageSid": f"SM{prefix}{i:024d}"[:34],
            "AccountSid": "AC" + "0" * 32,
            "From": common.phone(who),
            "To": "+861088325555",
            "Body": BODIES[round_ % len(BODIES)],
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        out.append((validator.compute_signature(url, params), urllib.parse.urlencode(params)))
    return out


def start_gunicorn(env: dict, port: int, app_path: str, log: str, *, workers: int = 2, pythonpath: str | None = None):
    """gunicorn with infra/gunicorn.conf.py, as in production; waits for /healthz."""
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
    args = (
        [PY, "-m", "gunicorn", "-c", "infra/gunicorn.conf.py"]
        + (["--pythonpath", pythonpath] if pythonpath else [])
        + [app_path]
    )
    proc = common.spawn(args, env, log)
    common.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=90)
    return proc


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_all(port: int, requests: list[tuple[str, str]], *, threads: int = 8) -> dict:
    """Send each request once (closed loop); for warm-up and the fallback generator."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    cursor = iter(range(len(requests)))

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            sig, body = requests[i]
            t = time.perf_counter()
            conn.request(
                "POST",
                "/sms/inbound",
                body,
                {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig},
            )
            response = conn.getresponse()
            response.read()
            with lock:
                latencies.append(time.perf_counter() - t)
                statuses[response.status] = statuses.get(response.status, 0) + 1

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    [t.start() for t in pool]
    [t.join() for t in pool]
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "per_second": round(len(latencies) / elapsed, 1),
        "ok": statuses.get(200, 0),
        "status_errors": len(latencies) - statuses.get(200, 0),
        "statuses": statuses,
        "p50_ms": round(1000 * common.percentile(latencies, 50), 2),
        "p99_ms": round(1000 * common.percentile(latencies, 99), 2),
    }


def wrk_max(
    port: int, requests: list[tuple[str, str]], work: str, *, seconds: int, connections: int = 16, threads: int = 2
) -> dict:
    """Closed-loop maximum with wrk; the Python generator if wrk is not installed."""
    if shutil.which("wrk") is None:
        print("   (wrk not found: using the Python generator, which needs CPU itself; apt-get install -y wrk)")
        return {**post_all(port, requests[: 400 * seconds], threads=connections), "tool": "python"}
    path = f"{work}/requests-{port}.tsv"
    with open(path, "w") as handle:
        handle.writelines(f"{sig}\t{body}\n" for sig, body in requests)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "wrk_inbound.lua"),
            f"http://127.0.0.1:{port}",
            "--",
            path,
            str(threads),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    result["per_second"] = round(result["requests"] / result["seconds"], 1)
    result["wrapped"] = result["requests"] > len(requests)  # beyond the list: replays, answered as duplicates
    result["tool"] = f"wrk -t{threads} -c{connections}"
    return result


def open_loop(port: int, requests: list[tuple[str, str]], *, rate: float, seconds: float, threads: int = 32) -> dict:
    """Requests scheduled at `rate`/s; latency counted from each one's scheduled time (no coordinated omission)."""
    total = min(len(requests), int(rate * seconds))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))
    t0 = time.perf_counter() + 0.5

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            due = t0 + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            sig, body = requests[i]
            try:
                conn.request(
                    "POST",
                    "/sms/inbound",
                    body,
                    {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig},
                )
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                with lock:
                    errors.append(type(exc).__name__)
                continue
            with lock:
                latencies.append(time.perf_counter() - due)
                statuses[status] = statuses.get(status, 0) + 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    [t.start() for t in pool]
    [t.join() for t in pool]
    achieved = len(latencies) / max(1e-9, time.perf_counter() - t0)
    return {
        "target_rate": round(rate, 1),
        "achieved_rate": round(achieved, 1),
        "requests": total,
        "ok": statuses.get(200, 0),
        "statuses": statuses,
        "errors": len(errors),
        "p50_ms": round(1000 * common.percentile(latencies, 50), 2),
        "p90_ms": round(1000 * common.percentile(latencies, 90), 2),
        "p99_ms": round(1000 * common.percentile(latencies, 99), 2),
        "max_ms": round(1000 * max(latencies or [0]), 2),
    }


def profile_inbound(app, requests: list[tuple[str, str]]) -> str:
    """cProfile of the real handler in process (Flask test client, same database): where one request's time goes."""
    import cProfile
    import io
    import pstats

    client = app.test_client()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for sig, body in requests:
        client.post(
            "/sms/inbound",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig},
        )
    profiler.disable()
    each = 1000 * (time.perf_counter() - started) / len(requests)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(r"(schedules|notifications|backend)/", 22)
    counts = io.StringIO()
    stats = pstats.Stats(profiler, stream=counts)
    executes = sum(v[0] for k, v in stats.stats.items() if k[2] in ("execute",) and "psycopg" in k[0])
    return (
        f"in process: {each:.1f} ms per request (profiled), {executes / len(requests):.1f} SQL statements per request\n"
        + out.getvalue()
    )


def exactly_once(app) -> dict:
    """What the database holds after the run."""
    from sqlalchemy import text

    from backend.db import get_database

    with get_database(app).engine.connect() as conn:
        one = lambda sql: conn.execute(text(sql)).scalar_one()  # noqa: E731
        return {
            "inbound_rows": one("SELECT count(*) FROM inboundmessage"),
            "distinct_sids": one("SELECT count(DISTINCT message_sid) FROM inboundmessage"),
            "reply_rows": one("SELECT count(*) FROM outboundmessage WHERE purpose = 'reply'"),
            # HELP gets no TwiML from us while the carrier answers its keywords (SMS_KEYWORD_REPLIES=twilio).
            "answered_rows": one("SELECT count(*) FROM inboundmessage WHERE reply_body <> ''"),
            "doses_taken": one("SELECT count(*) FROM dose WHERE state IN ('taken', 'taken_late')"),
            "taken_events": one("SELECT count(*) FROM doseevent WHERE to_state IN ('taken', 'taken_late')"),
            "unprocessed": one("SELECT count(*) FROM inboundmessage WHERE processed_at IS NULL"),
        }


@contextlib.contextmanager
def inbound_setup(tag: str, participants: int):
    """A fresh PostgreSQL database with `participants` enrolled, each with a dose open now; yields
    (app, env, work directory, sign) where sign(prefix, n) makes n signed inbound requests."""
    with common.database("pg", tag) as url, tempfile.TemporaryDirectory(prefix=f"bench-{tag}-") as work:
        env = common.env_for(url, work, TWILIO_AUTH_TOKEN=common.SECRETS["TWILIO_AUTH_TOKEN"], LOG_FORMAT="json")
        app = common.make_app(env)
        common.migrate(app)
        study_id, site_id = common.study_and_site(app)
        ids = common.bulk_participants(
            app, study_id=study_id, site_id=site_id, n=participants, first_dose=datetime.now(timezone.utc).date()
        )
        insert_open_doses(app, ids)
        try:
            yield (
                app,
                env,
                work,
                lambda prefix, n: signed_requests(
                    prefix, n, participants, token=env["TWILIO_AUTH_TOKEN"], base_url=env["PUBLIC_BASE_URL"]
                ),
            )
        finally:
            app.extensions["database"].engine.dispose()  # before the database is dropped


def run_inbound(
    *,
    participants: int = 2000,
    seconds: int = 15,
    connections: int = 16,
    profile_seconds: int = 10,
    profile: bool = False,
) -> dict:
    """The whole comparison; returns the figures and the web workers' peak RSS."""
    with inbound_setup("b2", participants) as (app, env, work, sign):
        warm, load, half = sign("W", 200), sign("L", 40_000), sign("H", 20_000)

        real_port, bare_port = free_port(), free_port()
        real = start_gunicorn(env, real_port, "wsgi:app", f"{work}/real.log")
        bare = start_gunicorn(env, bare_port, "bare_app:app", f"{work}/bare.log", pythonpath=str(ROOT / "bench"))
        watcher = common.RssWatcher({"web": real.pid}).start()
        try:
            warm_real, warm_bare = post_all(real_port, warm), post_all(bare_port, warm)
            bare_max = wrk_max(bare_port, load, work, seconds=seconds, connections=connections)
            spies = [
                common.profile(pid, f"b2-web-worker{k}", seconds=profile_seconds)
                for k, pid in enumerate(common.children(real.pid))
            ]
            real_max = wrk_max(real_port, load, work, seconds=seconds, connections=connections)
            for spy in spies:
                if spy is not None:
                    spy.wait(timeout=profile_seconds + 30)
            at_half = open_loop(real_port, half, rate=real_max["per_second"] / 2, seconds=seconds)
            db = exactly_once(app)
        finally:
            peaks = watcher.stop()
            common.stop_process(real)
            common.stop_process(bare)
        log_text = open(f"{work}/real.log").read()
        profile_text = profile_inbound(app, sign("P", 400)) if profile else ""
        sent_real = warm_real["ok"] + (min(real_max["requests"], len(load)) - real_max["status_errors"]) + at_half["ok"]
        return {
            "participants": participants,
            "seconds": seconds,
            "connections": connections,
            "warmup": {"real": warm_real["statuses"], "bare": warm_bare["statuses"]},
            "bare_max": bare_max,
            "real_max": real_max,
            "ratio": round(real_max["per_second"] / bare_max["per_second"], 3),
            "at_half_rate": at_half,
            "database": db,
            "distinct_messages_answered_200": sent_real,
            # wrk stops counting at the deadline with up to one request per connection still in flight:
            # those are processed (rows) but not counted (answered), hence the tolerance of `connections`.
            "exactly_once": (
                db["inbound_rows"] == db["distinct_sids"]
                and db["reply_rows"] == db["answered_rows"]
                and 0 <= db["inbound_rows"] - sent_real <= connections
                and db["unprocessed"] == 0
                and db["taken_events"] == db["doses_taken"] <= participants
            ),
            "server_errors_logged": log_text.count('"level": "ERROR"'),
            "peak_rss_mb": {k: round(v, 1) for k, v in peaks.items()},
            "profile": profile_text,
        }


def show(r: dict) -> None:
    """Print the figures."""
    b, m, h = r["bare_max"], r["real_max"], r["at_half_rate"]
    print(f"-- maximum rate ({m['tool']}, {r['seconds']} s each)")
    print(
        f"   bare Flask endpoint : {b['per_second']} req/s, p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms, "
        f"errors {b.get('status_errors', 0)}"
    )
    print(
        f"   real /sms/inbound   : {m['per_second']} req/s, p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms, "
        f"errors {m.get('status_errors', 0)}"
        f" (non-2xx {m.get('status_errors', 0)}, "
        f"socket {m.get('connect_errors', 0) + m.get('read_errors', 0) + m.get('write_errors', 0)}, "
        f"timeouts {m.get('timeouts', 0)})"
    )
    print(f"   ratio real/bare     : {r['ratio']}  (target >= 0.5)")
    print(f"-- open loop at half the real maximum: target {h['target_rate']}/s, achieved {h['achieved_rate']}/s")
    print(
        f"   p50 {h['p50_ms']} ms, p90 {h['p90_ms']} ms, p99 {h['p99_ms']} ms (target < 100), max {h['max_ms']} ms; "
        f"statuses {h['statuses']}, errors {h['errors']}"
    )
    print(
        f"-- exactly once: {r['exactly_once']}  {r['database']}  (answered 200: {r['distinct_messages_answered_200']},"
        f" plus at most {r['connections']} in flight when wrk stopped)"
    )
    print(f"   ERROR lines in the server log: {r['server_errors_logged']}; peak RSS MB: {r['peak_rss_mb']}")
    if r.get("profile"):
        print(r["profile"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--profile", action="store_true", help="also cProfile 400 requests in process")
    args = parser.parse_args()
    common.banner("B2 inbound webhook under load (PostgreSQL, gunicorn 2 workers x 4 threads)")
    result = run_inbound(
        participants=args.participants, seconds=args.seconds, connections=args.connections, profile=args.profile
    )
    show(result)
    common.record("B2", {k: v for k, v in result.items() if k != "profile"})


if __name__ == "__main__":
    main()
