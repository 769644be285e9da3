"""Django's PostgreSQL backend, with two costs of every request taken out.

**The health check without a round trip.** With ``CONN_HEALTH_CHECKS`` Django checks a
connection kept from an earlier request before the request's first query, by sending
``SELECT 1``: a whole round trip to the server on every request (a quarter of a GET's time).
This backend checks the same thing locally. A connection that PostgreSQL has closed (a
restart, ``pg_terminate_backend``, an idle timeout) has, by the time the next request comes,
either its socket at end of file or the server's goodbye (``FATAL: terminating connection…``)
waiting unread in it; an idle connection we use (no ``LISTEN``) otherwise never has anything to
read. So a connection is usable when libpq still holds it open, no transaction is left failed
or running, and ``poll`` finds nothing waiting on its socket. A server that vanished without
closing anything (a network partition) goes unnoticed by this check as by ``SELECT 1`` (which
would hang): the query fails within the socket's timeout and the request is answered 503.

**Timestamps read in C.** Django registers its own ``timestamptz`` loader, a Python subclass
of psycopg's, to give every datetime its connection's time zone; psycopg then parses each
value in Python (about 5 µs; a page of 50 bookings has 250). When that zone is UTC, the
session's too (Django sets it), psycopg's C loader returns the very same values —
``tzinfo=datetime.timezone.utc`` — in under 1 µs: this backend has it do the parsing.
"""

import select
from datetime import UTC

import psycopg
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import adapt, pq
from psycopg.types.datetime import TimestamptzLoader

_QUIET = (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS)
# psycopg's global map holds its C loader when the C extension (psycopg[binary]) is there.
_C_TIMESTAMPTZ = psycopg.adapters.get_loader(psycopg.postgres.types["timestamptz"].oid, 0)
if _C_TIMESTAMPTZ is TimestamptzLoader:  # the pure-Python psycopg: keep Django's loader
    _C_TIMESTAMPTZ = None


class UtcTimestamptzLoader(BaseTzLoader):
    """Django's loader for a UTC connection, parsing with psycopg's C loader."""

    timezone = UTC  # what Django's create_cursor compares with the connection's zone

    def __init__(self, oid: int, context=None):
        super().__init__(oid, context)
        # The C loader's own method on this instance: psycopg calls it for each value with no
        # Python call of ours in between (the C class cannot be subclassed).
        self.load = _C_TIMESTAMPTZ(oid, context).load


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        if _C_TIMESTAMPTZ is not None and self.timezone is UTC and self.timezone_name == "UTC":
            context = adapt.AdaptersMap(params["context"])
            context.register_loader("timestamptz", UtcTimestamptzLoader)
            params["context"] = context
        return params

    def is_usable(self) -> bool:
        if self.connection is None:
            return False
        pgconn = self.connection.pgconn
        if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status not in _QUIET:
            return False
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)  # anything to read, an error or a hang-up: it is gone
