"""Who may do what in the booking admin: each move is a permission of its own, checked on the
server; the Support group holds them; a view-only user sees no button and is refused a post."""

import pytest
from django.contrib.auth.models import Group

from bookings.models import Booking
from bookings.transitions import TRANSITIONS
from tests.bookings.admin_helpers import (
    CHANGELIST,
    act_url,
    attendee_post,
    change_url,
    messages_of,
    staff_client,
)
from tests.bookings.transition_helpers import Snapshot, booking_in
from tests.factories import TeamMemberFactory

pytestmark = pytest.mark.django_db
Status = Booking.Status

SUPPORT_PERMISSIONS = {
    "bookings.view_booking",
    "bookings.change_booking",
    "bookings.confirm_booking",
    "bookings.cancel_booking",
    "bookings.reschedule_booking",
    "bookings.complete_booking",
    "bookings.view_bookinghistory",
    "bookings.view_team",
    "bookings.view_teammember",
    "bookings.view_eventtype",
    "notifications.view_emailoutbox",
}
ACTION_DATA = {
    "confirm": {},
    "complete": {},
    "no_show": {},
    "cancel": {"cancelled_by": "host", "reason": "r"},
    "reschedule": {"start_time": "2030-01-07 10:00"},
}


@pytest.fixture
def host(hosts):
    return hosts[0]


def test_every_transition_names_a_permission_of_the_booking_model():
    codenames = {codename for codename, _ in Booking._meta.permissions}

    assert {t.permission for t in TRANSITIONS.values()} == codenames
    assert TRANSITIONS["no_show"].permission == TRANSITIONS["complete"].permission


def test_the_support_group_holds_view_change_and_the_moves():
    group = Group.objects.get(name="Support")

    held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}

    assert held == SUPPORT_PERMISSIONS
    assert not any(p.startswith(("bookings.delete_", "bookings.add_booking")) for p in held)


def test_support_sees_every_allowed_button_and_can_use_them(event_type, host):
    client, _ = staff_client(username="sam", group="Support")
    booking = booking_in(Status.PENDING_CONFIRMATION, event_type=event_type, host=host)

    html = client.get(change_url(booking)).content.decode()
    response = client.post(act_url(booking, "confirm"))

    assert 'id="booking-actions"' in html
    assert 'id="booking-action-confirm"' in html
    assert response.status_code == 302
    assert Booking.objects.get(pk=booking.pk).status == Status.SCHEDULED


@pytest.mark.parametrize("action", list(TRANSITIONS))
def test_a_view_only_user_sees_no_button_and_is_refused_a_forged_post(event_type, host, action):
    client, _ = staff_client(username="viewer", perms=("bookings.view_booking",))
    status = sorted(TRANSITIONS[action].allowed_from)[-1]
    booking = booking_in(status, event_type=event_type, host=host, started=True)
    snapshot = Snapshot(booking)

    page = client.get(change_url(booking))
    forged = client.post(act_url(booking, action), ACTION_DATA[action])

    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="booking-actions"' not in html
    assert "booking-action-" not in html
    assert 'name="attendee_email"' not in html
    assert forged.status_code == 403
    snapshot.assert_unchanged()


def test_a_view_only_user_cannot_save_the_attendee(event_type, host):
    client, _ = staff_client(username="viewer", perms=("bookings.view_booking",))
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    snapshot = Snapshot(booking)

    response = client.post(change_url(booking), attendee_post(booking, attendee_name="Mallory"))

    assert response.status_code == 403
    snapshot.assert_unchanged()


@pytest.mark.parametrize("granted", sorted({t.permission for t in TRANSITIONS.values()}))
def test_each_permission_opens_its_own_moves_only(event_type, host, granted):
    client, _ = staff_client(username="one", perms=("bookings.view_booking", f"bookings.{granted}"))
    for action, transition in TRANSITIONS.items():
        status = sorted(transition.allowed_from)[-1]
        # A host of its own each time: the bookings all start an hour ago.
        own_host = TeamMemberFactory(team=event_type.team)
        booking = booking_in(status, event_type=event_type, host=own_host, started=True)
        snapshot = Snapshot(booking)

        html = client.get(change_url(booking)).content.decode()
        response = client.post(act_url(booking, action), ACTION_DATA[action])

        permitted = transition.permission == granted
        assert (f'id="booking-action-{action}"' in html) == permitted, action
        if permitted:
            assert response.status_code == 302, action
            assert snapshot.new_history(), action
        else:
            assert response.status_code == 403, action
            snapshot.assert_unchanged()


def test_a_view_only_user_gets_no_bulk_action_and_a_forged_one_does_nothing(event_type, host):
    client, _ = staff_client(username="viewer", perms=("bookings.view_booking",))
    booking = booking_in(Status.PENDING_CONFIRMATION, event_type=event_type, host=host)
    snapshot = Snapshot(booking)

    page = client.get(CHANGELIST)
    forged = client.post(
        CHANGELIST,
        {"action": "confirm_selected", "index": "0", "_selected_action": [booking.pk]},
        follow=True,
    )

    assert page.status_code == 200
    assert "confirm_selected" not in page.content.decode()
    assert forged.status_code == 200
    assert "Confirmed" not in " ".join(messages_of(forged))
    snapshot.assert_unchanged()


def test_non_staff_and_anonymous_users_reach_no_action(client, event_type, host):
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    snapshot = Snapshot(booking)

    anonymous = client.post(act_url(booking, "cancel"), ACTION_DATA["cancel"])

    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]
    snapshot.assert_unchanged()
