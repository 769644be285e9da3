"""Per-key rate limit: a fixed one-minute window counted in the cache (Redis in production).

Counters live in the cache so every process shares them. When the cache is unreachable the
limit is not enforced: losing rate limiting beats refusing every request.
"""

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset: int  # Unix time the window resets
    exceeded: bool

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }

    def retry_after(self, now: float) -> int:
        return max(1, self.reset - int(now))


def rate_limit_hit(key_id: str, *, now: float | None = None) -> RateLimitState:
    """Count one request for this key and say where it stands."""
    now = time.time() if now is None else now
    limit = settings.API_RATE_LIMIT
    window = int(now // WINDOW_SECONDS)
    reset = (window + 1) * WINDOW_SECONDS
    counter = f"ratelimit:{key_id}:{window}"
    try:
        used = 1 if cache.add(counter, 1, timeout=WINDOW_SECONDS + 5) else cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.set(counter, 1, timeout=WINDOW_SECONDS + 5)
        used = 1
    except Exception:
        logger.warning("Rate-limit cache unavailable; not enforcing", exc_info=True)
        return RateLimitState(limit=limit, remaining=limit, reset=reset, exceeded=False)
    return RateLimitState(
        limit=limit, remaining=max(0, limit - used), reset=reset, exceeded=used > limit
    )
