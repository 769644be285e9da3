"""Contract rules that mutation testing found unprotected: each test here fails on a small,
wrong change to the production code that the rest of the suite let through."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from bookings import routing
from bookings.idempotency import idempotency_keys_purge, request_fingerprint
from bookings.models import Booking, BookingHistory, EventType, IdempotencyKey
from notifications.models import EmailOutbox
from tests.assertions import assert_error, assert_ok
from tests.conftest import make_client
from tests.factories import BookingFactory, EventTypeFactory, TeamMemberFactory

from .create_helpers import create_body, held_open, in_days, iso, lock_timeout, post_booking

pytestmark = pytest.mark.django_db

S = Booking.Status
ACTIVE = [S.DRAFT, S.SCHEDULED, S.PENDING_CONFIRMATION, S.RESCHEDULED]
# A whole minute, so "now + notice" is a time a client can send exactly.
FROZEN_NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _nothing_created_beyond(count: int) -> None:
    assert Booking.objects.count() == count
    assert not BookingHistory.objects.exists()
    assert not EmailOutbox.objects.exists()
    assert not IdempotencyKey.objects.exists()


# --- Routing: least recently assigned, ties by id ---------------------------------------------


@pytest.fixture
def hosts_by_id(team):
    """Three hosts sorted by id, linked to the event type in the reverse order."""
    members = sorted((TeamMemberFactory(team=team) for _ in range(3)), key=lambda m: m.id)
    event_type = EventTypeFactory(team=team, hosts=list(reversed(members)))
    return event_type, members


def test_never_assigned_hosts_tie_and_go_by_id_not_by_link_order(api, hosts_by_id):
    event_type, (a, b, c) = hosts_by_id

    assigned = [
        assert_ok(post_booking(api, create_body(event_type, in_days(2, hour=h))), "booking", 201)[
            "booking"
        ]["assigned_to_id"]
        for h in (9, 10, 11)
    ]

    assert assigned == [a.id, b.id, c.id]


def test_hosts_last_assigned_at_the_same_moment_go_by_id(api, hosts_by_id):
    event_type, (a, b, c) = hosts_by_id
    moment = timezone.now() - timedelta(hours=1)
    # b and c were last assigned at the same instant; a more recently. Each booking is on
    # its own day, far from the new one: nobody is busy.
    for day, (host, created) in enumerate(
        [(c, moment), (b, moment), (a, moment + timedelta(minutes=1))], start=5
    ):
        BookingFactory(
            event_type=event_type, assigned_to=host, start_time=in_days(day), created_at=created
        )

    response = post_booking(api, create_body(event_type, in_days(2)))

    assert assert_ok(response, "booking", 201)["booking"]["assigned_to_id"] == b.id


# --- Routing: every active status makes a host busy -------------------------------------------


@pytest.mark.parametrize("status", ACTIVE)
def test_each_active_status_makes_the_host_busy(api, team, hosts, status):
    event_type = EventTypeFactory(team=team, scheduling_type="SOLO", hosts=hosts[:1])
    start = in_days(2)
    BookingFactory(event_type=event_type, assigned_to=hosts[0], start_time=start, status=status)

    response = post_booking(
        api, create_body(event_type, start + timedelta(minutes=10)), key=f"busy-{status}"
    )

    assert_error(response, 409, "slot_unavailable")
    _nothing_created_beyond(1)


@pytest.mark.parametrize("status", ACTIVE)
def test_a_pinned_host_is_busy_in_each_active_status(api, event_type, hosts, status):
    start = in_days(2)
    BookingFactory(event_type=event_type, assigned_to=hosts[1], start_time=start, status=status)

    response = post_booking(api, create_body(event_type, start, assigned_to_id=hosts[1].id))

    assert_error(response, 409, "slot_unavailable")
    _nothing_created_beyond(1)


@pytest.mark.parametrize("status", [S.CANCELLED, S.COMPLETED, S.NO_SHOW])
def test_terminal_bookings_leave_the_host_free(api, team, hosts, status):
    event_type = EventTypeFactory(team=team, scheduling_type="SOLO", hosts=hosts[:1])
    start = in_days(2)
    extra = {"cancelled_by": "api", "cancelled_at": timezone.now()} if status == S.CANCELLED else {}
    BookingFactory(
        event_type=event_type, assigned_to=hosts[0], start_time=start, status=status, **extra
    )

    response = post_booking(api, create_body(event_type, start))

    assert assert_ok(response, "booking", 201)["booking"]["assigned_to_id"] == hosts[0].id
    assert Booking.objects.count() == 2


@pytest.mark.parametrize(("hours_after", "free"), [(71, False), (72, True)])
def test_the_longest_booking_blocks_its_host_to_its_far_end(api, team, hosts, hours_after, free):
    """24 hours with 24-hour buffers on both sides: the host is busy for 72 hours, and a new
    booking that only touches the far end of that range still sees it."""
    event_type = EventTypeFactory(
        team=team,
        scheduling_type="SOLO",
        duration=24 * 60,
        buffer_before=24 * 60,
        buffer_after=24 * 60,
        hosts=hosts[:1],
    )
    first = in_days(3, hour=0)
    assert post_booking(api, create_body(event_type, first)).status_code == 201

    # The new one blocks from 24 hours before its start: 47 h (busy) or 48 h (adjacent).
    response = post_booking(api, create_body(event_type, first + timedelta(hours=hours_after)))

    if free:
        assert_ok(response, "booking", 201)
        assert Booking.objects.count() == 2
    else:
        assert_error(response, 409, "slot_unavailable")
        assert Booking.objects.count() == 1


# --- The database constraint covers every active status (PostgreSQL) ----------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("existing", "new"),
    [(status, S.SCHEDULED) for status in ACTIVE] + [(S.SCHEDULED, status) for status in ACTIVE],
)
def test_the_constraint_refuses_an_overlap_between_any_two_active_statuses(
    event_type, hosts, existing, new
):
    start = in_days(2)
    BookingFactory(event_type=event_type, assigned_to=hosts[0], start_time=start, status=existing)

    with pytest.raises(IntegrityError, match="booking_no_overlap_per_host"), transaction.atomic():
        BookingFactory(
            event_type=event_type,
            assigned_to=hosts[0],
            start_time=start + timedelta(minutes=10),
            status=new,
        )


# --- minimum_booking_notice at its exact boundary -----------------------------------------------


@pytest.fixture
def notice_event_type(event_type):
    EventType.objects.filter(pk=event_type.pk).update(minimum_booking_notice=120)
    event_type.refresh_from_db()
    return event_type


def test_a_start_exactly_at_the_notice_is_accepted(api, notice_event_type):
    with time_machine.travel(FROZEN_NOW, tick=False):
        start = FROZEN_NOW + timedelta(minutes=120)
        response = post_booking(api, create_body(notice_event_type, start))

    assert assert_ok(response, "booking", 201)["booking"]["start_time"] == iso(start)


@pytest.mark.parametrize("short_by", [timedelta(seconds=1), timedelta(minutes=1)])
def test_a_start_just_inside_the_notice_is_400(api, notice_event_type, short_by):
    with time_machine.travel(FROZEN_NOW, tick=False):
        start = FROZEN_NOW + timedelta(minutes=120) - short_by
        response = post_booking(api, create_body(notice_event_type, start), key="too-soon")

    assert_error(response, 400, "validation_error", details={"requested_time"})
    _nothing_created_beyond(0)


# --- Idempotency: 24 hours exactly, purge, in progress, replay after changes ------------------


def test_a_key_lives_24_hours_not_more(api, event_type):
    body = create_body(event_type, in_days(5))
    with time_machine.travel(FROZEN_NOW, tick=False) as clock:
        first = post_booking(api, body, key="daily")
        assert first.status_code == 201
        row = IdempotencyKey.objects.get()
        assert row.expires_at - row.created_at == timedelta(hours=24)

        clock.move_to(FROZEN_NOW + timedelta(hours=24) - timedelta(seconds=1))
        assert post_booking(api, body, key="daily").status_code == 200

        clock.move_to(FROZEN_NOW + timedelta(hours=24, seconds=1))
        second = post_booking(api, body, key="daily")

    assert_ok(second, "booking", 201)
    assert Booking.objects.count() == 2


def test_purge_keeps_a_key_that_has_not_expired_yet(api, event_type):
    with time_machine.travel(timezone.now() - timedelta(hours=23, minutes=30), tick=False):
        post_booking(api, create_body(event_type, in_days(3)), key="half-an-hour-left")
    with time_machine.travel(timezone.now() - timedelta(hours=24, minutes=1), tick=False):
        post_booking(api, create_body(event_type, in_days(4)), key="expired")

    assert idempotency_keys_purge() == 1

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["half-an-hour-left"]
    assert Booking.objects.count() == 2  # bookings are not touched


class _Diag:
    # What PostgreSQL says of a wait on the key's unique index (seen in
    # test_booking_concurrency.py's real one): the relation waited on is the index.
    context = 'while inserting index tuple (0,2) in relation "idempotency_key_unique_per_team"'


class _LockTimeoutCause(Exception):
    sqlstate = "55P03"
    diag = _Diag()


def test_a_key_still_being_processed_is_409_with_retry_after_1(api, event_type, monkeypatch):
    """The write of the key row (with the booking) waits on a concurrent request's uncommitted
    key and gives up (PostgreSQL's lock_timeout): 409 idempotency_request_in_progress,
    Retry-After: 1 — not slot_unavailable, as a wait on a booking would be. The real wait, on
    PostgreSQL: test_booking_concurrency.py."""

    def lock_timeout(*args, **kwargs):
        exc = OperationalError("canceling statement due to lock timeout")
        exc.__cause__ = _LockTimeoutCause()
        raise exc

    monkeypatch.setattr(routing, "_insert_unless_overlapping", lock_timeout)

    response = post_booking(api, create_body(event_type, in_days(2)), key="in-flight")

    assert_error(response, 409, "idempotency_request_in_progress")
    assert response["Retry-After"] == "1"
    _nothing_created_beyond(0)


def test_a_replay_is_200_even_when_the_same_body_would_no_longer_validate(api, event_type):
    body = create_body(event_type, in_days(2))
    first = post_booking(api, body, key="k")
    EventType.objects.filter(pk=event_type.pk).update(is_active=False)

    replay = post_booking(api, body, key="k")

    assert replay.status_code == 200
    assert replay.content == first.content[:-1] + b',"idempotent_replay":true}'
    assert Booking.objects.count() == 1


# --- Scopes: bookings:create alone is enough to create ------------------------------------------


def test_the_create_scope_alone_is_enough_to_create(team, event_type):
    client = make_client(team, scopes=["bookings:create"])

    response = post_booking(client, create_body(event_type, in_days(2)))

    assert_ok(response, "booking", 201)
    assert Booking.objects.count() == 1


def test_every_scope_but_create_is_403(team, event_type):
    from bookings.auth import ALL_SCOPES

    client = make_client(team, scopes=[s for s in ALL_SCOPES if s != "bookings:create"])

    response = post_booking(client, create_body(event_type, in_days(2)))

    assert_error(response, 403, "forbidden")
    assert not Booking.objects.exists()


# --- Input: naive times (relative to now, not a fixed date), phone numbers ---------------------


def test_a_naive_future_time_is_400_and_creates_nothing(api, event_type):
    naive = in_days(30).replace(tzinfo=None).isoformat()

    response = post_booking(api, create_body(event_type, in_days(30), requested_time=naive))

    error = assert_error(response, 400, "validation_error", details={"requested_time"})
    assert "offset" in error["details"]["requested_time"][0]
    assert not Booking.objects.exists()


@pytest.mark.parametrize(
    ("phone", "stored"),
    [
        ("+1234567", "+1234567"),  # 7 digits: the fewest
        ("+123456789012345", "+123456789012345"),  # 15 digits: the most
        ("+1 (234) 567-890.12 345", "+123456789012345"),
        ("+1-555-0123", "+15550123"),  # the contract's own example
    ],
)
def test_phone_digit_count_bounds_are_inclusive(api, event_type, phone, stored):
    body = create_body(
        event_type, in_days(2), attendee={"name": "A", "email": "a@example.com", "phone": phone}
    )

    booking = assert_ok(post_booking(api, body), "booking", 201)["booking"]

    assert booking["attendee"]["phone"] == stored
    assert Booking.objects.get().attendee_phone == stored


@pytest.mark.parametrize("phone", ["+ 1234567", "+(44) 20 7183 8750", "+-1234567", "+.1234567"])
def test_phone_separators_before_the_first_digit_are_400(api, event_type, phone):
    body = create_body(
        event_type, in_days(2), attendee={"name": "A", "email": "a@example.com", "phone": phone}
    )

    error = assert_error(post_booking(api, body), 400, "validation_error", details={"attendee"})
    assert "phone" in error["details"]["attendee"]
    assert not Booking.objects.exists()


@pytest.mark.parametrize("phone", ["+1234567-", "+44 20 7183 8750)", "+1234567 ."])
def test_phone_separators_after_the_last_digit_are_400(api, event_type, phone):
    body = create_body(
        event_type, in_days(2), attendee={"name": "A", "email": "a@example.com", "phone": phone}
    )

    assert_error(post_booking(api, body), 400, "validation_error", details={"attendee"})
    assert not Booking.objects.exists()


# --- A real concurrent key on PostgreSQL --------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_key_held_by_an_uncommitted_request_is_409_in_progress_then_free(api, event_type):
    team = event_type.team
    body = create_body(event_type, in_days(2))

    def claim_the_key():
        now = timezone.now()
        IdempotencyKey.objects.create(
            team=team,
            key="slow",
            fingerprint=request_fingerprint(endpoint="POST /v1/bookings", payload=body),
            created_at=now,
            expires_at=now + timedelta(hours=24),
        )

    # The first request is still running; it will fail and release the key.
    with held_open(claim_the_key), lock_timeout(300):
        response = post_booking(api, body, key="slow")

    assert_error(response, 409, "idempotency_request_in_progress")
    assert response["Retry-After"] == "1"
    assert not Booking.objects.exists()
    # The first attempt rolled back: the key is free and the retry creates the booking.
    assert_ok(post_booking(api, body, key="slow"), "booking", 201)
    assert Booking.objects.count() == 1
