"""The send-rate cap: one token bucket per process, or one shared by all dispatchers through Redis."""

from __future__ import annotations

import time
from typing import Mapping

from notifications.dispatch import TokenBucket


class RedisSendLimiter:
    """A fixed one-second window counter in Redis shared by every dispatcher process."""

    def __init__(self, url: str, rate_per_second: float, key: str = "trial:send-rate"):
        import redis

        self.client = redis.Redis.from_url(url)
        self.rate = max(1, int(rate_per_second))
        self.key = key

    def acquire(self) -> None:
        """Block until this second's budget has room for one more send."""
        while True:
            second = int(time.time())
            key = f"{self.key}:{second}"
            pipe = self.client.pipeline()
            pipe.incr(key)
            pipe.expire(key, 2)
            count, _ = pipe.execute()
            if count <= self.rate:
                return
            time.sleep(max(0.0, second + 1 - time.time()) + 0.001)


def build_send_limiter(config: Mapping):
    """Redis-backed when RATELIMIT_STORAGE_URI is redis://, else a process-local token bucket."""
    rate = float(config.get("SEND_RATE_PER_SECOND", 0) or 0)
    if rate <= 0:
        return None
    uri = config.get("RATELIMIT_STORAGE_URI", "memory://")
    if uri.startswith("redis://"):
        return RedisSendLimiter(uri, rate)
    return TokenBucket(rate)
