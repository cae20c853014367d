#!/usr/bin/env bash
# Every benchmark in turn, as bench/README.md's table was made; output to bench/last-run.txt as well.
# Each script also runs alone with one command (see bench/README.md). About 50 minutes on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
{
  "$PY" bench/b3_missed.py --profile
  "$PY" bench/b4_enroll.py --profile
  "$PY" bench/b7_sqlite_writes.py
  "$PY" bench/b1_fanout.py
  "$PY" bench/b1_fanout.py --only pg2 --concurrency 32 --batch 200
  "$PY" bench/b2_inbound.py --profile
  "$PY" bench/b2_ceiling.py
  "$PY" bench/b2_calls.py
  "$PY" bench/b6_apscheduler.py
  "$PY" bench/b5_memory.py
  "$PY" bench/b8_crash.py
  "$PY" bench/b9_peak.py
  "$PY" bench/b10_celery.py
} 2>&1 | grep --line-buffered -v '^{"ts"' | tee bench/last-run.txt
