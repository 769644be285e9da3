"""Two staff saving one booking's attendee from the same page version: one save wins, the
other is refused, never applied over it. And a save racing the API's PATCH.

Threads released together by a barrier, each with its own client and database connection,
committing for real, on PostgreSQL (row locks) and on SQLite (writers serialised). Every
outcome is counted over many rounds.
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from bookings.errors import BookingChanged
from bookings.models import Booking, BookingHistory
from bookings.services import Actor, booking_attendee_update
from tests.bookings.admin_helpers import attendee_post, change_url
from tests.bookings.transition_helpers import Snapshot, booking_in
from tests.concurrency import client_for, run_together

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 15
Status = Booking.Status
REFUSED_TEXT = "Someone changed this booking after you opened it."


def _scheduled(event_type, hosts, round_number: int) -> Booking:
    """A SCHEDULED booking of its own for the round: its own day, the hosts in turn."""
    return booking_in(
        Status.SCHEDULED,
        event_type=event_type,
        host=hosts[round_number % len(hosts)],
        start_time=timezone.now().replace(microsecond=0) + timedelta(days=2 + round_number),
    )


def _save(client: Client, booking: Booking, post: dict) -> int:
    """The save's status: 302 (saved, or refused by the service with a message) or 200 (the
    form again, with its error). What happened is read from the database: a test client's
    rendered contexts and messages are not kept apart between threads."""
    return client.post(change_url(booking), post).status_code


def _staff_entries(booking: Booking) -> list[str]:
    """The new addresses the staff's attendee updates recorded, in order."""
    entries = BookingHistory.objects.filter(
        booking=booking, action="attendee_updated", actor_type="staff"
    ).order_by("id")
    return [entry.changes["attendee.email"][1] for entry in entries]


def _staff_clients(count: int) -> list[Client]:
    clients = []
    for i in range(count):
        user = User.objects.create_superuser(f"staff{i}", password="pw")
        client = Client()
        client.force_login(user)
        clients.append(client)
    return clients


def test_two_saves_from_one_page_version_one_wins_the_other_is_refused(event_type, hosts):
    clients = _staff_clients(2)
    outcomes: Counter = Counter()
    for round_number in range(ROUNDS):
        booking = _scheduled(event_type, hosts, round_number)
        posts = [attendee_post(booking, attendee_email=f"s{i}@example.org") for i in range(2)]

        statuses = run_together(2, lambda i, b=booking, p=posts: _save(clients[i], b, p[i]))

        outcomes[tuple(sorted(statuses))] += 1
        assert set(statuses) <= {200, 302}, statuses
        # One save, the other refused: without the check under the lock both were applied,
        # the second over the first.
        [winner] = _staff_entries(booking)
        booking.refresh_from_db()
        assert booking.attendee_email == winner
        assert BookingHistory.objects.filter(booking=booking).count() == 1
    # (200, 302): the second save read the first's change; (302, 302): both read the page's
    # version, and the service refused the second under the row's lock.
    print("outcomes", dict(outcomes))
    assert sum(outcomes.values()) == ROUNDS


def test_a_save_racing_an_api_patch_never_undoes_it(api, event_type, hosts):
    [client] = _staff_clients(1)
    outcomes: Counter = Counter()
    for round_number in range(ROUNDS):
        booking = _scheduled(event_type, hosts, round_number)
        post = attendee_post(booking, attendee_email="staff@example.org")

        def act(i, b=booking, p=post):
            if i == 0:
                return _save(client, b, p)
            response = client_for(api.secret).patch(
                f"/v1/bookings/{b.pk}", {"attendee": {"email": "api@example.org"}}, format="json"
            )
            return f"api {response.status_code}"

        staff, api_result = run_together(2, act)

        outcomes[(staff, api_result)] += 1
        assert staff in {200, 302}, staff
        assert api_result == "api 200"
        booking.refresh_from_db()
        actors = list(
            BookingHistory.objects.filter(booking=booking, action="attendee_updated")
            .order_by("id")
            .values_list("actor_type", flat=True)
        )
        # The staff's save lands only before the PATCH (the page's version was the latest
        # then); after it, it is refused. Either way the API's address is the last.
        assert actors in (["api_key"], ["staff", "api_key"]), actors
        assert booking.attendee_email == "api@example.org"
    print("outcomes", dict(outcomes))
    assert sum(outcomes.values()) == ROUNDS


def test_the_service_refuses_an_edit_from_an_older_version(event_type, hosts):
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=hosts[0])
    seen = booking.updated_at
    booking_attendee_update(booking=booking, actor=Actor.system(), name="First")
    snapshot = Snapshot(booking)

    with pytest.raises(BookingChanged):
        booking_attendee_update(
            booking=booking, actor=Actor.system(), seen_updated_at=seen, name="Second"
        )

    snapshot.assert_unchanged()


def test_a_post_without_the_version_seen_changes_nothing(event_type, hosts):
    [client] = _staff_clients(1)
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=hosts[0])
    post = attendee_post(booking, attendee_name="Mallory")
    del post["seen_version"]
    snapshot = Snapshot(booking)

    response = client.post(change_url(booking), post)

    assert response.status_code == 200  # the form again, with its error
    assert "seen_version" in response.context["adminform"].form.errors
    snapshot.assert_unchanged()
