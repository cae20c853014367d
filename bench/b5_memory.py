"""B5 peak memory (RSS high-water mark, VmHWM) of a web worker, the scheduler and a dispatcher during B1/B2.

    .venv/bin/python bench/b5_memory.py

Runs B1 on PostgreSQL with two dispatchers, then starts the real scheduler over the same 10,000
participants (it runs its jobs at once) and samples it until its plan_messages run ends or
--scheduler-seconds pass; then a short B2 against gunicorn. Every process's VmHWM is sampled twice a second.
Target: each <= 150 MB.
"""

from __future__ import annotations

import argparse

import common
from b1_fanout import run_fanout
from b2_inbound import run_inbound

LIMIT_MB = 150


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10, help="B2 load duration")
    parser.add_argument("--scheduler-seconds", type=int, default=150, help="how long to sample the scheduler at most")
    args = parser.parse_args()
    common.banner("B5 peak RSS during B1 (PostgreSQL, 2 dispatchers + scheduler) and B2 (gunicorn)")
    b1 = run_fanout("pg", 2, n=args.n, scheduler=True, scheduler_seconds=args.scheduler_seconds, measure_max=False)
    print(
        f"   B1: {b1['n']} sent at {b1['per_second']}/s; "
        f"then the scheduler's first plan_messages over them: {b1['scheduler_plan_messages_s']}"
    )
    b2 = run_inbound(seconds=args.seconds)
    print(f"   B2: {b2['real_max']['per_second']} req/s at the maximum")
    peaks = {**b1["peak_rss_mb"], **b2["peak_rss_mb"]}
    worst = 0.0
    for name, mb in sorted(peaks.items()):
        flag = "" if mb <= LIMIT_MB or "master" in name else f"  OVER by {mb - LIMIT_MB:.0f} MB"
        print(f"   {name:28} {mb:7.1f} MB{flag}")
        if "master" not in name:
            worst = max(worst, mb)
    print(f"-- largest of web worker / scheduler / dispatcher: {worst:.1f} MB (target <= {LIMIT_MB} MB)")
    common.record(
        "B5",
        {
            "peak_rss_mb": peaks,
            "largest_mb": round(worst, 1),
            "b1_per_second": b1["per_second"],
            "scheduler_plan_messages_s": b1["scheduler_plan_messages_s"],
            "b2_real_per_second": b2["real_max"]["per_second"],
        },
    )


if __name__ == "__main__":
    main()
