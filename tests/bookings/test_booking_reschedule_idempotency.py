"""Idempotency-Key on POST /v1/bookings/{id}/reschedule: replay, reuse across bodies, bookings
and endpoints, a failure leaving the key free, keys per team."""

from datetime import timedelta

import pytest

from bookings.models import Booking, IdempotencyKey
from notifications.models import EmailOutbox
from tests.assertions import assert_error, assert_ok
from tests.conftest import make_client
from tests.factories import EventTypeFactory, TeamMemberFactory

from .booking_state import (
    ada_booking_create,
    booking_create_via_api,
    busy_booking,
    reschedule,
    snapshot,
)
from .create_helpers import create_body, in_days, iso, post_booking

pytestmark = pytest.mark.django_db


@pytest.fixture
def original(api, event_type):
    return ada_booking_create(api, event_type)


def test_replay_is_the_original_bytes_and_does_nothing(
    api, original, django_capture_on_commit_callbacks
):
    body = {"requested_time": iso(in_days(3)), "reason": "Retry me"}
    with django_capture_on_commit_callbacks() as first_callbacks:
        first = reschedule(api, original.id, key="move-1", **body)
    assert first.status_code == 201
    assert len(first_callbacks) == 1
    after_first = {b.id: snapshot(b.id) for b in Booking.objects.all()}

    with django_capture_on_commit_callbacks() as callbacks:
        replay = reschedule(api, original.id, key="move-1", **dict(reversed(body.items())))

    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    assert replay["Location"] == first["Location"]
    assert replay.content == first.content[:-1] + b',"idempotent_replay":true}'
    assert "Idempotent-Replayed" not in first
    assert callbacks == []
    assert {b.id: snapshot(b.id) for b in Booking.objects.all()} == after_first
    assert EmailOutbox.objects.count() == 2


def test_same_key_with_another_body_is_422(api, original):
    assert reschedule(api, original.id, in_days(3), key="k").status_code == 201
    before = {b.id: snapshot(b.id) for b in Booking.objects.all()}

    assert_error(reschedule(api, original.id, in_days(4), key="k"), 422, "idempotency_key_reused")

    assert {b.id: snapshot(b.id) for b in Booking.objects.all()} == before


def test_same_key_on_another_bookings_reschedule_is_422(api, original, event_type):
    other = booking_create_via_api(api, event_type, in_days(2, hour=12))
    assert reschedule(api, original.id, in_days(3), key="k").status_code == 201
    before = snapshot(other.id)

    assert_error(reschedule(api, other.id, in_days(3), key="k"), 422, "idempotency_key_reused")

    assert snapshot(other.id) == before
    assert Booking.objects.count() == 3


def test_a_create_key_reused_for_a_reschedule_is_422(api, original, event_type):
    body = create_body(event_type, in_days(2, hour=12))
    assert post_booking(api, body, key="shared").status_code == 201
    before = snapshot(original.id)

    assert_error(
        reschedule(api, original.id, in_days(3), key="shared"), 422, "idempotency_key_reused"
    )

    assert snapshot(original.id) == before
    assert Booking.objects.count() == 2


def test_a_failed_reschedule_leaves_the_key_free(api, original, event_type, hosts):
    busy_start = in_days(3)
    for host in hosts:
        busy_booking(event_type, host, busy_start)
    before = snapshot(original.id)

    assert_error(reschedule(api, original.id, busy_start, key="k"), 409, "slot_unavailable")
    assert not IdempotencyKey.objects.exists()
    assert snapshot(original.id) == before

    response = reschedule(api, original.id, busy_start + timedelta(hours=2), key="k")
    new = assert_ok(response, "booking", 201)["booking"]
    assert IdempotencyKey.objects.get().booking_id == new["id"]


def test_keys_are_scoped_per_team(api, original, other_team):
    other_api = make_client(other_team)
    foreign_type = EventTypeFactory(team=other_team, hosts=[TeamMemberFactory(team=other_team)])
    foreign = booking_create_via_api(other_api, foreign_type, in_days(2))

    ours = reschedule(api, original.id, in_days(3), key="same-string")
    theirs = reschedule(other_api, foreign.id, in_days(3), key="same-string")

    assert ours.status_code == theirs.status_code == 201
    assert ours.json()["booking"]["rescheduled_from_id"] == original.id
    assert theirs.json()["booking"]["rescheduled_from_id"] == foreign.id
    assert IdempotencyKey.objects.filter(key="same-string").count() == 2


def test_reschedule_with_key_and_replay_cost_a_fixed_number_of_queries(
    api, original, django_assert_num_queries
):
    # + key look-up, savepoint + key insert + release, key update.
    with django_assert_num_queries(19):
        assert reschedule(api, original.id, in_days(3), key="q").status_code == 201
    # the key look-up, nothing else.
    with django_assert_num_queries(1):
        assert reschedule(api, original.id, in_days(3), key="q").status_code == 200
