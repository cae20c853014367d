"""The send-rate cap: a local bucket by default, one Redis window honoured by every dispatcher process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

from notifications.rate_limit import RedisSendLimiter, TokenBucket, build_send_limiter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
KEY = "test:send-rate"


def _redis_up() -> bool:
    host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
        return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason="no Redis on loopback (set TEST_REDIS_URL)")


def test_no_cap_when_the_rate_is_zero_and_a_local_bucket_on_the_embedded_default():
    assert build_send_limiter(rate_per_second=0, storage_uri="memory://", key=KEY) is None
    assert isinstance(build_send_limiter(rate_per_second=10, storage_uri="memory://", key=KEY), TokenBucket)


@needs_redis
def test_redis_storage_gives_the_shared_limiter():
    limiter = build_send_limiter(rate_per_second=10, storage_uri=REDIS_URL, key=KEY)
    assert isinstance(limiter, RedisSendLimiter) and limiter.rate == 10


_WORKER = """
import json, sys, time
from notifications.rate_limit import RedisSendLimiter
url, key, start_at, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
limiter = RedisSendLimiter(url, 20, key=key)
limiter.storage.check()  # connect before the start line
time.sleep(max(0.0, start_at - time.time()))
stamps = []
for _ in range(n):
    while not limiter.take(1):  # as a dispatcher asks before each claim
        time.sleep(0.005)
    stamps.append(time.time())
print(json.dumps(stamps))
"""


@needs_redis
def test_three_dispatcher_processes_together_never_exceed_the_cap_in_any_second():
    key = f"test:send-rate:{uuid.uuid4().hex}"
    start_at = time.time() + 2.5  # after every process has imported and connected
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, REDIS_URL, key, str(start_at), "15"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": ROOT},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    stamps = sorted(t for proc in procs for t in json.loads(proc.communicate(timeout=30)[0]))

    # 3 x 15 sends at 20/s: 20 in the first second, 20 in the next, the last 5 after that.
    # Stamps are taken just after each grant returns, and the suite runs on two busy workers: a window of
    # 0.85 s allows up to 150 ms of that lag (with no cap all 45 would land within a few milliseconds).
    busiest = max(sum(1 for t in stamps if s <= t < s + 0.85) for s in stamps)
    assert len(stamps) == 45
    assert busiest <= 20
    assert stamps[-1] - start_at >= 1.0  # the cap really held them back


def test_when_redis_is_down_each_process_falls_back_to_its_own_bucket(caplog):
    limiter = RedisSendLimiter("redis://127.0.0.1:1/0", 5, key=KEY, retry_redis_after=60)
    started = time.monotonic()
    assert sum(limiter.take(1) for _ in range(5)) == 5
    assert time.monotonic() - started < 2
    assert "capping this process alone" in caplog.text


def test_a_dispatcher_takes_what_the_bucket_holds_now_without_waiting_and_can_give_unused_tokens_back():
    now = [100.0]
    bucket = TokenBucket(2, clock=lambda: now[0])  # 2/s, a burst of 2
    assert bucket.take(5) == 2  # only what is there: the claim is sized to it
    assert bucket.take(5) == 0
    now[0] += 0.5
    assert bucket.take(5) == 1
    bucket.give_back(1)  # claimed fewer rows than tokens taken
    assert bucket.take(5) == 1
