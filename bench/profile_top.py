"""Summarise a py-spy collapsed-stack file: where the samples are, by own time and by our own frames.

.venv/bin/python bench/profile_top.py /tmp/prof/b1-pg2-dispatch0.txt [--top 25] [--idle]
"""

from __future__ import annotations

import argparse
import collections

IDLE = (
    "wait (threading.py",
    "_wait_for_tstate_lock",
    "select (selectors.py",
    "sleep",
    "wait (",
    "accept (socket.py",
    "poll (selectors.py",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--idle", action="store_true", help="keep samples of threads that were waiting")
    args = parser.parse_args()
    own, inclusive, ours = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for line in open(args.path):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        frames = stack.split(";")
        if not args.idle and any(marker in frames[-1] for marker in IDLE):
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
        mine = [
            f
            for f in frames
            if "/work/" in f and "/.venv/" not in f or f.startswith(("dispatch", "_record", "claim_due"))
        ]
        if mine:
            ours[mine[-1]] += n
    print(f"{total} busy samples")
    print("-- own time")
    for frame, n in own.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {frame}")
    print("-- inclusive")
    for frame, n in inclusive.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {frame}")
    print("-- innermost project frame")
    for frame, n in ours.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
