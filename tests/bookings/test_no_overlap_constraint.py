"""The database, not only the code, keeps a host's bookings apart (PostgreSQL)."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from bookings import routing
from bookings.models import Booking
from tests.assertions import assert_error
from tests.factories import BookingFactory

from .create_helpers import create_body, in_days, post_booking

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_overlapping_active_bookings_of_one_host_are_refused(event_type, hosts):
    start = in_days(2)
    BookingFactory(event_type=event_type, assigned_to=hosts[0], start_time=start)

    with pytest.raises(IntegrityError, match="booking_no_overlap_per_host"), transaction.atomic():
        BookingFactory(
            event_type=event_type,
            assigned_to=hosts[0],
            start_time=start + timedelta(minutes=29),
            status=Booking.Status.PENDING_CONFIRMATION,
        )


def test_buffers_are_part_of_the_refused_range(event_type, hosts):
    start = in_days(2)
    BookingFactory(
        event_type=event_type,
        assigned_to=hosts[0],
        start_time=start,
        blocked_end=start + timedelta(minutes=40),  # a 10-minute buffer after
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        BookingFactory(
            event_type=event_type, assigned_to=hosts[0], start_time=start + timedelta(minutes=35)
        )


def test_adjacent_other_host_and_inactive_bookings_are_allowed(event_type, hosts):
    start = in_days(2)
    BookingFactory(event_type=event_type, assigned_to=hosts[0], start_time=start)
    # Half-open: the next one may start exactly when the first ends.
    BookingFactory(
        event_type=event_type, assigned_to=hosts[0], start_time=start + timedelta(minutes=30)
    )
    BookingFactory(event_type=event_type, assigned_to=hosts[1], start_time=start)
    BookingFactory(
        event_type=event_type,
        assigned_to=hosts[0],
        start_time=start,
        status=Booking.Status.CANCELLED,
        cancelled_by="api",
        cancelled_at=timezone.now(),
    )
    BookingFactory(
        event_type=event_type, assigned_to=hosts[0], start_time=start, status=Booking.Status.NO_SHOW
    )
    assert Booking.objects.count() == 5


def test_reactivating_into_an_overlap_is_refused(event_type, hosts):
    start = in_days(2)
    BookingFactory(event_type=event_type, assigned_to=hosts[0], start_time=start)
    done = BookingFactory(
        event_type=event_type, assigned_to=hosts[0], start_time=start, status="COMPLETED"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Booking.objects.filter(pk=done.pk).update(status=Booking.Status.SCHEDULED)


def test_when_the_constraint_refuses_a_host_routing_moves_to_the_next(
    api, event_type, hosts, monkeypatch
):
    """A stale view of who is free (as under concurrency): the database still says no."""
    start = in_days(2)
    BookingFactory(event_type=event_type, assigned_to=hosts[0], start_time=start)
    BookingFactory(event_type=event_type, assigned_to=hosts[1], start_time=start)
    real = routing.hosts_to_try

    def stale(**kwargs):
        hosts_found = real(**kwargs)  # hosts[2] only: the others are busy
        return [hosts[0], hosts[1], *hosts_found]

    monkeypatch.setattr("bookings.services.hosts_to_try", stale)

    response = post_booking(api, create_body(event_type, start))

    assert response.status_code == 201, response.content
    assert response.json()["booking"]["assigned_to_id"] == hosts[2].id


def test_when_the_constraint_refuses_every_host_the_answer_is_409(
    api, event_type, hosts, monkeypatch
):
    start = in_days(2)
    for host in hosts:
        BookingFactory(event_type=event_type, assigned_to=host, start_time=start)
    monkeypatch.setattr("bookings.services.hosts_to_try", lambda **kwargs: list(hosts))

    response = post_booking(api, create_body(event_type, start))

    assert_error(response, 409, "slot_unavailable")
    assert Booking.objects.count() == 3
