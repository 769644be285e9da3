"""Build the attendee's emails: a text and HTML body from templates/, and an .ics part."""

from datetime import UTC
from email.utils import parseaddr

import idna
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone
from icalendar import Calendar, Event

from .models import EmailOutbox

SUBJECTS = {
    EmailOutbox.Kind.CONFIRMATION: "Confirmed: {name}",
    EmailOutbox.Kind.AWAITING_CONFIRMATION: "Awaiting confirmation: {name}",
    EmailOutbox.Kind.CANCELLATION: "Cancelled: {name}",
}


def booking_ics(booking, *, cancel: bool, sequence: int, tentative: bool = False) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//Bookings//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", booking.ical_uid)
    event.add("sequence", sequence)
    event.add("dtstamp", timezone.now().astimezone(UTC))
    event.add("dtstart", booking.start_time.astimezone(UTC))
    event.add("dtend", booking.end_time.astimezone(UTC))
    event.add("summary", booking.event_type.name)
    event.add("status", "CANCELLED" if cancel else "TENTATIVE" if tentative else "CONFIRMED")
    # RFC 5546: a REQUEST or CANCEL names its organizer, or calendars may ignore it.
    event.add("organizer", f"mailto:{parseaddr(settings.DEFAULT_FROM_EMAIL)[1]}")
    event.add("attendee", f"mailto:{booking.attendee_email}")
    calendar.add_component(event)
    return calendar.to_ical()


def _escaped(ch: str) -> str:
    return "".join(f"={byte:02X}" for byte in ch.encode())


def outbox_message_id(row: EmailOutbox) -> str:
    """The Message-ID of the row's email: the same on every attempt and resend, one per event.

    Made from the row's ``event_key`` (unique; it holds the booking's id, a ULID), so it stays
    unique across databases and their restarts, which an outbox id would not: a mailbox that
    drops a repeated Message-ID would otherwise drop a new email that reused an old id. ``:``
    becomes ``.``; any other character than letters, digits, ``_`` and ``-``, its UTF-8 bytes
    as ``=XX``. The domain is the sender's (``DEFAULT_FROM_EMAIL``).
    """
    local = ".".join(
        "".join(
            ch if ch.isascii() and (ch.isalnum() or ch in "_-") else _escaped(ch) for ch in part
        )
        or "="
        for part in row.event_key.split(":")
    )
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"
    return f"<{local}@{domain}>"


def ascii_address(address: str) -> str:
    """The address with its domain in IDNA 2008's ASCII form (``ada@xn--strae-oqa.de``), as
    it is sent: Django's SMTP backend would encode an international domain with IDNA 2003,
    which reads ``straße.de`` as ``strasse.de``. An ASCII domain (or an address literal) is
    left as it is; the domain was checked when the address was written
    (``bookings.validators.validate_email_address``)."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"


def booking_email_build(row: EmailOutbox) -> EmailMultiAlternatives:
    booking = row.booking
    cancel = row.kind == EmailOutbox.Kind.CANCELLATION
    context = {"booking": booking, "event_type": booking.event_type, "kind": row.kind}
    message = EmailMultiAlternatives(
        subject=SUBJECTS[row.kind].format(name=booking.event_type.name),
        body=render_to_string(f"notifications/{row.kind}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[ascii_address(row.to_email)],
        headers={"X-Booking-Id": booking.id, "Message-ID": outbox_message_id(row)},
    )
    message.attach_alternative(
        render_to_string(f"notifications/{row.kind}.html", context), "text/html"
    )
    method = "CANCEL" if cancel else "REQUEST"
    message.attach(
        "invite.ics",
        booking_ics(
            booking,
            cancel=cancel,
            sequence=row.ical_sequence,
            tentative=row.kind == EmailOutbox.Kind.AWAITING_CONFIRMATION,
        ),
        f"text/calendar; method={method}",
    )
    return message
