"""Helpers for tests that create bookings through the API."""

import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import connection, connections, transaction
from django.utils import timezone


def in_days(days: float, *, hour: int = 15, minute: int = 0) -> datetime:
    """A whole-minute UTC time ``days`` from now, at ``hour:minute``."""
    day = timezone.now() + timedelta(days=days)
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def create_body(event_type, start: datetime, **overrides) -> dict:
    body = {
        "event_type_id": event_type.id,
        "requested_time": iso(start),
        "attendee": {"name": "Ada Lovelace", "email": "ada@example.com"},
    }
    body.update(overrides)
    return body


def post_booking(client, body, *, key: str | None = None, **headers):
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post("/v1/bookings", body, format="json", **headers)


@contextmanager
def held_open(write: Callable[[], object]):
    """Run ``write`` in a transaction on another thread and keep it uncommitted for the
    duration of the block (as a slow request would); then roll it back."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                write()
                holding.set()
                release.wait(timeout=30)
                transaction.set_rollback(True)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(timeout=10), "the other transaction did not start"
        yield
    finally:
        release.set()
        holder.join(timeout=30)


@contextmanager
def lock_timeout(milliseconds: int):
    """A short PostgreSQL lock_timeout for this connection (the default is seconds)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{int(milliseconds)}ms'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
