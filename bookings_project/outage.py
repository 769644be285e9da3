"""A dependency that may be down (Redis as cache or broker), as one process sees it.

While it is down, the process stops asking it for a pause after each failure: ``retry_seconds``
after the first, doubling with each failed try up to ``max_retry_seconds``. The requests in
between pay nothing for it (no connect attempt, no timeout); the first one after the pause
tries again. So an outage costs each process one failed attempt per pause, whether the server
refuses connections (a millisecond) or has vanished from the network (a whole timeout, which
the doubling keeps from costing a worker a large share of its time), and the process finds the
server again at most ``max_retry_seconds`` after its return. The healthy path pays one
attribute test.

And it logs one line when the outage starts, one every ``log_seconds`` while it lasts (how
many operations went without the dependency meanwhile), and one when it ends: never a
traceback per request.
"""

import logging
import threading
import time

from django.db import InterfaceError, OperationalError


class Outage:
    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        consequence: str,
        retry_seconds: float = 1.0,
        max_retry_seconds: float = 10.0,
        log_seconds: float = 60.0,
    ):
        self.logger = logger
        self.what = what
        self.consequence = consequence
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.log_seconds = log_seconds
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._pause = retry_seconds
        self._logged_at = 0.0
        self._missed = 0  # operations done without the dependency since the last line
        self._lock = threading.Lock()  # a threaded server: one line per event, not per thread

    def skip(self) -> bool:
        """True while the dependency is to be left alone: down, and not yet time to retry."""
        if self.down_since is None:
            return False
        return time.monotonic() < self._retry_at

    def missed(self) -> None:
        """One operation went without the dependency (counted for the periodic line)."""
        with self._lock:
            self._missed += 1
            now = time.monotonic()
            if self.down_since is not None and now - self._logged_at >= self.log_seconds:
                self.logger.warning(
                    "%s still unreachable after %.0fs: %s operations without it in the last %.0fs",
                    self.what,
                    now - self.down_since,
                    self._missed,
                    now - self._logged_at,
                )
                self._logged_at, self._missed = now, 0

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            now = time.monotonic()
            if self.down_since is None:
                self._pause = self.retry_seconds
            else:
                self._pause = min(self.max_retry_seconds, self._pause * 2)
            self._retry_at = now + self._pause
            if self.down_since is None:
                self.down_since = self._logged_at = now
                self._missed = 0
                self.logger.warning(
                    "%s unreachable (%s: %s): %s; trying again in %ss, then less often "
                    "(at most every %ss)",
                    self.what,
                    type(exc).__name__,
                    str(exc)[:200],
                    self.consequence,
                    self.retry_seconds,
                    self.max_retry_seconds,
                )

    def succeeded(self) -> None:
        if self.down_since is None:
            return
        with self._lock:
            if self.down_since is None:
                return
            now = time.monotonic()
            self.logger.warning(
                "%s reachable again after %.0fs (%s operations without it since the last line)",
                self.what,
                now - self.down_since,
                self._missed,
            )
            self.down_since, self._missed = None, 0


# The database going away is an outage too, though a request cannot work around it: the
# API answers 503 (api/errors.py) and a worker retries recording a send it made.

# SQLSTATEs that mean "no server to talk to": class 08 (connection exception), an
# administrator's or a crash's shutdown (57P01, 57P02), "the database system is starting up /
# shutting down" (57P03).
_UNREACHABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def is_database_unreachable(exc: BaseException | None) -> bool:
    """True for a database that cannot be reached or went away mid-request: connection
    refused or timed out, the server closed the connection, shut down or is restarting, or a
    connection already closed was used. psycopg raises these without an SQLSTATE (the error
    is the client's, not the server's) or with one of ``_UNREACHABLE_SQLSTATES``."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if not hasattr(cause, "sqlstate"):
        return False  # not psycopg: SQLite's OperationalErrors are local (locked, busy)
    return cause.sqlstate is None or cause.sqlstate.startswith(_UNREACHABLE_SQLSTATES)
