"""Per-key rate limit: a fixed one-minute window counted in the cache (Redis in production).

Counters live in the cache so every process shares them; ``bookings.access`` counts each
request in the same round trip that fetches its key. When the cache is unreachable the limit
is not enforced: losing rate limiting beats refusing every request.
"""

from dataclasses import dataclass

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
