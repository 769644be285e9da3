"""manage.py seed_demo_bookings: sample bookings in every status, once, for the admin."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from bookings.consistency import consistency_check
from bookings.models import Booking, BookingHistory
from notifications.models import EmailOutbox

pytestmark = pytest.mark.django_db


def _run() -> str:
    out = StringIO()
    call_command("seed_demo_bookings", stdout=out)
    return out.getvalue()


def test_it_needs_the_demo_teams():
    with pytest.raises(CommandError, match="seed_demo"):
        _run()


def test_every_status_a_client_can_reach_once_per_team(monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "demo-pass-123")
    call_command("seed_demo", stdout=StringIO())

    first = _run()
    again = _run()

    assert first == "Added 16 sample bookings.\n"
    assert again == "Already there.\n"
    for team_slug in ["acme-sales", "globex-support"]:
        statuses = sorted(
            Booking.objects.filter(team__slug=team_slug).values_list("status", flat=True)
        )
        assert statuses == sorted(
            [
                "SCHEDULED",
                "PENDING_CONFIRMATION",
                "SCHEDULED",
                "CANCELLED",
                "CANCELLED",
                "RESCHEDULED",
                "SCHEDULED",
                "SCHEDULED",
            ]
        )
    # Made through the services: each has history, the future ones their emails.
    assert not Booking.objects.filter(history__isnull=True).exists()
    moved = Booking.objects.get(team__slug="acme-sales", status="RESCHEDULED")
    assert moved.rescheduled_from.status == "CANCELLED"
    assert BookingHistory.objects.filter(action="rescheduled").count() == 4
    assert EmailOutbox.objects.filter(kind="cancellation").count() == 2


def test_the_demo_bookings_pass_the_consistency_check(monkeypatch):
    # The two that started an hour ago are written directly (no client can book in the past):
    # as a create would have written them, or the check failed on any database holding them.
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "demo-pass-123")
    call_command("seed_demo", stdout=StringIO())
    _run()

    report = consistency_check(drained=False)

    assert report.violations == []
    started = Booking.objects.filter(start_time__lt=timezone.now())
    assert started.count() == 4
    for booking in started:
        assert list(booking.history.order_by("id").values_list("action", flat=True)) == [
            "created",
            "routed",
        ]
        assert list(booking.emails.values_list("kind", "status")) == [("confirmation", "sent")]
