"""The outbox services: queueing and sending, each on one clock reading."""

import itertools
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
