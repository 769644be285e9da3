"""Invariants the database holds whatever the code does."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from bookings.ids import is_valid_id, new_id
from bookings.models import Booking, EventType
from tests.factories import BookingFactory, EventTypeFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "fields",
    [
        {"duration": 0},
        {"duration": 24 * 60 + 1},
        {"buffer_before": 24 * 60 + 1},
        {"buffer_after": 24 * 60 + 1},
        {"scheduling_type": "LOTTERY"},
    ],
)
def test_event_type_bounds_are_database_constraints(team, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        EventTypeFactory(team=team, **fields)


def test_event_type_bounds_are_validated_for_the_admin(team):
    event_type = EventTypeFactory.build(team=team, buffer_after=5000, duration=0)
    with pytest.raises(ValidationError) as info:
        event_type.full_clean()
    assert {"buffer_after", "duration"} <= set(info.value.message_dict)


def test_event_type_slug_is_unique_per_team(team, other_team):
    EventTypeFactory(team=team, slug="intro")
    EventTypeFactory(team=other_team, slug="intro")
    with pytest.raises(IntegrityError), transaction.atomic():
        EventTypeFactory(team=team, slug="intro")


@pytest.mark.parametrize(
    "fields",
    [
        {"end_time_offset": timedelta(0)},
        {"end_time_offset": -timedelta(minutes=1)},
        {"status": "LOST"},
        {"status": Booking.Status.SCHEDULED, "assigned_to": None},
        {"status": Booking.Status.CANCELLED},  # without cancelled_at / cancelled_by
        {"cancelled_at": "now", "cancelled_by": "api"},  # cancellation on a live booking
        {"blocked_start_offset": timedelta(minutes=1)},  # the block must cover the slot
    ],
)
def test_booking_check_constraints(event_type, hosts, fields):
    start = timezone.now() + timedelta(days=1)
    kwargs = {"event_type": event_type, "assigned_to": hosts[0], "start_time": start}
    if "end_time_offset" in fields:
        kwargs["end_time"] = start + fields.pop("end_time_offset")
        kwargs["blocked_end"] = kwargs["end_time"] + timedelta(hours=1)
    if "blocked_start_offset" in fields:
        kwargs["blocked_start"] = start + fields.pop("blocked_start_offset")
    if fields.get("cancelled_at") == "now":
        fields["cancelled_at"] = timezone.now()
    kwargs.update(fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        BookingFactory(**kwargs)


def test_draft_may_be_unassigned(event_type):
    booking = BookingFactory(event_type=event_type, status=Booking.Status.DRAFT, assigned_to=None)
    assert booking.assigned_to_id is None


def test_ids_are_prefixed_time_sortable_and_unique():
    ids = [new_id("bkg") for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(is_valid_id(value, "bkg") for value in ids)
    assert not is_valid_id(ids[0], "evt")
    assert not is_valid_id(ids[0][:-1], "bkg")
    assert not is_valid_id(ids[0].lower(), "bkg")


def test_model_ids_carry_their_prefix(team, event_type, hosts):
    booking = BookingFactory(event_type=event_type, assigned_to=hosts[0])
    assert team.id.startswith("team_")
    assert hosts[0].id.startswith("mem_")
    assert event_type.id.startswith("evt_")
    assert booking.id.startswith("bkg_")
    assert EventType.SchedulingType.values == ["SOLO", "ROUND_ROBIN"]


def test_status_groups():
    assert {"DRAFT", "SCHEDULED", "PENDING_CONFIRMATION", "RESCHEDULED"} == Booking.Status.ACTIVE
    assert {"COMPLETED", "CANCELLED", "NO_SHOW"} == Booking.Status.TERMINAL
    assert set(Booking.Status.values) == Booking.Status.ACTIVE | Booking.Status.TERMINAL


@pytest.mark.postgres
def test_a_booking_cannot_use_another_teams_event_type_or_host(event_type, hosts, other_team):
    from tests.factories import EventTypeFactory, TeamMemberFactory

    foreign_host = TeamMemberFactory(team=other_team)
    foreign_type = EventTypeFactory(team=other_team, hosts=[foreign_host])
    with pytest.raises(IntegrityError, match="booking_host_same_team"), transaction.atomic():
        BookingFactory(event_type=event_type, assigned_to=foreign_host)
    with pytest.raises(IntegrityError, match="booking_event_type_same_team"), transaction.atomic():
        BookingFactory(event_type=foreign_type, team=event_type.team, assigned_to=hosts[0])
