"""An attendee's new address, end to end with the real parts: gunicorn serving the API, Redis
as the broker, a Celery worker sending through a real SMTP server (tests/smtp_sink.py, in this
process), PostgreSQL holding the outbox. The sink sees what an attendee's mailbox would.
"""

import time
from datetime import UTC, datetime

import pytest
import requests
from icalendar import Calendar

from bookings.models import Booking, BookingHistory
from bookings.services import api_key_create
from notifications.models import EmailOutbox

from ..bookings.create_helpers import create_body, in_days
from ..smtp_sink import Received
from .live import log, relay_run, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def email_url(sink):
    """The processes send through the sink (overrides conftest's file backend)."""
    return sink.url


def _event(received: Received) -> tuple[str, str, int]:
    """(METHOD, UID, SEQUENCE) of the message's calendar part."""
    calendar = Calendar.from_ical(received.calendar())
    [event] = calendar.walk("VEVENT")
    return str(calendar["METHOD"]), str(event["UID"]), int(event["SEQUENCE"])


def _outbox(booking_id: str) -> list[tuple]:
    return list(
        EmailOutbox.objects.filter(booking_id=booking_id)
        .order_by("pk")
        .values_list("kind", "to_email", "status", "attempts", "ical_sequence")
    )


def test_a_new_address_gets_one_confirmation_and_then_the_cancellation(
    team, event_type, broker_url, sink, process_env, start_server, start_worker
):
    _, secret = api_key_create(team=team)
    base_url = start_server(broker_url)
    worker = start_worker(broker_url)
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {secret}"

    def patch_email(email: str) -> dict:
        response = http.patch(
            f"{base_url}/v1/bookings/{booking_id}", json={"attendee": {"email": email}}, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()["booking"]

    response = http.post(
        f"{base_url}/v1/bookings", json=create_body(event_type, in_days(2)), timeout=30
    )
    assert response.status_code == 201, response.text
    booking_id = response.json()["booking"]["id"]
    uid = Booking.objects.get(pk=booking_id).ical_uid
    [created] = sink.wait_for(1)
    assert created.rcpt_to == ("ada@example.com",)
    assert created.subject.startswith("Confirmed:")
    assert _event(created) == ("REQUEST", uid, 0)

    # A new address: one confirmation, to it, moving the same calendar event (higher SEQUENCE).
    assert patch_email("grace@example.com")["attendee"]["email"] == "grace@example.com"
    readdressed = sink.wait_for(2)[1]
    assert readdressed.rcpt_to == ("grace@example.com",)
    assert readdressed.message["To"] == "grace@example.com"
    assert readdressed.subject.startswith("Confirmed:")
    assert _event(readdressed) == ("REQUEST", uid, 1)

    # The periodic relay runs (every row made due for it), and a moment passes: nothing more.
    EmailOutbox.objects.filter(booking_id=booking_id).update(
        next_attempt_at=datetime(2000, 1, 1, tzinfo=UTC)
    )
    relay_run({**process_env, "CELERY_BROKER_URL": broker_url})
    wait_until(
        lambda: (
            "notifications.tasks.relay_emails_task[" in log(worker)
            and " succeeded in " in log(worker).split("notifications.tasks.relay_emails_task[")[-1]
        ),
        what="the worker to run the relay",
    )
    time.sleep(2)
    assert len(sink.messages) == 2
    assert len(sink.to("grace@example.com")) == 1
    assert _outbox(booking_id) == [
        ("confirmation", "ada@example.com", "sent", 1, 0),
        ("confirmation", "grace@example.com", "sent", 1, 1),
    ]

    # The same address again changes nothing: no history, no email.
    entries = BookingHistory.objects.filter(booking_id=booking_id).count()
    patch_email("grace@example.com")
    assert BookingHistory.objects.filter(booking_id=booking_id).count() == entries
    # Only the case differs: stored and recorded, but it is the same mailbox, so no email.
    assert patch_email("Grace@Example.com")["attendee"]["email"] == "Grace@Example.com"
    last = BookingHistory.objects.filter(booking_id=booking_id).latest("at", "pk")
    assert last.action == BookingHistory.Action.ATTENDEE_UPDATED
    assert last.changes == {"attendee.email": ["grace@example.com", "Grace@Example.com"]}
    assert BookingHistory.objects.filter(booking_id=booking_id).count() == entries + 1
    assert len(_outbox(booking_id)) == 2

    # Cancelled: one notice, to the address as it now is, cancelling the same calendar event.
    response = http.post(f"{base_url}/v1/bookings/{booking_id}/cancel", json={}, timeout=30)
    assert response.status_code == 200, response.text
    cancelled = sink.wait_for(3)[2]
    assert cancelled.rcpt_to == ("Grace@Example.com",)
    assert cancelled.subject.startswith("Cancelled:")
    assert _event(cancelled) == ("CANCEL", uid, 2)
    # The PATCHes in between sent nothing, and a repeated cancel sends nothing either.
    response = http.post(f"{base_url}/v1/bookings/{booking_id}/cancel", json={}, timeout=30)
    assert response.status_code == 200, response.text
    wait_until(
        lambda: EmailOutbox.objects.filter(booking_id=booking_id, status="sent").count() == 3,
        what="the cancellation's row to be marked sent",
    )
    time.sleep(1)
    assert [m.subject.split(":")[0] for m in sink.messages] == [
        "Confirmed",
        "Confirmed",
        "Cancelled",
    ]
    assert _outbox(booking_id) == [
        ("confirmation", "ada@example.com", "sent", 1, 0),
        ("confirmation", "grace@example.com", "sent", 1, 1),
        ("cancellation", "Grace@Example.com", "sent", 1, 2),
    ]
