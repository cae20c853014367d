"""The send-rate cap: one token bucket per process, or one moving window shared by all dispatchers through Redis."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Protocol

log = logging.getLogger("notifications.rate_limit")
_REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://")


class SendLimiter(Protocol):
    """The send-rate cap a dispatcher asks before it claims: tokens first, so a claimed row never waits for one."""

    def take(self, most: int) -> int:
        """Take up to `most` sends allowed now, without waiting; returns how many were granted."""


class TokenBucket:
    """A process-local send-rate cap (messages per second), shared by the dispatch threads."""

    def __init__(
        self, rate_per_second: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.rate = rate_per_second
        self.capacity = burst if burst is not None else max(1.0, rate_per_second)
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self.lock = threading.Lock()

    def take(self, most: int) -> int:
        """Take up to `most` whole tokens available now; returns how many."""
        if self.rate <= 0:
            return most
        with self.lock:
            self._refill()
            granted = max(0, min(most, int(self.tokens)))
            self.tokens -= granted
            return granted

    def give_back(self, unused: int) -> None:
        """Return tokens taken for rows that turned out not to be due."""
        with self.lock:
            self.tokens = min(self.capacity, self.tokens + unused)

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now


class RedisSendLimiter:
    """At most `rate` sends in any one-second window, counted across every process that uses the same key.

    Built on the `limits` library's moving window (the one flask-limiter uses), whose Redis side is a
    Lua script, so a check-and-take is atomic however many dispatchers ask at once. If Redis stops
    answering, each process falls back to its own bucket at the full rate (a warning says so) rather
    than stopping every send: a brief overshoot is cheaper than every reminder held back."""

    def __init__(self, url: str, rate_per_second: float, *, key: str, retry_redis_after: float = 5.0):
        # Imported here: only a Redis-capped dispatcher needs the library.
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

    def take(self, most: int) -> int:
        """Take up to `most` sends from the shared window now; each hit is atomic in Redis, so no process overshoots."""
        if time.monotonic() < self._redis_down_until:
            return self.fallback.take(most)
        granted = 0
        try:
            while granted < most and self.window.hit(self.item, self.key):
                granted += 1
        except Exception as exc:  # redis.ConnectionError and friends; the class name is enough
            log.warning(
                "send-rate window in Redis unavailable (%s); capping this process alone for %.0f s",
                type(exc).__name__,
                self.retry_redis_after,
            )
            self._redis_down_until = time.monotonic() + self.retry_redis_after
            return granted + self.fallback.take(most - granted)
        return granted


def build_send_limiter(*, rate_per_second: float, storage_uri: str, key: str) -> SendLimiter | None:
    """Redis-backed when storage_uri is redis://, else a process-local token bucket; None when uncapped (rate 0)."""
    if rate_per_second <= 0:
        return None
    if storage_uri.startswith(_REDIS_SCHEMES):
        return RedisSendLimiter(storage_uri, rate_per_second, key=key)
    return TokenBucket(rate_per_second)
