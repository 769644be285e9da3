"""Bulk moves on the booking list: each booking on its own, one summary of done and refused."""

from datetime import timedelta

import pytest

from bookings.admin import booking_actions
from bookings.models import Booking, BookingHistory
from notifications.models import EmailOutbox
from tests.bookings.admin_helpers import CHANGELIST, messages_of, staff_client
from tests.bookings.transition_helpers import Snapshot, booking_in
from tests.factories import TeamMemberFactory

pytestmark = pytest.mark.django_db
Status = Booking.Status


@pytest.fixture
def support(db):
    return staff_client(username="sam", group="Support")


def _in(status, event_type, **kwargs):
    # A host of its own: bookings made by booking_in start at the same time.
    return booking_in(
        status, event_type=event_type, host=TeamMemberFactory(team=event_type.team), **kwargs
    )


def _post(client, action, bookings, **data):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [b.pk for b in bookings], **data}
        | ({} if "apply" in data else {"index": "0"}),
        follow=True,
    )


def test_confirm_handles_each_booking_and_sums_up(support, event_type):
    client, user = support
    pending = [_in(Status.PENDING_CONFIRMATION, event_type) for _ in range(2)]
    scheduled = _in(Status.SCHEDULED, event_type)
    cancelled = _in(Status.CANCELLED, event_type)
    untouched = [Snapshot(scheduled), Snapshot(cancelled)]

    response = _post(client, "confirm_selected", [*pending, scheduled, cancelled])

    assert response.status_code == 200
    assert messages_of(response) == [
        "Confirmed 2 bookings. 1 already had that status (unchanged). "
        f"Refused 1: Cannot confirm a booking that is CANCELLED. ({cancelled.pk})"
    ]
    for booking in pending:
        assert Booking.objects.get(pk=booking.pk).status == Status.SCHEDULED
        entry = BookingHistory.objects.filter(booking=booking, action="confirmed").get()
        assert (entry.actor_type, entry.actor_id) == ("staff", str(user.pk))
        assert (
            EmailOutbox.objects.filter(booking=booking, event_key__endswith=":confirmed").count()
            == 1
        )
    for snapshot in untouched:
        snapshot.assert_untouched()


def test_complete_and_no_show_refuse_bookings_not_started(support, event_type):
    client, _ = support
    started = _in(Status.SCHEDULED, event_type, started=True)
    future = _in(Status.SCHEDULED, event_type)
    no_show = _in(Status.RESCHEDULED, event_type, started=True)
    future_snapshot = Snapshot(future)

    completed = _post(client, "complete_selected", [started, future])
    marked = _post(client, "no_show_selected", [no_show])

    assert Booking.objects.get(pk=started.pk).status == Status.COMPLETED
    future_snapshot.assert_untouched()
    [text] = messages_of(completed)
    assert text == f"Completed 1 booking. Refused 1: {booking_actions.NOT_STARTED} ({future.pk})"
    assert Booking.objects.get(pk=no_show.pk).status == Status.NO_SHOW
    assert messages_of(marked) == ["Marked no-show 1 booking."]


def test_cancel_asks_who_and_why_first_then_cancels_each(support, event_type):
    client, user = support
    bookings = [_in(Status.SCHEDULED, event_type) for _ in range(2)]
    done = _in(Status.COMPLETED, event_type, started=True)
    snapshots = [Snapshot(b) for b in [*bookings, done]]

    asked = _post(client, "cancel_selected", [*bookings, done])

    assert asked.status_code == 200
    assert asked.templates[0].name == "admin/bookings/booking/cancel_selected.html"
    html = asked.content.decode()
    assert all(b.pk in html for b in [*bookings, done])
    for snapshot in snapshots:
        snapshot.assert_untouched()

    response = _post(
        client,
        "cancel_selected",
        [*bookings, done],
        apply="yes",
        cancelled_by="attendee",
        reason="Event called off",
    )

    assert messages_of(response) == [
        f"Cancelled 2 bookings. Refused 1: Cannot cancel a booking that is COMPLETED. ({done.pk})"
    ]
    for booking in bookings:
        row = Booking.objects.get(pk=booking.pk)
        assert (row.status, row.cancelled_by, row.cancellation_reason) == (
            Status.CANCELLED,
            "attendee",
            "Event called off",
        )
        entry = BookingHistory.objects.get(booking=booking, action="cancelled")
        assert entry.actor_id == str(user.pk)
        assert EmailOutbox.objects.filter(booking=booking, kind="cancellation").count() == 1
    snapshots[-1].assert_untouched()


def test_a_bad_cancel_answer_shows_the_page_again_and_changes_nothing(support, event_type):
    client, _ = support
    booking = _in(Status.SCHEDULED, event_type)
    snapshot = Snapshot(booking)

    response = _post(client, "cancel_selected", [booking], apply="yes", cancelled_by="api")

    assert response.status_code == 200
    assert response.templates[0].name == "admin/bookings/booking/cancel_selected.html"
    assert "cancelled_by" in response.context["form"].errors
    snapshot.assert_untouched()


def test_select_across_acts_on_the_filtered_list_only(support, event_type, other_team):
    client, _ = support
    ours = [_in(Status.PENDING_CONFIRMATION, event_type) for _ in range(3)]
    from tests.factories import EventTypeFactory

    theirs_type = EventTypeFactory(team=other_team, hosts=[TeamMemberFactory(team=other_team)])
    theirs = _in(Status.PENDING_CONFIRMATION, theirs_type)
    snapshot = Snapshot(theirs)

    response = client.post(
        f"{CHANGELIST}?team={event_type.team_id}",
        {"action": "confirm_selected", "select_across": "1", "_selected_action": [ours[0].pk]},
        follow=True,
    )

    assert messages_of(response) == ["Confirmed 3 bookings."]
    assert {Booking.objects.get(pk=b.pk).status for b in ours} == {Status.SCHEDULED}
    snapshot.assert_untouched()


def test_more_than_the_limit_is_refused_whole(support, event_type, monkeypatch):
    monkeypatch.setattr(booking_actions, "BULK_LIMIT", 2)
    client, _ = support
    bookings = [_in(Status.PENDING_CONFIRMATION, event_type) for _ in range(3)]
    snapshots = [Snapshot(b) for b in bookings]

    response = _post(client, "confirm_selected", bookings)

    assert messages_of(response) == ["Select at most 2 bookings at a time; nothing was changed."]
    for snapshot in snapshots:
        snapshot.assert_untouched()


def test_each_booking_is_its_own_transaction(support, event_type, monkeypatch):
    """A booking that fails half-way leaves the ones before it done and the next ones tried."""
    client, _ = support
    bookings = sorted(
        (_in(Status.PENDING_CONFIRMATION, event_type) for _ in range(3)), key=lambda b: b.pk
    )
    later = bookings[1]
    Booking.objects.filter(pk=later.pk).update(start_time=later.start_time + timedelta(0))
    original = booking_actions.booking_transition

    def flaky(*, booking, **kwargs):
        if booking.pk == later.pk:
            from bookings.errors import SlotUnavailable

            raise SlotUnavailable()
        return original(booking=booking, **kwargs)

    monkeypatch.setattr(booking_actions, "booking_transition", flaky)
    response = _post(client, "confirm_selected", bookings)

    statuses = [Booking.objects.get(pk=b.pk).status for b in bookings]
    assert statuses == [Status.SCHEDULED, Status.PENDING_CONFIRMATION, Status.SCHEDULED]
    [text] = messages_of(response)
    assert text == (
        f"Confirmed 2 bookings. Refused 1: No eligible host is free at that time. ({later.pk})"
    )
