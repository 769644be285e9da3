"""Helpers for tests that create bookings through the API."""

from datetime import datetime, timedelta

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
