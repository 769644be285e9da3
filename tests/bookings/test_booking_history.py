"""GET /v1/bookings/{id}/history: every change to a booking, oldest first, as a client sees it."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from bookings.models import ApiKey, Booking, BookingHistory
from bookings.services import Actor, booking_transition
from tests.assertions import UTC_TIME, assert_error, assert_ok
from tests.conftest import make_client
from tests.factories import EventTypeFactory

from .create_helpers import create_body, in_days, post_booking
from .transition_helpers import Snapshot, booking_in, key_id

pytestmark = pytest.mark.django_db

ENTRY_KEYS = {"at", "action", "from_status", "to_status", "actor", "changes"}


def _history(client, booking_id: str) -> list[dict]:
    body = assert_ok(client.get(f"/v1/bookings/{booking_id}/history"), "history")
    assert set(body) == {"success", "history"}
    for entry in body["history"]:
        assert set(entry) == ENTRY_KEYS, entry
        assert set(entry["actor"]) == {"type", "id"}, entry
        assert UTC_TIME.match(entry["at"]), entry
    return body["history"]


def _create(client, event_type) -> dict:
    return assert_ok(post_booking(client, create_body(event_type, in_days(2))), "booking", 201)[
        "booking"
    ]


@pytest.fixture
def pending_type(team, hosts):
    return EventTypeFactory(team=team, hosts=hosts, requires_confirmation=True)


def test_a_new_booking_shows_its_creation_and_its_routing(api, event_type):
    booking = _create(api, event_type)

    history = _history(api, booking["id"])

    assert history == [
        {
            "at": booking["created_at"],
            "action": "created",
            "from_status": None,
            "to_status": "DRAFT",
            "actor": {"type": "api_key", "id": key_id(api)},
            "changes": {},
        },
        {
            "at": booking["created_at"],
            "action": "routed",
            "from_status": "DRAFT",
            "to_status": "SCHEDULED",
            "actor": {"type": "system", "id": None},
            "changes": {"assigned_to_id": [None, booking["assigned_to_id"]]},
        },
    ]
    assert booking["assigned_to_id"].startswith("mem_")


def test_each_transition_follows_in_order_with_its_own_actor(team, pending_type):
    creator = make_client(team, scopes=["bookings:create", "bookings:read"])
    confirmer = make_client(team, scopes=["bookings:transition"])
    canceller = make_client(team, scopes=["bookings:cancel"])
    booking = _create(creator, pending_type)
    assert booking["status"] == "PENDING_CONFIRMATION"

    confirmed = confirmer.post(f"/v1/bookings/{booking['id']}/confirm", format="json")
    cancelled = canceller.post(
        f"/v1/bookings/{booking['id']}/cancel",
        {"cancelled_by": "attendee", "reason": "Moved away"},
        format="json",
    )
    # Neither a refused request nor a repeat writes an entry.
    refused = confirmer.post(f"/v1/bookings/{booking['id']}/cancel", format="json")
    assert_error(refused, 403, "forbidden")
    repeat = canceller.post(f"/v1/bookings/{booking['id']}/cancel", format="json")
    assert repeat.json() == cancelled.json()

    history = _history(creator, booking["id"])
    assert [(e["action"], e["from_status"], e["to_status"]) for e in history] == [
        ("created", None, "DRAFT"),
        ("routed", "DRAFT", "PENDING_CONFIRMATION"),
        ("confirmed", "PENDING_CONFIRMATION", "SCHEDULED"),
        ("cancelled", "SCHEDULED", "CANCELLED"),
    ]
    assert [e["actor"] for e in history] == [
        {"type": "api_key", "id": key_id(creator)},
        {"type": "system", "id": None},
        {"type": "api_key", "id": key_id(confirmer)},
        {"type": "api_key", "id": key_id(canceller)},
    ]
    assert history[2]["changes"] == {"status": ["PENDING_CONFIRMATION", "SCHEDULED"]}
    assert history[3]["changes"] == {
        "status": ["SCHEDULED", "CANCELLED"],
        "cancellation.cancelled_by": [None, "attendee"],
        "cancellation.reason": [None, "Moved away"],
    }
    # Each entry's time is the time of its change, as the booking shows it.
    assert history[2]["at"] == confirmed.json()["booking"]["updated_at"]
    assert history[3]["at"] == cancelled.json()["booking"]["cancellation"]["cancelled_at"]
    assert [e["at"] for e in history] == sorted(e["at"] for e in history)
    assert BookingHistory.objects.filter(booking_id=booking["id"]).count() == 4


def test_a_change_made_by_staff_shows_the_staff_actor(api, event_type, hosts):
    booking = booking_in(Booking.Status.SCHEDULED, event_type=event_type, host=hosts[0])
    booking_transition(booking=booking, action="cancel", actor=Actor("staff", "7"))

    (entry,) = _history(api, booking.id)

    assert entry["actor"] == {"type": "staff", "id": "7"}
    assert (entry["action"], entry["from_status"], entry["to_status"]) == (
        "cancelled",
        "SCHEDULED",
        "CANCELLED",
    )


def test_entries_come_oldest_first_whatever_order_they_were_written_in(api, event_type, hosts):
    booking = booking_in(Booking.Status.SCHEDULED, event_type=event_type, host=hosts[0])
    base = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    written = [("cancelled", 3), ("created", 0), ("confirmed", 2), ("routed", 1)]
    for action, minutes in written:
        BookingHistory.objects.create(
            booking=booking,
            at=base + timedelta(minutes=minutes),
            action=action,
            to_status="SCHEDULED",
            actor_type="system",
        )

    history = _history(api, booking.id)

    assert [e["action"] for e in history] == ["created", "routed", "confirmed", "cancelled"]
    assert [e["at"] for e in history] == [
        "2030-01-01T09:00:00Z",
        "2030-01-01T09:01:00Z",
        "2030-01-01T09:02:00Z",
        "2030-01-01T09:03:00Z",
    ]


def test_times_are_utc_with_z_whatever_zone_they_were_written_in(api, event_type, hosts):
    booking = booking_in(Booking.Status.PENDING_CONFIRMATION, event_type=event_type, host=hosts[0])
    paris = timezone.get_fixed_timezone(60)
    with time_machine.travel(datetime(2030, 6, 1, 14, 30, 15, 250000, tzinfo=paris), tick=False):
        assert api.post(f"/v1/bookings/{booking.id}/confirm", format="json").status_code == 200

    (entry,) = _history(api, booking.id)

    assert entry["at"] == "2030-06-01T13:30:15.250000Z"


def test_only_this_bookings_entries_are_shown(api, event_type):
    first, second = _create(api, event_type), _create(api, event_type)
    api.post(f"/v1/bookings/{second['id']}/cancel", format="json")

    assert len(_history(api, first["id"])) == 2
    assert [e["action"] for e in _history(api, second["id"])] == [
        "created",
        "routed",
        "cancelled",
    ]


def test_a_booking_without_history_has_an_empty_list(api, event_type, hosts):
    booking = booking_in(Booking.Status.SCHEDULED, event_type=event_type, host=hosts[0])
    response = api.get(f"/v1/bookings/{booking.id}/history")
    assert response.json() == {"success": True, "history": []}


def test_another_teams_booking_is_404(api, other_api, event_type):
    booking = _create(api, event_type)
    snapshot = Snapshot(Booking.objects.get(pk=booking["id"]))

    assert_error(other_api.get(f"/v1/bookings/{booking['id']}/history"), 404, "not_found")
    assert_error(api.get("/v1/bookings/bkg_01ARZ3NDEKTSV4RRFFQ69G5FAV/history"), 404, "not_found")
    snapshot.assert_unchanged()


def test_reading_history_needs_the_read_scope(team, api, event_type):
    booking = _create(api, event_type)
    others = [scope for scope in ApiKey.Scope.values if scope != "bookings:read"]

    without = make_client(team, scopes=others).get(f"/v1/bookings/{booking['id']}/history")
    reader = make_client(team, scopes=["bookings:read"])

    assert_error(without, 403, "forbidden")
    assert len(_history(reader, booking["id"])) == 2


def test_a_query_string_is_400(api, event_type):
    booking = _create(api, event_type)
    response = api.get(f"/v1/bookings/{booking['id']}/history?limit=1")
    assert_error(response, 400, "validation_error", details={"limit"})


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_history_is_read_only(api, event_type, method):
    booking = _create(api, event_type)
    snapshot = Snapshot(Booking.objects.get(pk=booking["id"]))

    response = getattr(api, method)(f"/v1/bookings/{booking['id']}/history", {}, format="json")

    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"
    snapshot.assert_unchanged()
