"""The id of the request being served, for every log line it causes.

``RequestIdMiddleware`` sets it for the duration of a request. The Celery signals in
``bookings_project/celery.py`` carry it in the headers of each task the request enqueues and
set it again while the worker runs that task. ``RequestIdFilter``, installed on the handlers
in ``LOGGING``, writes it on every record as ``record.request_id``.
"""

import logging
from contextvars import ContextVar

# On records logged outside any request or task started by one: start-up, beat, the relay.
NO_REQUEST_ID = "-"

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Put the current request id on each record (``-`` when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or NO_REQUEST_ID
        return True
