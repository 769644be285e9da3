"""The lifecycle, generated from its table: every action, in every status, started or not.

The expected outcome of each case is computed from ``bookings.transitions.TRANSITIONS``, so a
change to the table changes the tests with it, and an endpoint or service that strays from the
table fails here.
"""

from collections import deque

import pytest
from django.urls import resolve

from bookings.errors import BookingNotStarted, InvalidTransition
from bookings.models import ApiKey, Booking, BookingHistory
from bookings.services import Actor, booking_reschedule, booking_transition
from bookings.transitions import ATTENDEE_EDITABLE, TRANSITIONS, rescheduled_status
from bookings.viewsets import BookingViewSet
from notifications.models import EmailOutbox
from tests.assertions import assert_error, assert_ok
from tests.conftest import make_client

from .create_helpers import in_days, iso
from .transition_helpers import (
    MOVED,
    NOT_STARTED,
    REFUSED,
    UNCHANGED,
    Snapshot,
    assert_moved,
    booking_in,
    email_kind,
    expected_outcome,
    key_id,
    row,
)

pytestmark = pytest.mark.django_db

Status = Booking.Status
STATUSES = list(Status)
MOVES = [name for name in TRANSITIONS if name != "reschedule"]
STAFF = Actor(BookingHistory.ActorType.STAFF, "7")

CASES = [
    pytest.param(name, status, started, id=f"{name}-{status}-{'started' if started else 'ahead'}")
    for name in MOVES
    for status in STATUSES
    for started in (False, True)
]


def _refusal_details(allowed_from, status) -> dict:
    return {"status": status, "allowed_from": sorted(allowed_from)}


# --- The table itself ----------------------------------------------------------------------


def test_the_table_is_the_contracts():
    # API.md, "Lifecycle": the table must say what the contract says, action by action.
    scheduled, rescheduled, pending = (
        Status.SCHEDULED,
        Status.RESCHEDULED,
        Status.PENDING_CONFIRMATION,
    )
    in_play, open_ = {scheduled, rescheduled}, {scheduled, rescheduled, pending}
    expected = {
        "confirm": ({pending}, scheduled, in_play, False, "confirmation", "confirm"),
        "complete": (in_play, Status.COMPLETED, {Status.COMPLETED}, True, None, "complete"),
        "no_show": (in_play, Status.NO_SHOW, {Status.NO_SHOW}, True, None, "no-show"),
        "cancel": (
            {Status.DRAFT} | open_,
            Status.CANCELLED,
            {Status.CANCELLED},
            False,
            "cancellation",
            "cancel",
        ),
        "reschedule": (open_, Status.CANCELLED, set(), False, "confirmation", "reschedule"),
    }
    actual = {
        name: (t.allowed_from, t.to, t.unchanged_on, t.requires_started, t.email, t.path)
        for name, t in TRANSITIONS.items()
    }
    assert actual == expected
    assert {name: t.scope for name, t in TRANSITIONS.items()} == {
        "confirm": "bookings:transition",
        "complete": "bookings:transition",
        "no_show": "bookings:transition",
        "cancel": "bookings:cancel",
        "reschedule": "bookings:reschedule",
    }
    assert open_ == ATTENDEE_EDITABLE


def test_every_status_is_reachable_from_a_new_booking():
    # A booking is born DRAFT and routed to SCHEDULED or PENDING_CONFIRMATION; a reschedule
    # makes a new booking in rescheduled_status(original).
    edges = {Status.DRAFT: {Status.SCHEDULED, Status.PENDING_CONFIRMATION}}
    for transition in TRANSITIONS.values():
        for status in transition.allowed_from:
            edges.setdefault(status, set()).add(transition.to)
    for status in TRANSITIONS["reschedule"].allowed_from:
        edges[status].add(rescheduled_status(status))
    reached, todo = {Status.DRAFT}, deque([Status.DRAFT])
    while todo:
        for status in edges.get(todo.popleft(), ()):
            if status not in reached:
                reached.add(status)
                todo.append(status)
    assert reached == set(STATUSES)


def test_terminal_statuses_have_no_way_out_and_the_others_have_one():
    for transition in TRANSITIONS.values():
        assert not transition.allowed_from & Status.TERMINAL, transition.action
    assert not ATTENDEE_EDITABLE & Status.TERMINAL
    assert set(STATUSES) == Status.ACTIVE | Status.TERMINAL
    for status in Status.ACTIVE:
        assert any(status in t.allowed_from for t in TRANSITIONS.values()), status


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_each_transition_is_consistent(name):
    transition = TRANSITIONS[name]
    assert transition.action == name
    assert transition.allowed_from, name
    assert not transition.allowed_from & transition.unchanged_on
    assert transition.to not in transition.allowed_from
    assert transition.unchanged_on <= set(STATUSES)
    assert transition.history_action in BookingHistory.Action.values
    assert transition.email is None or transition.email in EmailOutbox.Kind.values
    assert transition.scope in ApiKey.Scope.values
    # The endpoint is routed at its path and asks for the table's scope.
    assert BookingViewSet.required_scopes[name] == transition.scope
    assert resolve(f"/v1/bookings/bkg_x/{transition.path}").url_name == (
        f"booking-{transition.path}"
    )
    if name == "reschedule":
        assert transition.unchanged_on == frozenset()  # a repeat is 409, not 200
    else:
        assert transition.to in transition.unchanged_on  # a repeat on the result: 200


def test_paths_and_history_actions_are_distinct():
    transitions = TRANSITIONS.values()
    assert len({t.path for t in transitions}) == len(TRANSITIONS)
    assert len({t.history_action for t in transitions}) == len(TRANSITIONS)


def test_rescheduled_status_keeps_pending_bookings_pending():
    assert {s: rescheduled_status(s) for s in TRANSITIONS["reschedule"].allowed_from} == {
        Status.SCHEDULED: Status.RESCHEDULED,
        Status.RESCHEDULED: Status.RESCHEDULED,
        Status.PENDING_CONFIRMATION: Status.PENDING_CONFIRMATION,
    }


# --- The endpoints -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "status", "started"), CASES)
def test_endpoint_does_what_the_table_says(api, event_type, hosts, name, status, started):
    transition = TRANSITIONS[name]
    booking = booking_in(status, event_type=event_type, host=hosts[0], started=started)
    snapshot = Snapshot(booking)

    response = api.post(f"/v1/bookings/{booking.id}/{transition.path}", format="json")

    outcome = expected_outcome(transition, status, started)
    if outcome == UNCHANGED:
        assert assert_ok(response, "booking")["booking"]["status"] == status
        snapshot.assert_unchanged()
    elif outcome == MOVED:
        data = assert_ok(response, "booking")["booking"]
        assert data["status"] == transition.to
        assert_moved(snapshot, transition, actor=("api_key", key_id(api)))
        assert data == api.get(f"/v1/bookings/{booking.id}").json()["booking"]
    elif outcome == NOT_STARTED:
        error = assert_error(response, 409, "booking_not_started")
        assert error["details"] == {"start_time": iso(booking.start_time)}
        snapshot.assert_unchanged()
    else:
        assert outcome == REFUSED
        error = assert_error(response, 409, "invalid_transition")
        assert error["details"] == _refusal_details(transition.allowed_from, status)
        snapshot.assert_unchanged()


@pytest.mark.parametrize("status", STATUSES)
def test_reschedule_endpoint_follows_the_table(api, event_type, hosts, status):
    transition = TRANSITIONS["reschedule"]
    booking = booking_in(status, event_type=event_type, host=hosts[0])
    snapshot = Snapshot(booking)
    new_start = in_days(3)

    response = api.post(
        f"/v1/bookings/{booking.id}/{transition.path}",
        {"requested_time": iso(new_start)},
        format="json",
    )

    if status not in transition.allowed_from:
        error = assert_error(response, 409, "invalid_transition")
        assert error["details"] == _refusal_details(transition.allowed_from, status)
        snapshot.assert_unchanged()
        return
    new = assert_ok(response, "booking", status=201)["booking"]
    assert new["status"] == rescheduled_status(status)
    assert new["start_time"] == iso(new_start)
    assert new["rescheduled_from_id"] == booking.id
    original = Booking.objects.get(pk=booking.id)
    assert original.status == transition.to
    assert original.rescheduled_to_id == new["id"]
    assert original.cancelled_by == Booking.CancelledBy.API
    (entry,) = snapshot.new_history()
    assert (entry.action, entry.from_status, entry.to_status) == (
        transition.history_action,
        status,
        transition.to,
    )
    assert (entry.actor_type, entry.actor_id) == ("api_key", key_id(api))
    assert Booking.objects.count() == snapshot.bookings + 1
    # The new booking's email, none for the original (its unsent one is dropped).
    assert snapshot.new_outbox() == []
    (email,) = EmailOutbox.objects.filter(booking_id=new["id"])
    assert email.kind == email_kind(transition, new["status"])
    assert (email.to_email, email.event_key) == (
        original.attendee_email,
        f"{new['id']}:rescheduled",
    )
    assert EmailOutbox.objects.get(event_key=f"{booking.id}:seeded").status == "superseded"


@pytest.mark.parametrize("status", STATUSES)
def test_patch_follows_attendee_editable(api, event_type, hosts, status):
    booking = booking_in(status, event_type=event_type, host=hosts[0])
    snapshot = Snapshot(booking)

    response = api.patch(
        f"/v1/bookings/{booking.id}", {"attendee": {"name": "New Name"}}, format="json"
    )

    if status not in ATTENDEE_EDITABLE:
        error = assert_error(response, 409, "invalid_transition")
        assert error["details"] == _refusal_details(ATTENDEE_EDITABLE, status)
        snapshot.assert_unchanged()
        return
    assert assert_ok(response, "booking")["booking"]["attendee"]["name"] == "New Name"
    (entry,) = snapshot.new_history()
    assert (entry.action, entry.from_status, entry.to_status) == (
        "attendee_updated",
        status,
        status,
    )
    assert entry.changes == {"attendee.name": [snapshot.row["attendee_name"], "New Name"]}
    assert row(booking) == {
        **snapshot.row,
        "attendee_name": "New Name",
        "updated_at": entry.at,
    }
    assert snapshot.new_outbox() == []  # a new name is no new address: no email


# --- The service, as the admin calls it ----------------------------------------------------


@pytest.mark.parametrize(("name", "status", "started"), CASES)
def test_service_does_what_the_table_says(event_type, hosts, name, status, started):
    transition = TRANSITIONS[name]
    booking = booking_in(status, event_type=event_type, host=hosts[0], started=started)
    snapshot = Snapshot(booking)
    outcome = expected_outcome(transition, status, started)

    if outcome in (REFUSED, NOT_STARTED):
        error = InvalidTransition if outcome == REFUSED else BookingNotStarted
        with pytest.raises(error) as raised:
            booking_transition(booking=booking, action=name, actor=STAFF)
        if outcome == REFUSED:
            assert raised.value.details == _refusal_details(transition.allowed_from, status)
        snapshot.assert_unchanged()
        return
    result, changed = booking_transition(booking=booking, action=name, actor=STAFF)
    assert changed is (outcome == MOVED)
    assert result.status == (transition.to if changed else status)
    if changed:
        assert_moved(snapshot, transition, actor=("staff", "7"))
    else:
        snapshot.assert_unchanged()


@pytest.mark.parametrize("status", STATUSES)
def test_reschedule_service_follows_the_table(event_type, hosts, status):
    transition = TRANSITIONS["reschedule"]
    booking = booking_in(status, event_type=event_type, host=hosts[0])
    snapshot = Snapshot(booking)

    if status not in transition.allowed_from:
        with pytest.raises(InvalidTransition) as raised:
            booking_reschedule(booking=booking, start_time=in_days(3), actor=STAFF)
        assert raised.value.details == _refusal_details(transition.allowed_from, status)
        snapshot.assert_unchanged()
        return
    new = booking_reschedule(booking=booking, start_time=in_days(3), actor=STAFF)
    assert new.status == rescheduled_status(status)
    assert row(booking)["status"] == transition.to
    entries = BookingHistory.objects.filter(action=transition.history_action)
    assert {(e.booking_id, e.actor_type, e.actor_id) for e in entries} == {
        (booking.id, "staff", "7"),
        (new.id, "staff", "7"),
    }


def test_reschedule_is_not_a_plain_transition(event_type, hosts):
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=hosts[0])
    snapshot = Snapshot(booking)
    with pytest.raises(ValueError, match="booking_reschedule"):
        booking_transition(booking=booking, action="reschedule", actor=STAFF)
    snapshot.assert_unchanged()


# --- Scopes --------------------------------------------------------------------------------


def _allowed_case(name: str):
    """A status the action moves a booking out of, and the request to make."""
    transition = TRANSITIONS[name]
    status = sorted(transition.allowed_from)[0]
    body = {"requested_time": iso(in_days(3))} if name == "reschedule" else {}
    return transition, status, body


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_a_key_without_the_tables_scope_is_403_and_nothing_changes(team, event_type, hosts, name):
    transition, status, body = _allowed_case(name)
    others = [scope for scope in ApiKey.Scope.values if scope != transition.scope]
    client = make_client(team, scopes=others)
    booking = booking_in(status, event_type=event_type, host=hosts[0], started=True)
    snapshot = Snapshot(booking)

    response = client.post(f"/v1/bookings/{booking.id}/{transition.path}", body, format="json")

    assert_error(response, 403, "forbidden")
    snapshot.assert_unchanged()


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_the_tables_scope_alone_is_enough(team, event_type, hosts, name):
    transition, status, body = _allowed_case(name)
    client = make_client(team, scopes=[transition.scope])
    booking = booking_in(status, event_type=event_type, host=hosts[0], started=True)
    snapshot = Snapshot(booking)

    response = client.post(f"/v1/bookings/{booking.id}/{transition.path}", body, format="json")

    assert response.status_code == (201 if name == "reschedule" else 200), response.content
    (entry,) = snapshot.new_history()
    assert entry.action == transition.history_action
    assert (entry.actor_type, entry.actor_id) == ("api_key", key_id(client))
