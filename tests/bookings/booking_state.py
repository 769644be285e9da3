"""Helpers for the lifecycle tests: make a booking through the API, act on it, and take a
snapshot of everything a request may change, to show a refused one changed nothing."""

from bookings.models import Booking, BookingHistory
from tests.factories import BookingFactory

from .create_helpers import create_body, in_days, iso, post_booking
from .transition_helpers import history_rows, outbox_rows, row


def booking_create_via_api(client, event_type, start, **overrides) -> Booking:
    response = post_booking(client, create_body(event_type, start, **overrides))
    assert response.status_code == 201, response.content
    return Booking.objects.get(pk=response.json()["booking"]["id"])


def ada_booking_create(client, event_type) -> Booking:
    """A booking with every attendee field and some custom fields and metadata set."""
    return booking_create_via_api(
        client,
        event_type,
        in_days(2, hour=10),
        attendee={
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+442071838750",
            "timezone": "Europe/London",
        },
        custom_fields={"company": "Analytical Engines"},
        metadata={"source": "test"},
    )


def busy_booking(event_type, host, start) -> Booking:
    """Another attendee's booking that makes ``host`` busy from ``start``."""
    return BookingFactory(event_type=event_type, assigned_to=host, start_time=start)


def reschedule(client, booking_id: str, start=None, *, key: str | None = None, **body):
    if start is not None:
        body["requested_time"] = iso(start)
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(f"/v1/bookings/{booking_id}/reschedule", body, format="json", **headers)


def patch(client, booking_id: str, body):
    return client.patch(f"/v1/bookings/{booking_id}", body, format="json")


def snapshot(booking_id: str) -> dict:
    """The booking's row, its history and its emails, every column, as in the database."""
    booking = Booking(pk=booking_id)  # only its key is read
    return {"row": row(booking), "history": history_rows(booking), "emails": outbox_rows(booking)}


def actions(booking_id: str) -> list[str]:
    return list(
        BookingHistory.objects.filter(booking_id=booking_id)
        .order_by("id")
        .values_list("action", flat=True)
    )
