"""The relay drains a backlog in one run: every due row, oldest first, batch after batch,
each handed to the broker once; it stops when the broker refuses, or when its time is up."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bookings_project import broker
from notifications import services
from notifications.models import EmailOutbox
from notifications.services import email_relay
from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """The outbox ids handed to the broker, in order (the broker itself is tested end to end
    in test_redis_down.py and test_email_worker.py)."""
    ids: list[int] = []
    monkeypatch.setattr(broker, "publish", lambda task, outbox_id: ids.append(outbox_id))
    services._broker_outage.cache_clear()
    yield ids
    services._broker_outage.cache_clear()


def _backlog(count: int, *, event_type) -> list[int]:
    """``count`` pending rows, due since an hour, several at each instant (ties by id)."""
    booking = BookingFactory(event_type=event_type)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    rows = EmailOutbox.objects.bulk_create(
        EmailOutbox(
            booking=booking,
            kind=EmailOutbox.Kind.CONFIRMATION,
            event_key=f"backlog:{index}",
            to_email="ada@example.com",
            next_attempt_at=an_hour_ago + timedelta(seconds=index // 7),
        )
        for index in range(count)
    )
    return [row.pk for row in rows]


def test_one_run_hands_over_the_whole_backlog_oldest_first_each_once(event_type, published):
    backlog = _backlog(1_234, event_type=event_type)
    not_due = EmailOutbox.objects.create(
        booking=BookingFactory(event_type=event_type),
        kind=EmailOutbox.Kind.CONFIRMATION,
        event_key="just-queued",
        to_email="grace@example.com",
        next_attempt_at=timezone.now(),  # its own task may still come: not relayed yet
    )

    relayed = email_relay(batch=100)

    assert relayed == 1_234
    assert published == backlog  # created in due order: the same order, none twice
    assert not_due.pk not in published


def test_a_broker_refusing_stops_the_run(event_type, published, monkeypatch):
    _backlog(50, event_type=event_type)
    attempts = []

    def refuse(task, outbox_id):
        attempts.append(outbox_id)
        raise ConnectionError("broker down")

    monkeypatch.setattr(broker, "publish", refuse)

    assert email_relay(batch=10) == 0
    assert len(attempts) == 1  # not fifty connects to a broker that is down
    assert EmailOutbox.objects.filter(status=EmailOutbox.Status.PENDING).count() == 50


def test_a_run_stops_when_its_time_is_up(event_type, published):
    _backlog(30, event_type=event_type)

    assert email_relay(batch=10, seconds=0) == 10  # one batch, the rest at the next run
    assert email_relay(batch=10) == 30  # the rows handed over stay pending until claimed
