"""Concurrent lifecycle requests on one booking: one winner, a consistent result, never a 5xx.

Threads released together by a barrier, each with its own client and database connection,
committing for real (transaction=True), on PostgreSQL (row locks) and on SQLite (IMMEDIATE
transactions serialise writers). Every outcome is counted, a 5xx included, over many rounds.
Reschedules racing each other and other requests: test_lifecycle_reschedule_concurrency.py.
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.models import Booking
from notifications.models import EmailOutbox
from tests.concurrency import outcome, run_together
from tests.factories import BookingFactory

from .create_helpers import in_days
from .lifecycle_helpers import (
    book,
    email_rows,
    history_actions,
    history_entries,
    patch_attendee,
    pending_event_type,
    post_action,
    refused,
)

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 20
Status = Booking.Status
Kind = EmailOutbox.Kind
SENT_OR_SUPERSEDED = {EmailOutbox.Status.SENT, EmailOutbox.Status.SUPERSEDED}


@pytest.fixture
def pending(team, hosts):
    return pending_event_type(team, hosts)


def test_ten_concurrent_cancels_cancel_once_with_one_requests_details(api, event_type):
    outcomes: Counter = Counter()
    for round_number in range(ROUNDS):
        booking = book(api, event_type, in_days(2 + round_number))
        bodies = [
            {"cancelled_by": ["host", "attendee", "api"][i % 3], "reason": f"reason {i}"}
            for i in range(10)
        ]

        responses = run_together(
            10,
            lambda i, b=booking, bodies=bodies: post_action(
                api.secret, b["id"], "cancel", bodies[i]
            ),
        )

        outcomes.update(outcome(r) for r in responses)
        assert {r.status_code for r in responses} == {200}, [outcome(r) for r in responses]
        stored = Booking.objects.get(pk=booking["id"])
        assert stored.status == Status.CANCELLED
        # Every answer shows the one cancellation that happened: one request's details.
        cancellations = {tuple(r.json()["booking"]["cancellation"].items()) for r in responses}
        assert len(cancellations) == 1, cancellations
        cancellation = dict(cancellations.pop())
        details = {"cancelled_by": cancellation["cancelled_by"], "reason": cancellation["reason"]}
        assert details in bodies
        assert (stored.cancelled_by, stored.cancellation_reason) == tuple(details.values())
        [entry] = history_entries(booking["id"], "cancelled")
        assert entry.changes == {
            "status": [Status.SCHEDULED, Status.CANCELLED],
            "cancellation.cancelled_by": [None, details["cancelled_by"]],
            "cancellation.reason": [None, details["reason"]],
        }
        assert history_actions(booking["id"]) == ["created", "routed", "cancelled"]
        rows = email_rows(booking["id"])
        assert [row.kind for row in rows] == [Kind.CONFIRMATION, Kind.CANCELLATION]
        assert rows[1].event_key == f"{booking['id']}:cancelled"
        assert stored.ical_sequence == rows[1].ical_sequence == 1
    print(f"\nconcurrent cancels: {dict(outcomes)}")
    assert outcomes == {"200": 10 * ROUNDS}


def test_confirm_racing_cancel_ends_cancelled_either_way(api, pending):
    orderings: Counter = Counter()
    for round_number in range(2 * ROUNDS):
        booking = book(api, pending, in_days(2 + round_number))
        assert booking["status"] == Status.PENDING_CONFIRMATION

        confirm, cancel = run_together(
            2,
            lambda i, b=booking: post_action(
                api.secret, b["id"], "confirm" if i == 0 else "cancel"
            ),
        )

        pair = (outcome(confirm), outcome(cancel))
        orderings[pair] += 1
        stored = Booking.objects.get(pk=booking["id"])
        assert stored.status == Status.CANCELLED
        kinds = [row.kind for row in email_rows(booking["id"])]
        rows = {row.kind: row for row in email_rows(booking["id"])}
        if pair == ("200", "200"):  # confirmed, then cancelled
            assert confirm.json()["booking"]["status"] == Status.SCHEDULED
            assert history_actions(booking["id"]) == ["created", "routed", "confirmed", "cancelled"]
            assert kinds == [Kind.AWAITING_CONFIRMATION, Kind.CONFIRMATION, Kind.CANCELLATION]
            # The confirmation went out, or the cancellation caught it unsent and dropped it.
            assert rows[Kind.CONFIRMATION].status in SENT_OR_SUPERSEDED
            assert stored.ical_sequence == 2
        else:  # cancelled first: nothing left to confirm
            assert pair == ("409 invalid_transition", "200"), pair
            assert refused(confirm)["status"] == Status.CANCELLED
            assert history_actions(booking["id"]) == ["created", "routed", "cancelled"]
            assert kinds == [Kind.AWAITING_CONFIRMATION, Kind.CANCELLATION]
            assert stored.ical_sequence == 1
        assert cancel.json()["booking"]["status"] == Status.CANCELLED
        assert rows[Kind.CANCELLATION].status == EmailOutbox.Status.SENT
    print(f"\nconfirm vs cancel (confirm, cancel): {dict(orderings)}")
    assert sum(orderings.values()) == 2 * ROUNDS


def test_concurrent_complete_and_no_show_have_one_winner(team, event_type, hosts, api):
    outcomes: Counter = Counter()
    winners: Counter = Counter()
    paths = {Status.COMPLETED: "complete", Status.NO_SHOW: "no-show"}
    for round_number in range(ROUNDS):
        start = timezone.now().replace(microsecond=0) - timedelta(days=round_number + 1)
        booking = BookingFactory(event_type=event_type, assigned_to=hosts[0], start_time=start)
        actions = ["complete" if i % 2 else "no-show" for i in range(10)]

        responses = run_together(
            10, lambda i, b=booking, actions=actions: post_action(api.secret, b.id, actions[i])
        )

        outcomes.update(outcome(r) for r in responses)
        final = Booking.objects.get(pk=booking.id).status
        assert final in paths, final
        winners[final] += 1
        for action, response in zip(actions, responses, strict=True):
            if action == paths[final]:  # the winner, or a repeat of the winning action
                assert response.status_code == 200, response.content
                assert response.json()["booking"]["status"] == final
            else:
                assert refused(response) == {
                    "status": final,
                    "allowed_from": [Status.RESCHEDULED, Status.SCHEDULED],
                }
        assert history_actions(booking.id) == ["completed" if final == "COMPLETED" else "no_show"]
        assert email_rows(booking.id) == []
    print(f"\nconcurrent complete/no-show: {dict(outcomes)}; final: {dict(winners)}")
    assert outcomes == {"200": 5 * ROUNDS, "409 invalid_transition": 5 * ROUNDS}


def test_cancel_racing_an_email_change_loses_no_update(api, event_type):
    orderings: Counter = Counter()
    for round_number in range(ROUNDS):
        booking = book(api, event_type, in_days(2 + round_number))
        old, new = booking["attendee"]["email"], f"new{round_number}@example.com"

        cancel, patch = run_together(
            2,
            lambda i, b=booking, new=new: (
                post_action(api.secret, b["id"], "cancel")
                if i == 0
                else patch_attendee(api.secret, b["id"], {"email": new})
            ),
        )

        pair = (outcome(cancel), outcome(patch))
        orderings[pair] += 1
        stored = Booking.objects.get(pk=booking["id"])
        assert stored.status == Status.CANCELLED
        rows = email_rows(booking["id"])
        if pair == ("200", "200"):  # the change committed first; the notice went to the new one
            assert stored.attendee_email == new
            assert history_actions(booking["id"]) == [
                "created",
                "routed",
                "attendee_updated",
                "cancelled",
            ]
            [entry] = history_entries(booking["id"], "attendee_updated")
            assert entry.changes == {"attendee.email": [old, new]}
            assert [(row.kind, row.to_email) for row in rows] == [
                (Kind.CONFIRMATION, old),
                (Kind.CONFIRMATION, new),
                (Kind.CANCELLATION, new),
            ]
            assert rows[1].event_key == f"{booking['id']}:attendee_updated:{entry.pk}"
        else:  # cancelled first: a cancelled booking's attendee cannot be changed
            assert pair == ("200", "409 invalid_transition"), pair
            assert stored.attendee_email == old
            assert history_actions(booking["id"]) == ["created", "routed", "cancelled"]
            assert [(row.kind, row.to_email) for row in rows] == [
                (Kind.CONFIRMATION, old),
                (Kind.CANCELLATION, old),
            ]
    print(f"\ncancel vs email change (cancel, patch): {dict(orderings)}")
    assert sum(orderings.values()) == ROUNDS


def test_concurrent_attendee_changes_lose_no_update(api, event_type):
    """A name change and three email changes (two to the same address) at once: each change
    that found something to change wrote one entry, and its email, in a chain."""
    outcomes: Counter = Counter()
    for round_number in range(ROUNDS):
        booking = book(api, event_type, in_days(2 + round_number))
        changes = [
            {"name": "Grace Hopper"},
            {"email": "a@example.com"},
            {"email": "b@example.com"},
            {"email": "a@example.com"},
        ]

        responses = run_together(
            4, lambda i, b=booking, c=changes: patch_attendee(api.secret, b["id"], c[i])
        )

        outcomes.update(outcome(r) for r in responses)
        assert {r.status_code for r in responses} == {200}, [outcome(r) for r in responses]
        stored = Booking.objects.get(pk=booking["id"])
        assert stored.attendee_name == "Grace Hopper"  # not lost to a concurrent email change
        entries = history_entries(booking["id"], "attendee_updated")
        names = [e.changes["attendee.name"] for e in entries if "attendee.name" in e.changes]
        assert names == [[booking["attendee"]["name"], "Grace Hopper"]]
        emails = [e for e in entries if "attendee.email" in e.changes]
        chain = [booking["attendee"]["email"]]
        for entry in emails:  # each entry starts where the previous one ended, and changes it
            assert set(entry.changes) == {"attendee.email"}, entry.changes
            old, new = entry.changes["attendee.email"]
            assert old == chain[-1] != new
            chain.append(new)
        assert stored.attendee_email == chain[-1]
        assert len(entries) == 1 + len(emails)
        assert 2 <= len(emails) <= 3
        rows = email_rows(booking["id"])[1:]  # after the creation's confirmation
        assert [(row.event_key, row.to_email) for row in rows] == [
            (f"{booking['id']}:attendee_updated:{entry.pk}", entry.changes["attendee.email"][1])
            for entry in emails
        ]
        outcomes[f"email changes: {len(emails)}"] += 1
    print(f"\nconcurrent attendee changes: {dict(outcomes)}")
