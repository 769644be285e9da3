"""The outbox services: queueing and sending, each on one clock reading."""

import itertools
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import EmailOutbox
from notifications.services import LEASE, email_queue, email_send
from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticking_clock(monkeypatch):
    """A clock that moves on at every reading: any second reading would show."""
    start, ticks = timezone.now(), itertools.count()
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(milliseconds=next(ticks)))
    return start


@pytest.fixture
def booking(event_type, hosts):
    return BookingFactory(event_type=event_type, assigned_to=hosts[0])


def test_queue_is_due_at_the_callers_time(booking):
    at = timezone.now() - timedelta(minutes=3)
    row = email_queue(booking=booking, kind="confirmation", event_key="k", now=at)
    row.refresh_from_db()
    assert row.next_attempt_at == at
    assert (row.status, row.to_email) == (EmailOutbox.Status.PENDING, booking.attendee_email)


def test_queue_without_a_time_is_due_now(booking, ticking_clock):
    row = email_queue(booking=booking, kind="confirmation", event_key="k")
    assert row.next_attempt_at == ticking_clock


def test_send_reads_the_clock_once(booking, ticking_clock, mailoutbox):
    row = email_queue(booking=booking, kind="confirmation", event_key="k")

    assert email_send(outbox_id=row.pk) is True

    row.refresh_from_db()
    assert len(mailoutbox) == 1
    assert row.status == EmailOutbox.Status.SENT
    # The claim moved next_attempt_at to now + LEASE; sent_at is that same now.
    assert row.sent_at == row.next_attempt_at - LEASE
    assert row.sent_at > ticking_clock


def test_a_failed_publish_leaves_the_broker_alone_for_a_pause_logged_once(monkeypatch, caplog):
    from kombu.exceptions import OperationalError

    from bookings_project.outage import Outage
    from notifications import services
    from notifications.tasks import send_email_task

    published = []

    def refused(**kwargs):
        published.append(kwargs["outbox_id"])
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    outage = Outage(services.logger, "Broker", consequence="emails stay pending")
    monkeypatch.setattr(services, "_broker_outage", lambda url: outage)  # not the suite's own
    monkeypatch.setattr(send_email_task, "delay", refused)
    caplog.set_level(logging.INFO, logger="notifications.services")

    for outbox_id in range(1, 6):
        services.email_dispatch(outbox_id=outbox_id)  # never raises: the relay sends it later

    # Tried once; the next four, within the pause, did not even try (a hung broker would have
    # cost each of them its timeouts).
    assert published == [1]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage().split(":")[0] for r in warnings] == [
        "Broker unreachable (OperationalError"
    ]
    assert warnings[0].exc_info is None
    left = [r.getMessage() for r in caplog.records if "left pending" in r.getMessage()]
    assert len(left) == 5
