"""The attendee's emails: templates, the iCalendar part, the local time."""

from datetime import UTC, datetime

import pytest
from icalendar import Calendar

from notifications.emails import booking_email_build
from notifications.models import EmailOutbox
from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db


def _row(booking, kind):
    return EmailOutbox(
        booking=booking,
        kind=kind,
        event_key="k",
        to_email=booking.attendee_email,
        ical_sequence=booking.ical_sequence,  # as email_queue records it
    )


@pytest.mark.parametrize(
    ("kind", "subject", "method"),
    [
        ("confirmation", "Confirmed:", "REQUEST"),
        ("awaiting_confirmation", "Awaiting confirmation:", "REQUEST"),
        ("cancellation", "Cancelled:", "CANCEL"),
    ],
)
def test_each_kind_has_its_subject_body_and_calendar_method(
    event_type, hosts, kind, subject, method
):
    booking = BookingFactory(
        event_type=event_type,
        assigned_to=hosts[0],
        start_time=datetime(2030, 7, 1, 14, 0, tzinfo=UTC),
        attendee_timezone="Europe/London",
        ical_sequence=2,
    )
    message = booking_email_build(_row(booking, kind))

    assert message.subject.startswith(subject)
    assert message.to == [booking.attendee_email]
    assert "15:00 to 15:30 (Europe/London)" in message.body  # BST is UTC+1 in July
    html = message.alternatives[0]
    assert "15:00 to 15:30" in html[0]
    assert html[1] == "text/html"
    name, ics, mimetype = message.attachments[0]
    assert (name, mimetype) == ("invite.ics", f"text/calendar; method={method}")
    calendar = Calendar.from_ical(ics)
    assert calendar["METHOD"] == method
    event = calendar.walk("VEVENT")[0]
    assert str(event["UID"]) == booking.ical_uid
    assert int(event["SEQUENCE"]) == 2
    assert str(event["ORGANIZER"]) == "mailto:bookings@localhost"
    assert str(event["ATTENDEE"]) == f"mailto:{booking.attendee_email}"
    assert event.decoded("DTSTART") == booking.start_time


def test_without_a_time_zone_times_are_utc(event_type, hosts):
    booking = BookingFactory(
        event_type=event_type,
        assigned_to=hosts[0],
        start_time=datetime(2030, 7, 1, 14, 0, tzinfo=UTC),
    )
    assert "14:00 to 14:30 (UTC)" in booking_email_build(_row(booking, "confirmation")).body
