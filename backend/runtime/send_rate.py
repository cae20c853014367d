"""The send-rate cap: one token bucket per process, or one moving window shared by all dispatchers through Redis."""

from __future__ import annotations

import logging
import time
from typing import Mapping

from notifications.dispatch import TokenBucket

log = logging.getLogger(__name__)
DEFAULT_KEY = "trial:send-rate"


class RedisSendLimiter:
    """At most `rate` sends in any one-second window, counted across every process that uses the same key.

    Built on the `limits` library's moving window (the one flask-limiter uses), whose Redis side is a
    Lua script, so a check-and-take is atomic however many dispatchers ask at once. If Redis stops
    answering, each process falls back to its own bucket at the full rate (a warning says so) rather
    than stopping every send: a brief overshoot is cheaper than reminders left in 'sending'."""

    def __init__(self, url: str, rate_per_second: float, *, key: str = DEFAULT_KEY, retry_redis_after: float = 5.0):
        from limits import RateLimitItemPerSecond
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self.rate = max(1, int(rate_per_second))
        self.key = key
        self.item = RateLimitItemPerSecond(self.rate, 1)
        self.storage = storage_from_string(url)
        self.window = MovingWindowRateLimiter(self.storage)
        self.fallback = TokenBucket(self.rate)
        self.retry_redis_after = retry_redis_after
        self._redis_down_until = 0.0

    def acquire(self) -> None:
        """Block until the shared window has room for one more send."""
        while True:
            if time.monotonic() < self._redis_down_until:
                self.fallback.acquire()
                return
            try:
                if self.window.hit(self.item, self.key):
                    return
                reset_at = self.window.get_window_stats(self.item, self.key).reset_time
            except Exception as exc:  # redis.ConnectionError and friends; the class name is enough
                log.warning("send-rate window in Redis unavailable (%s); capping this process alone for %.0f s",
                            type(exc).__name__, self.retry_redis_after)
                self._redis_down_until = time.monotonic() + self.retry_redis_after
                continue
            # Wake when the oldest send leaves the window; short naps keep many threads from waking together.
            time.sleep(min(0.05, max(0.001, reset_at - time.time())))


def build_send_limiter(config: Mapping):
    """Redis-backed when RATELIMIT_STORAGE_URI is redis://, else a process-local token bucket; None when uncapped."""
    rate = float(config.get("SEND_RATE_PER_SECOND", 0) or 0)
    if rate <= 0:
        return None
    uri = str(config.get("RATELIMIT_STORAGE_URI", "memory://"))
    if uri.startswith(("redis://", "rediss://", "redis+unix://")):
        return RedisSendLimiter(uri, rate, key=config.get("SEND_RATE_KEY", DEFAULT_KEY))
    return TokenBucket(rate)
