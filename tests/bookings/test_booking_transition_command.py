"""``manage.py booking_transition``: the command goes through the same service as the API."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from bookings.models import Booking, BookingHistory
from notifications.models import EmailOutbox
from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = StringIO()
    call_command("booking_transition", *args, stdout=out)
    return out.getvalue()


def test_cancel_records_the_system_as_actor_and_queues_the_notice():
    booking = BookingFactory(status=Booking.Status.SCHEDULED)

    output = _run(booking.id, "cancel", "--cancelled-by", "host", "--reason", "Host is ill")

    booking.refresh_from_db()
    assert output.strip() == f"{booking.id} is now CANCELLED"
    assert (booking.cancelled_by, booking.cancellation_reason) == ("host", "Host is ill")
    entry = BookingHistory.objects.get(booking=booking)
    assert (entry.action, entry.actor_type, entry.actor_id) == ("cancelled", "system", "")
    assert list(EmailOutbox.objects.values_list("kind", flat=True)) == ["cancellation"]


def test_a_repeat_changes_nothing():
    booking = BookingFactory(status=Booking.Status.SCHEDULED)
    _run(booking.id, "cancel")

    output = _run(booking.id, "cancel", "--reason", "another")

    booking.refresh_from_db()
    assert output.strip() == f"{booking.id} was already CANCELLED"
    assert booking.cancellation_reason is None
    assert BookingHistory.objects.filter(booking=booking).count() == 1


@pytest.mark.parametrize(
    ("status", "action", "code"),
    [
        (Booking.Status.SCHEDULED, "complete", "booking_not_started"),
        (Booking.Status.PENDING_CONFIRMATION, "no_show", "invalid_transition"),
    ],
)
def test_a_refused_move_is_a_command_error_and_changes_nothing(status, action, code):
    booking = BookingFactory(
        status=status, start_time=timezone.now().replace(microsecond=0) + timedelta(days=1)
    )

    with pytest.raises(CommandError, match=code):
        _run(booking.id, action)

    booking.refresh_from_db()
    assert booking.status == status
    assert not BookingHistory.objects.filter(booking=booking).exists()
    assert not EmailOutbox.objects.exists()


def test_an_unknown_booking_is_a_command_error():
    with pytest.raises(CommandError, match="No booking"):
        _run("bkg_01JD0000000000000000000000", "cancel")
