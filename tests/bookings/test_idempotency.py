"""Idempotency-Key on POST /v1/bookings: replay, reuse, expiry, scope, failures."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from bookings.idempotency import KEY_TTL, request_fingerprint
from bookings.models import Booking, BookingHistory, IdempotencyKey
from bookings.tasks import purge_idempotency_keys_task
from notifications.models import EmailOutbox
from tests.assertions import assert_error, assert_ok
from tests.conftest import make_client
from tests.factories import EventTypeFactory, TeamMemberFactory

from .create_helpers import create_body, in_days, post_booking

pytestmark = pytest.mark.django_db


def test_replay_is_the_original_bytes_with_the_marker(api, event_type):
    body = create_body(event_type, in_days(2))
    first = post_booking(api, body, key="retry-me")
    assert first.status_code == 201

    replay = post_booking(api, body, key="retry-me")

    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    assert replay["Location"] == first["Location"]
    assert replay.content == first.content[:-1] + b',"idempotent_replay":true}'
    assert replay.json()["idempotent_replay"] is True
    assert "Idempotent-Replayed" not in first
    assert Booking.objects.count() == 1


def test_replay_sends_nothing_and_writes_nothing(
    api, event_type, mailoutbox, django_capture_on_commit_callbacks
):
    body = create_body(event_type, in_days(2))
    with django_capture_on_commit_callbacks(execute=True):
        post_booking(api, body, key="once")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert post_booking(api, body, key="once").status_code == 200

    assert callbacks == []
    assert len(mailoutbox) == 1
    assert EmailOutbox.objects.count() == 1
    assert BookingHistory.objects.count() == 2


def test_replay_ignores_key_order_and_white_space(api, event_type):
    body = create_body(event_type, in_days(2))
    assert post_booking(api, body, key="k").status_code == 201
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4)

    replay = api.post(
        "/v1/bookings", reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )

    assert replay.status_code == 200
    assert Booking.objects.count() == 1


def test_replay_returns_the_original_even_after_the_booking_changed(api, event_type):
    body = create_body(event_type, in_days(2))
    first = post_booking(api, body, key="k")
    Booking.objects.update(attendee_name="Someone Else")

    replay = post_booking(api, body, key="k")

    assert replay.json()["booking"]["attendee"]["name"] == "Ada Lovelace"
    assert replay.content.startswith(first.content[:-1])


def test_same_key_with_another_body_is_422_and_creates_nothing(api, event_type):
    assert post_booking(api, create_body(event_type, in_days(2)), key="k").status_code == 201

    other = create_body(event_type, in_days(3))
    response = post_booking(api, other, key="k")

    assert_error(response, 422, "idempotency_key_reused")
    assert Booking.objects.count() == 1


def test_fingerprint_covers_the_endpoint():
    payload = {"requested_time": "2026-12-01T15:00:00Z"}
    assert request_fingerprint(endpoint="POST /v1/bookings", payload=payload) != (
        request_fingerprint(endpoint="POST /v1/bookings/bkg_x/reschedule", payload=payload)
    )
    assert request_fingerprint(endpoint="e", payload={"a": 1, "b": 2}) == request_fingerprint(
        endpoint="e", payload={"b": 2, "a": 1}
    )


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "tab\there", "line\x7f"])
def test_invalid_key_is_400_and_creates_nothing(api, event_type, key):
    response = post_booking(api, create_body(event_type, in_days(2)), key=key)
    assert_error(response, 400, "invalid_idempotency_key")
    assert not Booking.objects.exists()
    assert not IdempotencyKey.objects.exists()


def test_longest_printable_key_is_accepted(api, event_type):
    key = "~ !" + "k" * 252
    assert post_booking(api, create_body(event_type, in_days(2)), key=key).status_code == 201
    assert IdempotencyKey.objects.get().key == key


def test_a_400_leaves_the_key_free(api, event_type):
    naive = in_days(2).replace(tzinfo=None).isoformat()
    bad = create_body(event_type, in_days(2), requested_time=naive)
    assert_error(post_booking(api, bad, key="fix-and-retry"), 400, "validation_error")
    assert not IdempotencyKey.objects.exists()

    fixed = create_body(event_type, in_days(2))
    assert post_booking(api, fixed, key="fix-and-retry").status_code == 201


def test_a_409_leaves_the_key_free(api, team, hosts):
    event_type = EventTypeFactory(team=team, scheduling_type="SOLO", hosts=hosts[:1])
    start = in_days(2)
    assert post_booking(api, create_body(event_type, start)).status_code == 201

    assert_error(
        post_booking(api, create_body(event_type, start), key="busy"), 409, "slot_unavailable"
    )
    assert not IdempotencyKey.objects.exists()
    assert Booking.objects.count() == 1

    later = create_body(event_type, start + timedelta(hours=2))
    assert post_booking(api, later, key="busy").status_code == 201


def test_keys_are_scoped_per_team(api, event_type, other_team):
    other_api = make_client(other_team)
    foreign = EventTypeFactory(team=other_team, hosts=[TeamMemberFactory(team=other_team)])

    ours = post_booking(api, create_body(event_type, in_days(2)), key="shared")
    theirs = post_booking(other_api, create_body(foreign, in_days(2)), key="shared")

    assert (ours.status_code, theirs.status_code) == (201, 201)
    assert ours.json()["booking"]["id"] != theirs.json()["booking"]["id"]
    assert Booking.objects.count() == 2


def test_a_replay_works_with_any_key_of_the_team(api, team, event_type):
    body = create_body(event_type, in_days(2))
    first = post_booking(api, body, key="k")
    replay = post_booking(make_client(team), body, key="k")
    assert replay.status_code == 200
    assert replay.content.startswith(first.content[:-1])


def test_key_expires_after_24_hours(api, event_type):
    body = create_body(event_type, in_days(5))
    with time_machine.travel(timezone.now(), tick=False) as clock:
        first = post_booking(api, body, key="daily")
        assert first.status_code == 201

        clock.shift(KEY_TTL - timedelta(seconds=1))
        assert post_booking(api, body, key="daily").status_code == 200

        clock.shift(timedelta(seconds=2))
        second = post_booking(api, body, key="daily")

    # After expiry the key is new again: a second booking (routed to another host).
    assert_ok(second, "booking", 201)
    assert second.json()["booking"]["id"] != first.json()["booking"]["id"]
    assert Booking.objects.count() == 2
    assert IdempotencyKey.objects.get().booking_id == second.json()["booking"]["id"]


def test_purge_deletes_only_expired_keys(api, event_type):
    with time_machine.travel(timezone.now() - timedelta(hours=25), tick=False):
        post_booking(api, create_body(event_type, in_days(3)), key="old")
    post_booking(api, create_body(event_type, in_days(4)), key="fresh")

    call_command("purge_idempotency_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]
    assert Booking.objects.count() == 2  # bookings are not touched


def test_purge_task_deletes_expired_keys(api, event_type):
    with time_machine.travel(timezone.now() - timedelta(hours=30), tick=False):
        post_booking(api, create_body(event_type, in_days(3)), key="old")
    purge_idempotency_keys_task.delay()
    assert not IdempotencyKey.objects.exists()


def test_purge_is_scheduled_by_beat():
    from django.conf import settings

    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "bookings.tasks.purge_idempotency_keys_task" in schedule


def test_create_without_key_stores_no_key(api, event_type):
    assert post_booking(api, create_body(event_type, in_days(2))).status_code == 201
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ({"n": 1}, {"n": 1.0}),
        ({"n": 100}, {"n": 1e2}),
        ({"n": [0, {"m": -3}]}, {"n": [-0.0, {"m": -3.0}]}),
        ({"n": 1.5}, {"n": 15e-1}),
    ],
)
def test_the_fingerprint_reads_a_number_however_it_is_written(first, again):
    assert request_fingerprint(endpoint="e", payload=first) == request_fingerprint(
        endpoint="e", payload=again
    )


@pytest.mark.parametrize(("first", "again"), [({"n": 1}, {"n": 1.5}), ({"n": 1}, {"n": "1"})])
def test_the_fingerprint_tells_other_values_apart(first, again):
    assert request_fingerprint(endpoint="e", payload=first) != request_fingerprint(
        endpoint="e", payload=again
    )


def test_a_retry_that_writes_a_number_another_way_is_a_replay(api, event_type):
    body = create_body(event_type, in_days(2), custom_fields={"seats": 2})
    first = post_booking(api, body, key="numbers")
    raw = json.dumps(body).replace('"seats": 2', '"seats": 2.0').encode()
    assert b'"seats": 2.0' in raw

    again = api.post(
        "/v1/bookings", raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY="numbers"
    )

    assert first.status_code == 201
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert Booking.objects.count() == 1


@pytest.mark.parametrize("scheduling_type", ["ROUND_ROBIN", "SOLO"])
def test_a_duplicate_that_missed_the_first_in_its_look_up_replays_it(
    api, team, hosts, monkeypatch, scheduling_type
):
    """The key is written with the booking, so a duplicate whose look-up ran before the first
    committed goes on to write: with another host its statement fails whole on the key's
    unique index (ROUND_ROBIN), or it finds the one host taken (SOLO). Either way it replays
    the first and writes nothing. The look-up's miss is forced here once (the concurrent
    tests in test_booking_concurrency.py reach it by timing)."""
    from bookings import idempotency

    event_type = EventTypeFactory(team=team, hosts=hosts, scheduling_type=scheduling_type)
    body = create_body(event_type, in_days(2))
    first = post_booking(api, body, key="raced")
    assert first.status_code == 201
    looked_up = idempotency._live_row
    misses = iter([True])

    def missed_once(**kwargs):
        return (None, False) if next(misses, False) else looked_up(**kwargs)

    monkeypatch.setattr(idempotency, "_live_row", missed_once)

    again = post_booking(api, body, key="raced")

    assert again.status_code == 200, again.content
    assert again.content == first.content[:-1] + b',"idempotent_replay":true}'
    assert Booking.objects.count() == 1
    assert BookingHistory.objects.count() == 2
    assert EmailOutbox.objects.count() == 1
    assert IdempotencyKey.objects.get().booking_id == first.json()["booking"]["id"]
