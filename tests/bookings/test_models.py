"""Invariants the database holds whatever the code does."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from bookings.ids import is_valid_id, new_id
from bookings.models import Booking, BookingHistory, EventType
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


def test_a_draft_cancelled_before_routing_may_stay_unassigned(event_type):
    booking = BookingFactory(
        event_type=event_type,
        status=Booking.Status.CANCELLED,
        assigned_to=None,
        cancelled_at=timezone.now(),
        cancelled_by=Booking.CancelledBy.API,
    )
    assert booking.assigned_to_id is None


def test_ids_are_prefixed_time_sortable_and_unique():
    ids = [new_id("bkg") for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(is_valid_id(value, "bkg") for value in ids)
    assert not is_valid_id(ids[0], "evt")
    assert not is_valid_id(ids[0][:-1], "bkg")
    assert not is_valid_id(ids[0].lower(), "bkg")


@pytest.mark.parametrize(
    "value",
    [
        "bkg_" + "0" * 26 + "\n",  # a trailing newline ($ would let it through)
        "bkg_" + "0" * 25,
        "bkg_" + "0" * 27,
        "bkg_" + "0" * 25 + "I",  # not in Crockford's alphabet
        "bkg_" + "0" * 25 + "U",
        "bkg_" + "0" * 25 + "٣",  # a digit, but not an ASCII one
        "bkgx" + "0" * 26,
        " bkg_" + "0" * 26,
        "bkg_" + "0" * 26 + " ",
        "evt_" + "0" * 26,
        "",
        None,
        26,
        b"bkg_" + b"0" * 26,
    ],
)
def test_malformed_ids_are_refused(value):
    assert not is_valid_id(value, "bkg")


def test_well_formed_ids_pass_and_the_prefix_is_literal():
    assert is_valid_id("bkg_" + "0123456789ABCDEFGHJKMNPQRS", "bkg")
    assert is_valid_id("a.b_" + "Z" * 26, "a.b")
    assert not is_valid_id("axb_" + "Z" * 26, "a.b")  # the dot is not a wildcard


def test_model_ids_carry_their_prefix(team, event_type, hosts):
    booking = BookingFactory(event_type=event_type, assigned_to=hosts[0])
    assert team.id.startswith("team_")
    assert hosts[0].id.startswith("mem_")
    assert event_type.id.startswith("evt_")
    assert booking.id.startswith("bkg_")
    assert EventType.SchedulingType.values == ["SOLO", "ROUND_ROBIN"]


def test_status_groups():
    active, terminal = Booking.Status.ACTIVE, Booking.Status.TERMINAL
    assert {"DRAFT", "SCHEDULED", "PENDING_CONFIRMATION", "RESCHEDULED"} == active
    assert {"COMPLETED", "CANCELLED", "NO_SHOW"} == terminal
    assert type(active) is frozenset
    assert type(terminal) is frozenset
    assert all(type(status) is Booking.Status for status in active | terminal)
    assert active | terminal == set(Booking.Status)
    assert active.isdisjoint(terminal)
    # The groups are not statuses themselves: not members, not choices.
    assert Booking.Status.values == [
        "DRAFT",
        "SCHEDULED",
        "PENDING_CONFIRMATION",
        "RESCHEDULED",
        "COMPLETED",
        "CANCELLED",
        "NO_SHOW",
    ]


@pytest.mark.parametrize(
    "name", ["booking_host_active_blocked", "booking_no_overlap_per_host"], ids=str
)
def test_the_active_group_is_what_makes_a_host_busy_in_the_database(name):
    [rule] = [
        rule for rule in [*Booking._meta.indexes, *Booking._meta.constraints] if rule.name == name
    ]
    assert rule.condition == Q(status__in=sorted(Booking.Status.ACTIVE))


@pytest.fixture
def history(event_type, hosts):
    return BookingHistory.objects.create(
        booking=BookingFactory(event_type=event_type, assigned_to=hosts[0]),
        action=BookingHistory.Action.CREATED,
        to_status=Booking.Status.DRAFT,
        actor_type=BookingHistory.ActorType.SYSTEM,
    )


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"action": "create"}, "history_action_valid"),
        ({"action": ""}, "history_action_valid"),
        ({"actor_type": "robot"}, "history_actor_type_valid"),
        ({"actor_type": ""}, "history_actor_type_valid"),
        ({"from_status": "LOST"}, "history_from_status_valid"),
        ({"to_status": "LOST"}, "history_to_status_valid"),
        ({"to_status": ""}, "history_to_status_valid"),
    ],
)
def test_history_check_constraints(history, fields, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        BookingHistory.objects.filter(pk=history.pk).update(**fields)


def test_history_check_constraints_hold_on_insert(history):
    with pytest.raises(IntegrityError, match="history_action_valid"), transaction.atomic():
        BookingHistory.objects.create(
            booking=history.booking,
            action="deleted",
            to_status=Booking.Status.CANCELLED,
            actor_type=BookingHistory.ActorType.SYSTEM,
        )


@pytest.mark.parametrize("action", BookingHistory.Action.values)
def test_history_accepts_every_action_and_status(history, action):
    for from_status in ["", *Booking.Status.values]:
        BookingHistory.objects.filter(pk=history.pk).update(
            action=action, from_status=from_status, to_status=from_status or "DRAFT"
        )
    for actor_type in BookingHistory.ActorType.values:
        BookingHistory.objects.filter(pk=history.pk).update(actor_type=actor_type)


def test_history_actions_keep_the_values_services_write():
    assert BookingHistory.Action.values == [
        "created",
        "routed",
        "confirmed",
        "completed",
        "no_show",
        "cancelled",
        "rescheduled",
        "attendee_updated",
    ]


@pytest.mark.postgres
def test_a_booking_cannot_use_another_teams_event_type_or_host(event_type, hosts, other_team):
    from tests.factories import EventTypeFactory, TeamMemberFactory

    foreign_host = TeamMemberFactory(team=other_team)
    foreign_type = EventTypeFactory(team=other_team, hosts=[foreign_host])
    with pytest.raises(IntegrityError, match="booking_host_same_team"), transaction.atomic():
        BookingFactory(event_type=event_type, assigned_to=foreign_host)
    with pytest.raises(IntegrityError, match="booking_event_type_same_team"), transaction.atomic():
        BookingFactory(event_type=foreign_type, team=event_type.team, assigned_to=hosts[0])
