"""The emails the lifecycle sends, built and sent for real (Django's locmem backend): one
calendar event across confirm, cancel, reschedule and a new address; a newer email supersedes
the unsent ones; a sent email is never touched; a repeat sends nothing."""

from datetime import timedelta
from smtplib import SMTPException

import pytest
import time_machine
from django.core import mail
from django.utils import dateformat, timezone
from icalendar import Calendar

from bookings.models import Booking
from bookings.services import Actor, booking_transition
from notifications import services as outbox_services
from notifications.models import EmailOutbox
from notifications.services import email_relay, email_send, relay_grace
from tests.bookings.booking_state import booking_create_via_api, patch, reschedule
from tests.bookings.create_helpers import in_days
from tests.factories import EventTypeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []


@pytest.fixture
def booking(api, event_type):
    return booking_create_via_api(api, event_type, in_days(2))


@pytest.fixture
def pending(api, team, hosts):
    event_type = EventTypeFactory(team=team, hosts=hosts, requires_confirmation=True)
    return booking_create_via_api(api, event_type, in_days(2))


def _row(booking_id: str, kind: str | None = None) -> EmailOutbox:
    """The booking's newest email (of that kind)."""
    rows = EmailOutbox.objects.filter(booking_id=booking_id)
    return (rows.filter(kind=kind) if kind else rows).latest("id")


def _send(row: EmailOutbox):
    """Send the row as the worker would; return the one message it sent."""
    sent_before = len(mail.outbox)
    assert email_send(outbox_id=row.pk) is True
    assert len(mail.outbox) == sent_before + 1
    return mail.outbox[-1]


def _event(message):
    """The message's calendar METHOD and its one VEVENT."""
    [(name, ics, mimetype)] = message.attachments
    assert name == "invite.ics"
    calendar = Calendar.from_ical(ics)
    assert mimetype == f"text/calendar; method={calendar['METHOD']}"
    [event] = calendar.walk("VEVENT")
    return str(calendar["METHOD"]), event


def _cancel(api, booking_id, **body):
    return api.post(f"/v1/bookings/{booking_id}/cancel", body, format="json")


# --- One calendar event, moved and updated -----------------------------------------------------


def test_confirm_sends_a_confirmation_of_the_same_event(api, pending):
    notice = _send(_row(pending.id))
    assert notice.subject.startswith("Awaiting confirmation:")
    _, tentative = _event(notice)
    assert str(tentative["STATUS"]) == "TENTATIVE"

    assert api.post(f"/v1/bookings/{pending.id}/confirm").status_code == 200
    message = _send(_row(pending.id, "confirmation"))

    method, event = _event(message)
    assert message.subject.startswith("Confirmed:")
    assert message.to == [pending.attendee_email]
    assert (method, str(event["STATUS"])) == ("REQUEST", "CONFIRMED")
    assert str(event["UID"]) == str(tentative["UID"]) == pending.ical_uid
    assert int(event["SEQUENCE"]) > int(tentative["SEQUENCE"])


def test_cancel_sends_a_cancellation_of_the_same_event(api, booking):
    first = _send(_row(booking.id))

    assert _cancel(api, booking.id, reason="Ill").status_code == 200
    message = _send(_row(booking.id, "cancellation"))

    method, event = _event(message)
    _, created = _event(first)
    assert message.subject.startswith("Cancelled:")
    assert message.to == [booking.attendee_email]
    assert (method, str(event["STATUS"])) == ("CANCEL", "CANCELLED")
    assert str(event["UID"]) == str(created["UID"]) == booking.ical_uid
    assert int(event["SEQUENCE"]) > int(created["SEQUENCE"])


def test_reschedule_moves_the_event_to_the_new_time(api, booking):
    created = _send(_row(booking.id))
    new_start = in_days(5, hour=9, minute=45)

    new_id = reschedule(api, booking.id, new_start).json()["booking"]["id"]
    message = _send(_row(new_id))

    method, event = _event(message)
    _, original = _event(created)
    assert message.subject.startswith("Confirmed:")
    assert message.extra_headers["X-Booking-Id"] == new_id
    assert method == "REQUEST"
    assert str(event["UID"]) == str(original["UID"]) == booking.ical_uid
    assert int(event["SEQUENCE"]) == int(original["SEQUENCE"]) + 1
    assert event.decoded("DTSTART") == new_start
    assert event.decoded("DTEND") == new_start + timedelta(minutes=30)
    # The attendee has no time zone: the body shows UTC.
    when = dateformat.format(new_start, "l j F Y, H:i")
    assert f"When: {when} to {dateformat.format(new_start + timedelta(minutes=30), 'H:i')}" in (
        message.body
    )
    assert dateformat.format(booking.start_time, "l j F Y, H:i") not in message.body
    # No cancellation notice for the original: the new time's confirmation replaces it.
    assert not EmailOutbox.objects.filter(kind="cancellation").exists()
    assert len(mail.outbox) == 2


def test_a_new_address_gets_a_confirmation_of_the_same_event(api, booking):
    created = _send(_row(booking.id))

    patch(api, booking.id, {"attendee": {"email": "ada@lovelace.example"}})
    message = _send(_row(booking.id))

    method, event = _event(message)
    _, first = _event(created)
    assert message.to == ["ada@lovelace.example"]
    assert str(event["ATTENDEE"]) == "mailto:ada@lovelace.example"
    assert method == "REQUEST"
    assert str(event["UID"]) == str(first["UID"])
    assert int(event["SEQUENCE"]) > int(first["SEQUENCE"])


# --- Superseded: a newer email replaces the unsent ones ----------------------------------------


def _superseded_sends_nothing(row: EmailOutbox) -> None:
    row.refresh_from_db()
    assert row.status == EmailOutbox.Status.SUPERSEDED
    sent_before = len(mail.outbox)
    assert email_send(outbox_id=row.pk) is False
    assert len(mail.outbox) == sent_before
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at) == ("superseded", 0, None)


def test_an_unsent_confirmation_is_superseded_by_the_cancellation(api, booking):
    confirmation = _row(booking.id)

    _cancel(api, booking.id)

    _superseded_sends_nothing(confirmation)
    message = _send(_row(booking.id, "cancellation"))
    assert [m.subject.split(":")[0] for m in mail.outbox] == ["Cancelled"]
    assert _event(message)[0] == "CANCEL"


def test_an_unsent_confirmation_is_superseded_by_the_reschedule(api, booking):
    confirmation = _row(booking.id)

    new_id = reschedule(api, booking.id, in_days(3)).json()["booking"]["id"]

    _superseded_sends_nothing(confirmation)
    message = _send(_row(new_id))
    assert message.extra_headers["X-Booking-Id"] == new_id
    assert len(mail.outbox) == 1


def test_an_unsent_confirmation_to_the_old_address_is_superseded(api, booking):
    confirmation = _row(booking.id)
    assert confirmation.to_email == "ada@example.com"

    patch(api, booking.id, {"attendee": {"email": "ada@lovelace.example"}})

    _superseded_sends_nothing(confirmation)
    _send(_row(booking.id))
    assert [m.to for m in mail.outbox] == [["ada@lovelace.example"]]


def _cancel_it(api, booking):
    _cancel(api, booking.id)


def _reschedule_it(api, booking):
    reschedule(api, booking.id, in_days(3))


def _readdress_it(api, booking):
    patch(api, booking.id, {"attendee": {"email": "ada@lovelace.example"}})


@pytest.mark.parametrize("change", [_cancel_it, _reschedule_it, _readdress_it])
def test_a_sent_email_is_never_superseded(api, booking, change):
    _send(_row(booking.id))
    sent = EmailOutbox.objects.filter(pk=_row(booking.id).pk).values().get()

    change(api, booking)

    assert EmailOutbox.objects.filter(pk=sent["id"]).values().get() == sent
    assert sent["status"] == "sent"
    assert EmailOutbox.objects.count() == 2  # and the change's own email


@pytest.fixture
def cancelled_mid_send(booking, monkeypatch):
    """While a worker hands the creation's confirmation to the mail server, the booking is
    cancelled (another request, committed meanwhile). Yields (row, outcome of the send)."""

    def build(row):
        booking_transition(booking=row.booking, action="cancel", actor=Actor.system())
        return build.message(row)

    build.message = outbox_services.booking_email_build
    monkeypatch.setattr(outbox_services, "booking_email_build", build)
    return _row(booking.id), build


def test_a_claimed_row_superseded_mid_send_that_fails_stays_superseded(cancelled_mid_send):
    row, build = cancelled_mid_send

    class Refused:
        def send(self):
            raise SMTPException("relay down")

    build.message = lambda row: Refused()

    assert email_send(outbox_id=row.pk) is False

    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at) == ("superseded", 1, None)
    assert mail.outbox == []
    # Not back to pending: neither a retry nor the relay picks it up again.
    with_relay = _relay_dispatches(future=timedelta(days=1))
    assert row.pk not in with_relay
    assert email_send(outbox_id=row.pk) is False
    assert mail.outbox == []
    assert _row(row.booking_id, "cancellation").pk in with_relay


def test_a_claimed_row_superseded_mid_send_that_succeeds_is_recorded_as_sent(
    cancelled_mid_send,
):
    # The documented choice: what reached the mail server is recorded as sent; the
    # cancellation's higher SEQUENCE wins in the attendee's calendar.
    row, _ = cancelled_mid_send

    assert email_send(outbox_id=row.pk) is True

    row.refresh_from_db()
    assert row.status == "sent"
    assert [m.subject.split(":")[0] for m in mail.outbox] == ["Confirmed"]
    cancellation = _send(_row(row.booking_id, "cancellation"))
    assert int(_event(cancellation)[1]["SEQUENCE"]) > row.ical_sequence


# --- The relay -----------------------------------------------------------------------------------


def _relay_dispatches(*, future: timedelta) -> list[int]:
    """The outbox ids the relay hands to the broker, ``future`` from now."""
    from notifications.tasks import send_email_task

    dispatched = []
    original = send_email_task.delay
    send_email_task.delay = lambda **kwargs: dispatched.append(kwargs["outbox_id"])
    try:
        with time_machine.travel(timezone.now() + future, tick=False):
            email_relay()
    finally:
        send_email_task.delay = original
    return dispatched


def test_the_relay_never_dispatches_superseded_or_sent_rows(api, event_type):
    superseded = booking_create_via_api(api, event_type, in_days(2, hour=9))
    _cancel(api, superseded.id)  # its confirmation superseded, its cancellation pending
    sent = booking_create_via_api(api, event_type, in_days(2, hour=10))
    _send(_row(sent.id))
    waiting = booking_create_via_api(api, event_type, in_days(2, hour=11))

    dispatched = _relay_dispatches(future=relay_grace() + timedelta(seconds=1))

    assert sorted(dispatched) == sorted(
        [_row(superseded.id, "cancellation").pk, _row(waiting.id).pk]
    )
    statuses = dict(EmailOutbox.objects.values_list("pk", "status"))
    assert {statuses[pk] for pk in dispatched} == {"pending"}
    assert sorted(statuses.values()) == ["pending", "pending", "sent", "superseded"]


# --- A repeat sends nothing ---------------------------------------------------------------------


def test_repeated_transitions_send_nothing_new(api, pending, django_capture_on_commit_callbacks):
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post(f"/v1/bookings/{pending.id}/confirm").status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            patch(api, pending.id, {"attendee": {"email": "ada@lovelace.example"}})
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert _cancel(api, pending.id).status_code == 200

    rows = EmailOutbox.objects.filter(booking_id=pending.id).order_by("id")
    assert [(r.kind, r.status, r.ical_sequence) for r in rows] == [
        ("awaiting_confirmation", "superseded", 0),  # never sent: the confirm came first
        ("confirmation", "sent", 1),
        ("confirmation", "sent", 2),
        ("cancellation", "sent", 3),
    ]
    assert [m.subject.split(":")[0] for m in mail.outbox] == ["Confirmed", "Confirmed", "Cancelled"]
    assert Booking.objects.get(pk=pending.id).ical_sequence == 3
