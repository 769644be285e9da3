"""POST /v1/bookings: validation, the created booking, its history and its email."""

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from bookings.models import Booking, BookingHistory, EventType
from notifications.models import EmailOutbox
from tests.assertions import UTC_TIME, assert_error, assert_ok
from tests.conftest import make_client
from tests.factories import BookingFactory, EventTypeFactory, TeamMemberFactory

from .create_helpers import create_body, in_days, iso, post_booking

pytestmark = pytest.mark.django_db


def test_create_returns_201_with_booking_and_location(api, event_type, hosts):
    start = in_days(2)
    body = create_body(
        event_type,
        start,
        attendee={
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+44 (20) 7183-8750",
            "timezone": "Europe/London",
        },
        custom_fields={"company": "Analytical Engines"},
        metadata={"source": "test", "n": 1},
    )

    response = post_booking(api, body)

    payload = assert_ok(response, "booking", status=201)
    booking = payload["booking"]
    assert response["Location"] == f"/v1/bookings/{booking['id']}"
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert booking["id"].startswith("bkg_")
    assert booking["status"] == "SCHEDULED"
    assert booking["event_type_id"] == event_type.id
    assert booking["assigned_to_id"] in {host.id for host in hosts}
    assert booking["start_time"] == iso(start)
    assert booking["end_time"] == iso(start + timedelta(minutes=30))
    assert booking["attendee"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+442071838750",
        "timezone": "Europe/London",
    }
    assert booking["custom_fields"] == {"company": "Analytical Engines"}
    assert booking["metadata"] == {"source": "test", "n": 1}
    assert booking["rescheduled_from_id"] is None
    assert booking["rescheduled_to_id"] is None
    assert booking["cancellation"] is None
    assert UTC_TIME.match(booking["created_at"])
    assert booking["created_at"] == booking["updated_at"]

    row = Booking.objects.get(pk=booking["id"])
    assert row.team_id == event_type.team_id
    assert (row.blocked_start, row.blocked_end) == (row.start_time, row.end_time)
    # The stored booking reads back exactly as it was answered.
    assert api.get(f"/v1/bookings/{row.id}").json()["booking"] == booking


def test_offset_times_are_stored_in_utc(api, event_type):
    start = in_days(2, hour=13)
    local = start.astimezone(timezone.get_fixed_timezone(120))  # 15:00+02:00
    response = post_booking(api, create_body(event_type, start, requested_time=local.isoformat()))
    assert assert_ok(response, "booking", 201)["booking"]["start_time"] == iso(start)


def test_create_writes_history_of_creation_and_routing(api, event_type, team):
    response = post_booking(api, create_body(event_type, in_days(2)))
    booking = Booking.objects.get(pk=response.json()["booking"]["id"])

    entries = list(BookingHistory.objects.filter(booking=booking).order_by("at", "id"))
    assert [(e.action, e.from_status, e.to_status) for e in entries] == [
        ("created", "", "DRAFT"),
        ("routed", "DRAFT", "SCHEDULED"),
    ]
    key_id = team.api_keys.get().id
    assert (entries[0].actor_type, entries[0].actor_id) == ("api_key", key_id)
    assert entries[1].actor_type == "system"
    assert entries[1].changes == {"assigned_to_id": [None, booking.assigned_to_id]}


def test_create_reads_the_clock_once(api, event_type, monkeypatch):
    # A clock that moves on at every reading: any second reading would show.
    start, ticks = timezone.now(), itertools.count()
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(milliseconds=next(ticks)))

    response = post_booking(api, create_body(event_type, in_days(2)))

    booking = Booking.objects.get(pk=assert_ok(response, "booking", 201)["booking"]["id"])
    history_times = list(booking.history.values_list("at", flat=True))
    outbox = EmailOutbox.objects.get(booking=booking)
    assert len(history_times) == 2
    assert [booking.updated_at, *history_times, outbox.next_attempt_at] == [booking.created_at] * 4


def test_create_queues_and_sends_one_confirmation_after_commit(
    api, event_type, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_booking(api, create_body(event_type, in_days(2)))
    booking_id = response.json()["booking"]["id"]

    assert len(callbacks) == 1
    row = EmailOutbox.objects.get(booking_id=booking_id)
    assert (row.kind, row.status, row.attempts, row.to_email) == (
        "confirmation",
        "sent",
        1,
        "ada@example.com",
    )
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["ada@example.com"]
    assert message.subject.startswith("Confirmed:")
    ics = next(a for a in message.attachments if a[0] == "invite.ics")
    assert "METHOD:REQUEST" in ics[1]
    assert f"UID:{Booking.objects.get(pk=booking_id).ical_uid}" in ics[1]


def test_requires_confirmation_creates_pending_and_sends_awaiting_notice(
    api, team, hosts, mailoutbox, django_capture_on_commit_callbacks
):
    event_type = EventTypeFactory(
        team=team,
        scheduling_type=EventType.SchedulingType.SOLO,
        requires_confirmation=True,
        hosts=hosts[:1],
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post_booking(api, create_body(event_type, in_days(2)))

    booking = assert_ok(response, "booking", 201)["booking"]
    assert booking["status"] == "PENDING_CONFIRMATION"
    assert booking["assigned_to_id"] == hosts[0].id
    assert BookingHistory.objects.filter(
        booking_id=booking["id"], action="routed"
    ).get().to_status == ("PENDING_CONFIRMATION")
    assert [m.subject.split(":")[0] for m in mailoutbox] == ["Awaiting confirmation"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("event_type_id"), "event_type_id"),
        (lambda b: b.update(event_type_id="evt_nope"), "event_type_id"),
        (lambda b: b.update(event_type_id="evt_01M87600000000000000000000"), "event_type_id"),
        (lambda b: b.update(event_type_id=12), "event_type_id"),
        (lambda b: b.pop("requested_time"), "requested_time"),
        (lambda b: b.update(requested_time=iso(in_days(30)).rstrip("Z")), "requested_time"),
        (lambda b: b.update(requested_time="tomorrow"), "requested_time"),
        (lambda b: b.update(requested_time="2026-13-01T15:00:00Z"), "requested_time"),
        (lambda b: b.update(requested_time=1764601200), "requested_time"),
        (lambda b: b.update(requested_time="9999-12-31T23:59:00Z"), "requested_time"),
        (lambda b: b.pop("attendee"), "attendee"),
        (lambda b: b.update(attendee="Ada"), "attendee"),
        (lambda b: b["attendee"].pop("name"), "attendee"),
        (lambda b: b["attendee"].update(name=""), "attendee"),
        (lambda b: b["attendee"].update(name="x" * 201), "attendee"),
        (lambda b: b["attendee"].pop("email"), "attendee"),
        (lambda b: b["attendee"].update(email="not-an-email"), "attendee"),
        (lambda b: b["attendee"].update(phone="555-0123"), "attendee"),
        (lambda b: b["attendee"].update(phone="+12345"), "attendee"),
        (lambda b: b["attendee"].update(phone="+1234567890123456"), "attendee"),
        (lambda b: b["attendee"].update(phone="+1 555 CALL ME"), "attendee"),
        (lambda b: b["attendee"].update(timezone="Mars/Olympus_Mons"), "attendee"),
        (lambda b: b["attendee"].update(shoe_size=42), "attendee"),
        (lambda b: b.update(assigned_to_id="bob"), "assigned_to_id"),
        (lambda b: b.update(custom_fields=["a"]), "custom_fields"),
        (lambda b: b.update(custom_fields="a"), "custom_fields"),
        (lambda b: b.update(metadata=None), "metadata"),
        (lambda b: b.update(metadata={"blob": "x" * 17000}), "metadata"),
        (lambda b: b.update(status="COMPLETED"), "status"),
        (lambda b: b.update(start_time="2026-12-01T15:00:00Z"), "start_time"),
    ],
)
def test_invalid_body_is_400_naming_the_field_and_creates_nothing(api, event_type, mutate, field):
    body = create_body(event_type, in_days(2))
    mutate(body)

    response = post_booking(api, body)

    error = assert_error(response, 400, "validation_error")
    assert field in error["details"], error
    assert not Booking.objects.exists()
    assert not EmailOutbox.objects.exists()


@pytest.mark.parametrize("body", [[], "booking", 42, None])
def test_body_that_is_not_an_object_is_400(api, body):
    response = api.post("/v1/bookings", body, format="json")
    assert_error(response, 400, "validation_error")
    assert not Booking.objects.exists()


def test_malformed_json_is_400(api):
    response = api.post("/v1/bookings", b'{"event_type_id": ', content_type="application/json")
    assert_error(response, 400, "validation_error")


def test_other_content_type_is_415(api, event_type):
    response = api.post("/v1/bookings", b"event_type_id=x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")
    assert not Booking.objects.exists()


def test_inactive_event_type_is_400(api, event_type):
    EventType.objects.filter(pk=event_type.pk).update(is_active=False)
    response = post_booking(api, create_body(event_type, in_days(2)))
    assert_error(response, 400, "validation_error", details={"event_type_id"})
    assert not Booking.objects.exists()


def test_event_type_of_another_team_is_400_unknown(api, other_team):
    foreign = EventTypeFactory(team=other_team, hosts=[TeamMemberFactory(team=other_team)])
    response = post_booking(api, create_body(foreign, in_days(2)))
    error = assert_error(response, 400, "validation_error", details={"event_type_id"})
    assert error["details"]["event_type_id"] == ["Unknown event type."]
    assert not Booking.objects.exists()


def test_minimum_booking_notice_is_enforced(api, event_type):
    EventType.objects.filter(pk=event_type.pk).update(minimum_booking_notice=120)
    too_soon = (timezone.now() + timedelta(minutes=100)).replace(second=0, microsecond=0)
    response = post_booking(api, create_body(event_type, too_soon))
    assert_error(response, 400, "validation_error", details={"requested_time"})
    assert not Booking.objects.exists()

    later = too_soon + timedelta(minutes=30)
    assert post_booking(api, create_body(event_type, later)).status_code == 201


def test_a_time_in_the_past_is_400(api, event_type):
    response = post_booking(api, create_body(event_type, timezone.now() - timedelta(hours=1)))
    assert_error(response, 400, "validation_error", details={"requested_time"})


def test_key_without_create_scope_is_403_and_creates_nothing(team, event_type):
    client = make_client(team, scopes=["bookings:read"])
    response = post_booking(client, create_body(event_type, in_days(2)))
    assert_error(response, 403, "forbidden")
    assert not Booking.objects.exists()


def test_no_key_is_401(event_type):
    from rest_framework.test import APIClient

    response = post_booking(APIClient(), create_body(event_type, in_days(2)))
    assert_error(response, 401, "unauthorized")


# --- Routing ------------------------------------------------------------------------------


def test_round_robin_spreads_thirty_sequential_bookings_evenly(api, event_type, hosts):
    start = in_days(3, hour=0)
    assigned = []
    for n in range(30):
        response = post_booking(api, create_body(event_type, start + timedelta(hours=n)))
        assigned.append(assert_ok(response, "booking", 201)["booking"]["assigned_to_id"])

    assert {host.id: assigned.count(host.id) for host in hosts} == {h.id: 10 for h in hosts}
    # Least recently assigned first, ties by id: a strict rotation in id order.
    ordered = sorted(host.id for host in hosts)
    assert assigned[:6] == ordered * 2


def test_round_robin_skips_busy_and_inactive_hosts(api, event_type, hosts):
    start = in_days(2)
    BookingFactory(event_type=event_type, assigned_to=hosts[0], start_time=start)
    hosts[1].is_active = False
    hosts[1].save()

    response = post_booking(api, create_body(event_type, start))

    assert assert_ok(response, "booking", 201)["booking"]["assigned_to_id"] == hosts[2].id


def test_round_robin_prefers_least_recently_assigned(api, event_type, hosts):
    # hosts[0] and hosts[2] were assigned (in that order); hosts[1] never was.
    BookingFactory(event_type=event_type, assigned_to=hosts[0], start_time=in_days(5))
    BookingFactory(event_type=event_type, assigned_to=hosts[2], start_time=in_days(6))
    first = post_booking(api, create_body(event_type, in_days(2)))
    second = post_booking(api, create_body(event_type, in_days(2)))
    assert first.json()["booking"]["assigned_to_id"] == hosts[1].id
    assert second.json()["booking"]["assigned_to_id"] == hosts[0].id


def test_no_free_host_is_409_and_leaves_nothing_behind(api, event_type, hosts):
    start = in_days(2)
    for host in hosts:
        BookingFactory(event_type=event_type, assigned_to=host, start_time=start)
    before = set(Booking.objects.values_list("id", flat=True))

    response = post_booking(api, create_body(event_type, start + timedelta(minutes=15)))

    assert_error(response, 409, "slot_unavailable")
    assert set(Booking.objects.values_list("id", flat=True)) == before
    assert not BookingHistory.objects.exists()
    assert not EmailOutbox.objects.exists()


def test_cancelled_and_completed_bookings_do_not_make_a_host_busy(api, team, hosts):
    event_type = EventTypeFactory(
        team=team, scheduling_type=EventType.SchedulingType.SOLO, hosts=hosts[:1]
    )
    start = in_days(2)
    BookingFactory(
        event_type=event_type,
        assigned_to=hosts[0],
        start_time=start,
        status=Booking.Status.CANCELLED,
        cancelled_by="api",
        cancelled_at=timezone.now(),
    )
    BookingFactory(
        event_type=event_type,
        assigned_to=hosts[0],
        start_time=start,
        status=Booking.Status.COMPLETED,
    )
    assert post_booking(api, create_body(event_type, start)).status_code == 201


def test_solo_event_type_has_one_host(api, team, hosts):
    event_type = EventTypeFactory(
        team=team, scheduling_type=EventType.SchedulingType.SOLO, hosts=hosts[:1]
    )
    start = in_days(2)
    first = post_booking(api, create_body(event_type, start))
    assert first.json()["booking"]["assigned_to_id"] == hosts[0].id
    assert_error(post_booking(api, create_body(event_type, start)), 409, "slot_unavailable")


@pytest.mark.parametrize(
    ("offset_minutes", "free"),
    [
        (-40, False),  # ends 09:50 + buffer_after 15 = 10:05 > existing's 10:00 - 5
        (-50, True),  # ends 09:40 + 15 = 09:55, exactly the existing's 09:55 start: adjacent
        (30, False),  # starts 10:30 - 5 = 10:25 < existing's 10:30 + 15 = 10:45
        (50, True),  # starts 10:50 - 5 = 10:45: adjacent, half-open ranges
    ],
)
def test_buffers_widen_the_busy_range(api, team, hosts, offset_minutes, free):
    event_type = EventTypeFactory(
        team=team,
        scheduling_type=EventType.SchedulingType.SOLO,
        buffer_before=5,
        buffer_after=15,
        hosts=hosts[:1],
    )
    existing = in_days(2, hour=10)
    assert post_booking(api, create_body(event_type, existing)).status_code == 201

    start = existing + timedelta(minutes=offset_minutes)
    response = post_booking(api, create_body(event_type, start))

    if free:
        booking = assert_ok(response, "booking", 201)["booking"]
        row = Booking.objects.get(pk=booking["id"])
        assert row.blocked_start == start - timedelta(minutes=5)
        assert row.blocked_end == start + timedelta(minutes=45)
    else:
        assert_error(response, 409, "slot_unavailable")
        assert Booking.objects.count() == 1


def test_pinned_host_skips_routing(api, event_type, hosts):
    response = post_booking(api, create_body(event_type, in_days(2), assigned_to_id=hosts[2].id))
    assert assert_ok(response, "booking", 201)["booking"]["assigned_to_id"] == hosts[2].id


def test_busy_pinned_host_is_409_even_when_others_are_free(api, event_type, hosts):
    start = in_days(2)
    BookingFactory(event_type=event_type, assigned_to=hosts[2], start_time=start)
    response = post_booking(api, create_body(event_type, start, assigned_to_id=hosts[2].id))
    assert_error(response, 409, "slot_unavailable")
    assert Booking.objects.count() == 1


@pytest.mark.parametrize("which", ["not_a_host", "inactive_host", "other_team", "unknown"])
def test_pinned_host_must_be_an_active_host_of_the_event_type(
    api, team, other_team, event_type, hosts, which
):
    member = {
        "not_a_host": lambda: TeamMemberFactory(team=team),
        "inactive_host": lambda: hosts[0],
        "other_team": lambda: TeamMemberFactory(team=other_team),
        "unknown": lambda: type("M", (), {"id": "mem_01M87600000000000000000000"}),
    }[which]()
    if which == "inactive_host":
        hosts[0].is_active = False
        hosts[0].save()
    response = post_booking(api, create_body(event_type, in_days(2), assigned_to_id=member.id))
    assert_error(response, 400, "validation_error", details={"assigned_to_id"})
    assert not Booking.objects.exists()


def test_hosts_are_busy_across_event_types(api, team, hosts):
    a = EventTypeFactory(team=team, scheduling_type="SOLO", hosts=hosts[:1])
    b = EventTypeFactory(team=team, scheduling_type="SOLO", hosts=hosts[:1])
    start = in_days(2)
    assert post_booking(api, create_body(a, start)).status_code == 201
    assert_error(post_booking(api, create_body(b, start)), 409, "slot_unavailable")


# --- A fixed number of queries ------------------------------------------------------------


def test_create_costs_a_fixed_number_of_queries(
    api, event_type, django_assert_num_queries, django_capture_on_commit_callbacks
):
    # The event type (the key is cached), the candidate hosts, then the writes. PostgreSQL: the
    # booking, its history and its email in one statement (under a savepoint pair here, in the
    # test's transaction). SQLite: all in a transaction (a savepoint pair here), each try in a
    # savepoint of its own: booking, history (one bulk insert), email.
    queries = 5 if connection.vendor == "postgresql" else 9
    for hour in (10, 11):
        with django_assert_num_queries(queries):
            response = post_booking(api, create_body(event_type, in_days(2, hour=hour)))
        assert response.status_code == 201


def test_create_with_key_and_replay_cost_a_fixed_number_of_queries(
    api, event_type, django_assert_num_queries
):
    body = create_body(event_type, in_days(2))
    # + the key look-up; the key is written with the booking (PostgreSQL: in the one insert
    # statement; SQLite: one more insert in the create's transaction).
    with django_assert_num_queries(6 if connection.vendor == "postgresql" else 11):
        assert post_booking(api, body, key="fixed-queries").status_code == 201
    # the key look-up, nothing else.
    with django_assert_num_queries(1):
        assert post_booking(api, body, key="fixed-queries").status_code == 200


def test_what_orjson_cannot_write_is_written_as_before(api, event_type):
    """The renderer falls back to the standard library: an integer beyond 64 bits in metadata
    comes back exactly, in the response and in its replay."""
    metadata = {"big": 2**70, "negative": -(2**65), "text": "line\u2028separator é"}
    body = create_body(event_type, in_days(2), metadata=metadata)

    first = post_booking(api, body, key="big-numbers")
    replay = post_booking(api, body, key="big-numbers")

    assert first.status_code == 201, first.content
    assert b'"big":1180591620717411303424' in first.content
    assert first.json()["booking"]["metadata"] == metadata
    assert replay.status_code == 200
    assert replay.json()["booking"]["metadata"] == metadata
    assert Booking.objects.get(pk=first.json()["booking"]["id"]).metadata == metadata
