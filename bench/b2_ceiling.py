"""B2's ceiling: how close to the bare endpoint any webhook inside this app can get, under the same gunicorn config.

    .venv/bin/python bench/b2_ceiling.py            # needs wrk (apt-get install -y wrk); PostgreSQL

Three pairs, each measured back to back with wrk (2 threads x 16 connections) on loopback:
1. GET /healthz: the bare Flask app vs the real app (what the real app's per-request machinery costs:
   request id, JSON log line, metrics, session and security hooks);
2. POST /sms/inbound: the bare endpoint vs bench/store_only_app.py (the real app with the webhook cut to
   signature check + one INSERT of the raw row + empty TwiML: a store-first, act-later design's best case);
3. POST /sms/inbound: the bare endpoint vs the real webhook (as b2_inbound.py measures it).
B2's target is ratio >= 0.5 for the real webhook; this script shows which designs could reach it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

import common
from b2_inbound import free_port, inbound_setup, start_gunicorn, wrk_max
from common import ROOT


def wrk_get(port: int, path: str, *, seconds: int, connections: int) -> dict:
    """Closed-loop maximum of a GET with wrk."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    rate = float(next(line.split()[-1] for line in out.splitlines() if line.startswith("Requests/sec")))
    non2xx = next((int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line), 0)
    return {"per_second": rate, "non_2xx": non2xx}


def run(*, participants: int, seconds: int, connections: int) -> dict:
    """Start the three servers on one database and measure the three pairs."""
    with inbound_setup("b2c", participants) as (app, env, work, sign):
        ports = {name: free_port() for name in ("bare", "real", "store")}
        servers = [
            start_gunicorn(env, ports["bare"], "bare_app:app", f"{work}/bare.log", pythonpath=str(ROOT / "bench")),
            start_gunicorn(env, ports["real"], "wsgi:app", f"{work}/real.log"),
            start_gunicorn(
                env, ports["store"], "store_only_app:app", f"{work}/store.log", pythonpath=str(ROOT / "bench")
            ),
        ]
        try:
            out = {}
            bare_health = wrk_get(ports["bare"], "/healthz", seconds=seconds, connections=connections)
            real_health = wrk_get(ports["real"], "/healthz", seconds=seconds, connections=connections)
            out["healthz"] = {
                "bare": bare_health,
                "real": real_health,
                "ratio": round(real_health["per_second"] / bare_health["per_second"], 3),
            }
            for name, prefix in (("store_only", "S"), ("real_webhook", "R")):
                bare = wrk_max(
                    ports["bare"], sign(prefix + "B", 60_000), work, seconds=seconds, connections=connections
                )
                port = ports["store" if name == "store_only" else "real"]
                ours = wrk_max(port, sign(prefix, 60_000), work, seconds=seconds, connections=connections)
                out[name] = {"bare": bare, "ours": ours, "ratio": round(ours["per_second"] / bare["per_second"], 3)}
        finally:
            for server in servers:
                common.stop_process(server)
        return {"participants": participants, "seconds": seconds, "connections": connections, **out}


def show(r: dict) -> None:
    """Print the three ratios."""
    h = r["healthz"]
    print(
        f"-- GET /healthz           : bare {h['bare']['per_second']:.0f} req/s, "
        f"real app {h['real']['per_second']:.0f} req/s -> ratio {h['ratio']}"
    )
    for name, label in (("store_only", "store-only webhook"), ("real_webhook", "real webhook      ")):
        p = r[name]
        print(
            f"-- POST /sms/inbound {label}: bare {p['bare']['per_second']:.0f} req/s, "
            f"ours {p['ours']['per_second']:.0f} req/s"
            f" (p99 {p['ours']['p99_ms']} ms, non-2xx {p['ours']['status_errors']}) -> ratio {p['ratio']}"
            "  (B2 target >= 0.5)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("b2_ceiling.py needs wrk to load the servers: apt-get install -y wrk")
    common.banner("B2 ceiling: the bare endpoint vs the real app's floor, a store-only webhook and the real webhook")
    result = run(participants=args.participants, seconds=args.seconds, connections=args.connections)
    show(result)
    common.record("B2-ceiling", result)
    print(json.dumps({k: r["ratio"] for k, r in result.items() if isinstance(r, dict)}))


if __name__ == "__main__":
    main()
