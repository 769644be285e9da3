"""Concurrent reschedules: of one booking (with and without an Idempotency-Key), of several
bookings into one slot, and racing a cancel, a confirm or creates for the same slot.

As in test_lifecycle_concurrency.py: threads released together, committing for real, on
PostgreSQL (row locks, the exclusion constraint) and SQLite; every outcome counted.
"""

from collections import Counter
from datetime import timedelta

import pytest

from bookings.models import Booking, EventType, IdempotencyKey
from notifications.models import EmailOutbox
from tests.concurrency import client_for, outcome, run_together
from tests.factories import EventTypeFactory

from .create_helpers import create_body, in_days, iso, post_booking
from .lifecycle_helpers import (
    book,
    email_rows,
    history_actions,
    host_overlaps,
    pending_event_type,
    post_action,
    refused,
)

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 20
Status = Booking.Status
Kind = EmailOutbox.Kind


@pytest.fixture
def pending(team, hosts):
    return pending_event_type(team, hosts)


def test_concurrent_reschedules_of_one_booking_make_one_new_booking(api, event_type):
    outcomes: Counter = Counter()
    for round_number in range(ROUNDS):
        day = 2 + round_number
        booking = book(api, event_type, in_days(day))
        bodies = [{"requested_time": iso(in_days(day, hour=16 + i))} for i in range(5)]

        responses = run_together(
            5,
            lambda i, b=booking, bodies=bodies: post_action(
                api.secret, b["id"], "reschedule", bodies[i]
            ),
        )

        outcomes.update(outcome(r) for r in responses)
        [winner] = [i for i, r in enumerate(responses) if r.status_code == 201]
        for i, response in enumerate(responses):
            if i != winner:
                assert refused(response)["status"] == Status.CANCELLED
        new = responses[winner].json()["booking"]
        assert new["start_time"] == bodies[winner]["requested_time"]
        assert [b.id for b in Booking.objects.filter(rescheduled_from=booking["id"])] == [new["id"]]
        original = Booking.objects.get(pk=booking["id"])
        assert (original.status, original.rescheduled_to_id) == (Status.CANCELLED, new["id"])
        assert history_actions(booking["id"]) == ["created", "routed", "rescheduled"]
        assert history_actions(new["id"]) == ["rescheduled"]
        # The new time's confirmation, and no cancellation notice for the original.
        assert [row.kind for row in email_rows(booking["id"])] == [Kind.CONFIRMATION]
        assert [row.kind for row in email_rows(new["id"])] == [Kind.CONFIRMATION]
    print(f"\nconcurrent reschedules, no key: {dict(outcomes)}")
    assert outcomes == {"201": ROUNDS, "409 invalid_transition": 4 * ROUNDS}


def test_concurrent_reschedules_with_one_key_make_one_booking_and_replay_it(api, event_type):
    outcomes: Counter = Counter()
    for round_number in range(ROUNDS):
        day = 2 + round_number
        booking = book(api, event_type, in_days(day))
        body = {"requested_time": iso(in_days(day, hour=17)), "reason": "moved"}
        key = f"move-{round_number}"

        responses = run_together(
            5,
            lambda i, b=booking, body=body, key=key: post_action(
                api.secret, b["id"], "reschedule", body, HTTP_IDEMPOTENCY_KEY=key
            ),
        )

        outcomes.update(outcome(r) for r in responses)
        [created] = [r for r in responses if r.status_code == 201]
        for response in responses:
            if response.status_code == 200:
                assert response.content == created.content[:-1] + b',"idempotent_replay":true}'
                assert response["Idempotent-Replayed"] == "true"
                assert response["Location"] == created["Location"]
            elif response is not created:
                refused(response, "idempotency_request_in_progress")
                assert response["Retry-After"] == "1"
        new_id = created.json()["booking"]["id"]
        assert [b.id for b in Booking.objects.filter(rescheduled_from=booking["id"])] == [new_id]
        assert IdempotencyKey.objects.get(key=key).booking_id == new_id
        assert history_actions(new_id) == ["rescheduled"]
        assert [row.kind for row in email_rows(new_id)] == [Kind.CONFIRMATION]
    print(f"\nconcurrent reschedules, one key: {dict(outcomes)}")
    assert outcomes["201"] == ROUNDS
    assert set(outcomes) <= {"201", "200", "409 idempotency_request_in_progress"}, outcomes


def test_concurrent_reschedules_into_one_slot_never_overlap(api, event_type, hosts):
    """Six bookings, two per host, all moved to one slot at once: three winners (one per
    host), three 409 slot_unavailable whose originals stay as they were."""
    outcomes: Counter = Counter()
    for round_number in range(ROUNDS // 2):
        day = 2 + round_number
        bookings = [book(api, event_type, in_days(day, hour=8 + i)) for i in range(6)]
        body = {"requested_time": iso(in_days(day, hour=18, minute=15))}

        responses = run_together(
            6,
            lambda i, bs=bookings, body=body: post_action(
                api.secret, bs[i]["id"], "reschedule", body
            ),
        )

        outcomes.update(outcome(r) for r in responses)
        assert sorted(outcome(r) for r in responses) == ["201"] * 3 + ["409 slot_unavailable"] * 3
        moved = [r.json()["booking"] for r in responses if r.status_code == 201]
        assert sorted(b["assigned_to_id"] for b in moved) == sorted(h.id for h in hosts)
        for booking, response in zip(bookings, responses, strict=True):
            stored = Booking.objects.get(pk=booking["id"])
            if response.status_code == 409:
                refused(response, "slot_unavailable")
                assert stored.status == Status.SCHEDULED  # untouched
                assert stored.rescheduled_to_id is None
                assert history_actions(booking["id"]) == ["created", "routed"]
                assert [row.kind for row in email_rows(booking["id"])] == [Kind.CONFIRMATION]
            else:
                assert stored.status == Status.CANCELLED
        assert host_overlaps() == []
    print(f"\nconcurrent reschedules into one slot: {dict(outcomes)}")
    assert outcomes == {"201": 3 * (ROUNDS // 2), "409 slot_unavailable": 3 * (ROUNDS // 2)}


def test_reschedule_racing_cancel_leaves_one_story(api, event_type):
    """Rescheduled first: the cancel finds the booking cancelled (200, the reschedule's
    details stay, no notice). Cancelled first: nothing is left to reschedule."""
    orderings: Counter = Counter()
    for round_number in range(ROUNDS):
        day = 2 + round_number
        booking = book(api, event_type, in_days(day))
        move = {"requested_time": iso(in_days(day, hour=17)), "reason": "moved"}
        cancel_body = {"cancelled_by": "attendee", "reason": "ill"}

        reschedule, cancel = run_together(
            2,
            lambda i, b=booking, move=move, c=cancel_body: (
                post_action(api.secret, b["id"], "reschedule", move)
                if i == 0
                else post_action(api.secret, b["id"], "cancel", c)
            ),
        )

        pair = (outcome(reschedule), outcome(cancel))
        orderings[pair] += 1
        stored = Booking.objects.get(pk=booking["id"])
        assert stored.status == Status.CANCELLED
        assert cancel.json()["booking"]["cancellation"]["cancelled_by"] == stored.cancelled_by
        new = list(Booking.objects.filter(rescheduled_from=booking["id"]))
        if pair == ("201", "200"):
            assert (
                [b.id for b in new]
                == [reschedule.json()["booking"]["id"]]
                == [stored.rescheduled_to_id]
            )
            assert (stored.cancelled_by, stored.cancellation_reason) == ("api", "moved")
            assert history_actions(booking["id"]) == ["created", "routed", "rescheduled"]
            assert [row.kind for row in email_rows(booking["id"])] == [Kind.CONFIRMATION]
        else:
            assert pair == ("409 invalid_transition", "200"), pair
            assert new == []
            assert stored.rescheduled_to_id is None
            assert (stored.cancelled_by, stored.cancellation_reason) == ("attendee", "ill")
            assert history_actions(booking["id"]) == ["created", "routed", "cancelled"]
            assert [row.kind for row in email_rows(booking["id"])] == [
                Kind.CONFIRMATION,
                Kind.CANCELLATION,
            ]
    print(f"\nreschedule vs cancel (reschedule, cancel): {dict(orderings)}")
    assert sum(orderings.values()) == ROUNDS


def test_confirm_racing_reschedule_of_a_pending_booking(api, pending):
    """Confirmed first: the new booking is RESCHEDULED. Rescheduled first: the new booking
    still awaits confirmation, and the confirm finds the original cancelled (409)."""
    orderings: Counter = Counter()
    for round_number in range(ROUNDS):
        day = 2 + round_number
        booking = book(api, pending, in_days(day))
        move = {"requested_time": iso(in_days(day, hour=17))}

        confirm, reschedule = run_together(
            2,
            lambda i, b=booking, move=move: (
                post_action(api.secret, b["id"], "confirm")
                if i == 0
                else post_action(api.secret, b["id"], "reschedule", move)
            ),
        )

        pair = (outcome(confirm), outcome(reschedule))
        orderings[pair] += 1
        assert pair[1] == "201", pair
        new = Booking.objects.get(rescheduled_from=booking["id"])
        assert reschedule.json()["booking"]["status"] == new.status
        if pair[0] == "200":
            assert new.status == Status.RESCHEDULED
            assert history_actions(booking["id"]) == [
                "created",
                "routed",
                "confirmed",
                "rescheduled",
            ]
            assert [row.kind for row in email_rows(new.id)] == [Kind.CONFIRMATION]
        else:
            assert pair[0] == "409 invalid_transition", pair
            assert refused(confirm)["status"] == Status.CANCELLED
            assert new.status == Status.PENDING_CONFIRMATION
            assert history_actions(booking["id"]) == ["created", "routed", "rescheduled"]
            assert [row.kind for row in email_rows(new.id)] == [Kind.AWAITING_CONFIRMATION]
    print(f"\nconfirm vs reschedule (confirm, reschedule): {dict(orderings)}")
    assert sum(orderings.values()) == ROUNDS


@pytest.mark.parametrize("moved_by", [15, 120], ids=["into-its-own-slot", "to-a-free-slot"])
def test_a_reschedule_racing_creates_for_its_new_slot(api, team, hosts, moved_by):
    """One host; a reschedule and three creates for one slot: one wins, and a losing
    reschedule leaves its original as it was. A slot overlapping the original's own is not
    free to anyone else until the reschedule commits: there the reschedule always wins."""
    solo = EventTypeFactory(
        team=team, scheduling_type=EventType.SchedulingType.SOLO, hosts=hosts[:1]
    )
    outcomes: Counter = Counter()
    for round_number in range(ROUNDS):
        day = 2 + round_number
        booking = book(api, solo, in_days(day))
        slot = in_days(day) + timedelta(minutes=moved_by)

        responses = run_together(
            4,
            lambda i, b=booking, slot=slot: (
                post_action(api.secret, b["id"], "reschedule", {"requested_time": iso(slot)})
                if i == 0
                else post_booking(client_for(api.secret), create_body(solo, slot))
            ),
        )

        labels = ["reschedule"] + ["create"] * 3
        outcomes.update(f"{label} {outcome(r)}" for label, r in zip(labels, responses, strict=True))
        assert sorted(outcome(r) for r in responses) == ["201"] + ["409 slot_unavailable"] * 3
        stored = Booking.objects.get(pk=booking["id"])
        if responses[0].status_code == 201:
            assert stored.status == Status.CANCELLED
            assert stored.rescheduled_to_id == responses[0].json()["booking"]["id"]
        else:
            assert moved_by == 120
            assert (stored.status, stored.rescheduled_to_id) == (Status.SCHEDULED, None)
            assert history_actions(booking["id"]) == ["created", "routed"]
            assert [row.kind for row in email_rows(booking["id"])] == [Kind.CONFIRMATION]
        assert host_overlaps() == []
    print(f"\nreschedule vs creates, moved by {moved_by} min: {dict(outcomes)}")
