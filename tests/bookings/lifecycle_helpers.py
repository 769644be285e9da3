"""Helpers for lifecycle tests: a booking's history and emails as plain data, host overlaps."""

from collections import defaultdict

from bookings.models import Booking, BookingHistory, EventType
from notifications.models import EmailOutbox
from tests.assertions import assert_error
from tests.concurrency import client_for
from tests.factories import EventTypeFactory

from .create_helpers import create_body, post_booking


def history_actions(booking_id: str) -> list[str]:
    """The booking's history actions, oldest first."""
    return list(
        BookingHistory.objects.filter(booking_id=booking_id)
        .order_by("at", "id")
        .values_list("action", flat=True)
    )


def history_entries(booking_id: str, action: str | None = None) -> list[BookingHistory]:
    entries = BookingHistory.objects.filter(booking_id=booking_id).order_by("at", "id")
    return list(entries if action is None else entries.filter(action=action))


def email_rows(booking_id: str) -> list[EmailOutbox]:
    """The booking's outbox rows, whatever their status, oldest first."""
    return list(EmailOutbox.objects.filter(booking_id=booking_id).order_by("id"))


def email_kinds(booking_id: str) -> list[str]:
    return [row.kind for row in email_rows(booking_id)]


def host_overlaps(bookings=None) -> list[tuple[str, str]]:
    """Pairs of active bookings of one host whose blocked stretches overlap (want: none)."""
    bookings = Booking.objects.all() if bookings is None else bookings
    by_host: dict[str, list[tuple]] = defaultdict(list)
    for row in bookings.filter(status__in=Booking.Status.ACTIVE).values_list(
        "assigned_to_id", "blocked_start", "blocked_end", "id"
    ):
        by_host[row[0]].append(row[1:])
    clashes = []
    for rows in by_host.values():
        rows.sort()
        latest_end, latest_id = None, None  # the furthest-reaching booking so far
        for start, end, booking_id in rows:
            if latest_end is not None and start < latest_end:
                clashes.append((latest_id, booking_id))
            if latest_end is None or end > latest_end:
                latest_end, latest_id = end, booking_id
    return clashes


def book(api, event_type, start) -> dict:
    """A booking made through the API (its history and creation email included)."""
    response = post_booking(api, create_body(event_type, start))
    assert response.status_code == 201, response.content
    return response.json()["booking"]


def post_action(secret: str, booking_id: str, path: str, body=None, **headers):
    """POST /v1/bookings/{id}/<path> with a client of its own (one per thread)."""
    return client_for(secret).post(
        f"/v1/bookings/{booking_id}/{path}", body or {}, format="json", **headers
    )


def patch_attendee(secret: str, booking_id: str, attendee: dict):
    return client_for(secret).patch(
        f"/v1/bookings/{booking_id}", {"attendee": attendee}, format="json"
    )


def refused(response, code: str = "invalid_transition", status: int = 409) -> dict:
    """The refusal is in the error envelope; return its details."""
    return assert_error(response, status, code)["details"]


def pending_event_type(team, hosts):
    """SOLO with the first host, requiring confirmation: bookings start PENDING_CONFIRMATION."""
    return EventTypeFactory(
        team=team,
        scheduling_type=EventType.SchedulingType.SOLO,
        requires_confirmation=True,
        hosts=hosts[:1],
    )
