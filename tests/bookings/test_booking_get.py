"""GET /v1/bookings/{id}: the representation, team isolation, a fixed number of queries."""

from datetime import UTC, datetime

import pytest

from bookings.ids import new_id
from bookings.models import Booking
from tests.assertions import UTC_TIME, assert_error, assert_ok
from tests.factories import BookingFactory, EventTypeFactory, TeamMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def booking(event_type, hosts):
    return BookingFactory(
        event_type=event_type,
        assigned_to=hosts[0],
        start_time=datetime(2026, 12, 1, 15, 0, tzinfo=UTC),
        attendee_name="Ada Lovelace",
        attendee_email="ada@example.com",
        attendee_phone="+442071838750",
        attendee_timezone="Europe/London",
        custom_fields={"company": "Analytical Engines"},
        metadata={"source": "test"},
    )


def test_get_returns_the_booking_in_the_envelope(api, booking, event_type, hosts):
    response = api.get(f"/v1/bookings/{booking.id}")

    body = assert_ok(response, "booking")
    assert set(body) == {"success", "booking"}
    data = body["booking"]
    assert list(data) == [
        "id",
        "status",
        "event_type_id",
        "assigned_to_id",
        "start_time",
        "end_time",
        "attendee",
        "custom_fields",
        "metadata",
        "rescheduled_from_id",
        "rescheduled_to_id",
        "cancellation",
        "created_at",
        "updated_at",
    ]
    assert data["id"] == booking.id
    assert data["status"] == "SCHEDULED"
    assert data["event_type_id"] == event_type.id
    assert data["assigned_to_id"] == hosts[0].id
    assert data["start_time"] == "2026-12-01T15:00:00Z"
    assert data["end_time"] == "2026-12-01T15:30:00Z"
    assert data["attendee"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+442071838750",
        "timezone": "Europe/London",
    }
    assert data["custom_fields"] == {"company": "Analytical Engines"}
    assert data["metadata"] == {"source": "test"}
    assert data["rescheduled_from_id"] is None
    assert data["rescheduled_to_id"] is None
    assert data["cancellation"] is None
    assert UTC_TIME.match(data["created_at"]), data["created_at"]
    assert UTC_TIME.match(data["updated_at"]), data["updated_at"]


def test_get_shows_absent_phone_and_timezone_as_null(api, event_type):
    booking = BookingFactory(event_type=event_type, attendee_phone="", attendee_timezone="")

    attendee = assert_ok(api.get(f"/v1/bookings/{booking.id}"), "booking")["booking"]["attendee"]

    assert attendee["phone"] is None
    assert attendee["timezone"] is None


def test_get_shows_the_cancellation(api, event_type):
    booking = BookingFactory(
        event_type=event_type,
        status=Booking.Status.CANCELLED,
        cancelled_by=Booking.CancelledBy.ATTENDEE,
        cancellation_reason="Double-booked",
        cancelled_at=datetime(2026, 11, 30, 9, 30, tzinfo=UTC),
    )

    data = assert_ok(api.get(f"/v1/bookings/{booking.id}"), "booking")["booking"]

    assert data["status"] == "CANCELLED"
    assert data["cancellation"] == {
        "cancelled_by": "attendee",
        "reason": "Double-booked",
        "cancelled_at": "2026-11-30T09:30:00Z",
    }


def test_get_cancellation_without_reason_is_null_not_empty(api, event_type):
    booking = BookingFactory(
        event_type=event_type,
        status=Booking.Status.CANCELLED,
        cancelled_by=Booking.CancelledBy.API,
        cancellation_reason=None,
        cancelled_at=datetime(2026, 11, 30, 9, 30, tzinfo=UTC),
    )

    data = assert_ok(api.get(f"/v1/bookings/{booking.id}"), "booking")["booking"]

    assert data["cancellation"]["reason"] is None
    assert data["cancellation"]["cancelled_by"] == "api"


def test_get_shows_reschedule_links(api, event_type, hosts):
    original = BookingFactory(
        event_type=event_type,
        assigned_to=hosts[0],
        status=Booking.Status.CANCELLED,
        cancelled_by=Booking.CancelledBy.API,
        cancelled_at=datetime(2026, 11, 30, tzinfo=UTC),
        start_time=datetime(2026, 12, 1, 10, tzinfo=UTC),
    )
    new = BookingFactory(
        event_type=event_type,
        assigned_to=hosts[0],
        status=Booking.Status.RESCHEDULED,
        start_time=datetime(2026, 12, 2, 10, tzinfo=UTC),
        rescheduled_from=original,
    )
    Booking.objects.filter(pk=original.pk).update(rescheduled_to=new)

    old_data = assert_ok(api.get(f"/v1/bookings/{original.id}"), "booking")["booking"]
    new_data = assert_ok(api.get(f"/v1/bookings/{new.id}"), "booking")["booking"]

    assert old_data["rescheduled_to_id"] == new.id
    assert old_data["rescheduled_from_id"] is None
    assert new_data["rescheduled_from_id"] == original.id
    assert new_data["rescheduled_to_id"] is None
    assert new_data["status"] == "RESCHEDULED"


def test_get_draft_has_null_host(api, event_type):
    booking = BookingFactory(event_type=event_type, status=Booking.Status.DRAFT, assigned_to=None)

    data = assert_ok(api.get(f"/v1/bookings/{booking.id}"), "booking")["booking"]

    assert data["status"] == "DRAFT"
    assert data["assigned_to_id"] is None


def test_get_converts_stored_times_to_utc_z(api, event_type):
    from zoneinfo import ZoneInfo

    booking = BookingFactory(
        event_type=event_type,
        start_time=datetime(2026, 7, 1, 17, 0, tzinfo=ZoneInfo("Europe/Berlin")),
        attendee_timezone="America/New_York",
    )

    data = assert_ok(api.get(f"/v1/bookings/{booking.id}"), "booking")["booking"]

    # The attendee's zone is for display only: it never shifts the stored instant.
    assert data["start_time"] == "2026-07-01T15:00:00Z"
    assert data["end_time"] == "2026-07-01T15:30:00Z"


def test_unknown_id_is_404(api):
    response = api.get(f"/v1/bookings/{new_id('bkg')}")

    assert_error(response, 404, "not_found", details=set())


@pytest.mark.parametrize(
    "booking_id", ["nope", "bkg_", "evt_01JD0000000000000000000000", "bkg_" + "Z" * 40]
)
def test_malformed_id_is_404(api, booking_id):
    assert_error(api.get(f"/v1/bookings/{booking_id}"), 404, "not_found")


def test_another_teams_booking_is_404_exactly_like_an_unknown_id(api, other_team):
    theirs = BookingFactory(
        event_type=EventTypeFactory(team=other_team, hosts=[TeamMemberFactory(team=other_team)])
    )

    cross_team = api.get(f"/v1/bookings/{theirs.id}")
    unknown = api.get(f"/v1/bookings/{new_id('bkg')}")

    assert_error(cross_team, 404, "not_found")
    assert cross_team.json() == unknown.json()
    assert cross_team.content == unknown.content


def test_the_owner_team_still_sees_it(other_api, other_team):
    theirs = BookingFactory(event_type=EventTypeFactory(team=other_team))

    assert assert_ok(other_api.get(f"/v1/bookings/{theirs.id}"), "booking")["booking"]["id"] == (
        theirs.id
    )


def test_get_takes_one_query_the_booking(api, booking, django_assert_num_queries):
    # The key and its team come from the cache; one query for the booking, nothing per field.
    with django_assert_num_queries(1):
        response = api.get(f"/v1/bookings/{booking.id}")
    assert response.status_code == 200


def test_get_not_found_takes_one_query(api, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = api.get(f"/v1/bookings/{new_id('bkg')}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/v1/bookings/bkg_%00",
        "/v1/event-types/evt_%00",
        "/v1/team/members/mem_%00",
        "/v1/bookings/%F0%9F%92%A5",
        "/v1/bookings/" + "x" * 500,
    ],
)
def test_ids_that_are_not_ours_are_404_without_a_query(api, path, django_assert_num_queries):
    from tests.assertions import assert_error

    with django_assert_num_queries(0):  # the key is cached; the id names no row
        response = api.get(path)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("cancelled", [False, True])
def test_fast_booking_output_matches_the_declared_fields(event_type, hosts, cancelled):
    """BookingSerializer writes its declared fields out directly, for speed: the result must
    equal DRF's own field-by-field rendering of the same declaration (the schema's)."""
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework import serializers

    from bookings.serializers import BookingSerializer
    from bookings_project.api.renderers import json_bytes
    from tests.factories import BookingFactory

    extra = {"status": "CANCELLED", "cancelled_by": "host", "cancelled_at": timezone.now()}
    booking = BookingFactory(
        event_type=event_type,
        assigned_to=hosts[0],
        start_time=timezone.now().replace(microsecond=123456) + timedelta(days=3),
        attendee_phone="+442071838750",
        metadata={"a": [1, {"b": None}]},
        **(extra if cancelled else {}),
    )
    booking.refresh_from_db()
    fast = BookingSerializer(booking).data
    declared = serializers.ModelSerializer.to_representation(BookingSerializer(), booking)
    # The fast path leaves times as datetimes for the JSON renderer: what counts is the bytes,
    # which are the declared fields' own (the times' text included), in the same order.
    assert json_bytes(fast) == json_bytes(declared)
    assert list(fast) == list(declared)
    assert isinstance(declared["start_time"], str)
    assert declared["start_time"].endswith(".123456Z")
    # The class-level rendering the views use: the same bytes, twice (no state kept).
    assert json_bytes(BookingSerializer.render_one(booking)) == json_bytes(declared)
    twice = BookingSerializer.render_many([booking, booking])
    assert json_bytes(twice) == json_bytes([declared, declared])
    assert list(BookingSerializer.render_one(booking)) == list(declared)
