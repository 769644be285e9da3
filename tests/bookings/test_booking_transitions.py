"""The transition endpoints as a client meets them: bodies, errors, the clock, query counts.

Which status may go where is tested from the table in test_lifecycle_table.py; here, what
each request may carry and what a bad one leaves behind (nothing).
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from bookings.models import Booking
from bookings.transitions import TRANSITIONS
from notifications.models import EmailOutbox
from tests.assertions import assert_error, assert_ok
from tests.factories import EventTypeFactory, TeamMemberFactory

from .create_helpers import create_body, in_days, iso, post_booking
from .transition_helpers import Snapshot, assert_moved, booking_in, key_id, row

pytestmark = pytest.mark.django_db

Status = Booking.Status
MOVES = [name for name in TRANSITIONS if name != "reschedule"]
STARTED_ONLY = [name for name, t in TRANSITIONS.items() if t.requires_started]


def _path(booking_id: str, name: str) -> str:
    return f"/v1/bookings/{booking_id}/{TRANSITIONS[name].path}"


def _allowed(name: str, event_type, host) -> Booking:
    """A booking the action may move: in the first status it is allowed from, started."""
    status = sorted(TRANSITIONS[name].allowed_from - {Status.DRAFT})[0]
    return booking_in(status, event_type=event_type, host=host, started=True)


def _valid_body(name: str) -> dict:
    return {"requested_time": iso(in_days(3))} if name == "reschedule" else {}


@pytest.fixture
def scheduled(event_type, hosts):
    return booking_in(Status.SCHEDULED, event_type=event_type, host=hosts[0])


def _cancel(api, booking, body=None):
    return api.post(_path(booking.id, "cancel"), body, format="json")


# --- The cancel body -------------------------------------------------------------------------


def test_cancel_without_a_body_is_cancelled_by_the_api_with_no_reason(api, scheduled):
    snapshot = Snapshot(scheduled)

    response = _cancel(api, scheduled)

    cancellation = assert_ok(response, "booking")["booking"]["cancellation"]
    entry = assert_moved(snapshot, TRANSITIONS["cancel"], actor=("api_key", key_id(api)))
    assert cancellation == {"cancelled_by": "api", "reason": None, "cancelled_at": iso(entry.at)}


@pytest.mark.parametrize("cancelled_by", ["host", "attendee", "api"])
def test_cancelled_by_and_reason_are_recorded(api, scheduled, cancelled_by):
    snapshot = Snapshot(scheduled)

    response = _cancel(api, scheduled, {"cancelled_by": cancelled_by, "reason": "Ill"})

    cancellation = assert_ok(response, "booking")["booking"]["cancellation"]
    assert (cancellation["cancelled_by"], cancellation["reason"]) == (cancelled_by, "Ill")
    assert_moved(
        snapshot,
        TRANSITIONS["cancel"],
        actor=("api_key", key_id(api)),
        cancelled_by=cancelled_by,
        reason="Ill",
    )


@pytest.mark.parametrize("reason", [None, "", "x" * 10_000, "Zoë 🌧"])
def test_a_reason_of_up_to_10000_characters_or_null_is_kept_as_sent(api, scheduled, reason):
    snapshot = Snapshot(scheduled)

    response = _cancel(api, scheduled, {"reason": reason})

    assert assert_ok(response, "booking")["booking"]["cancellation"]["reason"] == reason
    assert_moved(snapshot, TRANSITIONS["cancel"], actor=("api_key", key_id(api)), reason=reason)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cancelled_by": "system"}, "cancelled_by"),
        ({"cancelled_by": "API"}, "cancelled_by"),
        ({"cancelled_by": ""}, "cancelled_by"),
        ({"cancelled_by": None}, "cancelled_by"),
        ({"cancelled_by": 1}, "cancelled_by"),
        ({"reason": "x" * 10_001}, "reason"),
        ({"reason": True}, "reason"),
        ({"reason": {"text": "Ill"}}, "reason"),
        ({"reason": ["Ill"]}, "reason"),
        ({"reason": "Ill", "notify": False}, "notify"),
        ({"status": "CANCELLED"}, "status"),
    ],
)
def test_a_bad_cancel_body_is_400_naming_the_field_and_nothing_changes(api, scheduled, body, field):
    snapshot = Snapshot(scheduled)

    response = _cancel(api, scheduled, body)

    error = assert_error(response, 400, "validation_error", details={field})
    assert error["details"][field]
    snapshot.assert_unchanged()


def test_a_repeated_cancel_keeps_the_first_cancellations_details(api, scheduled):
    first = _cancel(api, scheduled, {"cancelled_by": "host", "reason": "First"})
    cancellation = assert_ok(first, "booking")["booking"]["cancellation"]
    snapshot = Snapshot(scheduled)

    repeat = _cancel(api, scheduled, {"cancelled_by": "attendee", "reason": "Second"})

    assert assert_ok(repeat, "booking")["booking"] == first.json()["booking"]
    assert cancellation["cancelled_by"] == "host"
    snapshot.assert_unchanged()
    assert EmailOutbox.objects.filter(booking=scheduled, kind="cancellation").count() == 1


@pytest.mark.parametrize("routed", [False, True], ids=["unassigned", "assigned"])
def test_a_draft_is_cancelled_with_its_notice_whether_or_not_it_has_a_host(
    api, event_type, hosts, mailoutbox, django_capture_on_commit_callbacks, routed
):
    # An unassigned DRAFT used to fail the database's "a host unless DRAFT" check: a 500.
    draft = booking_in(Status.DRAFT, event_type=event_type, host=hosts[0])
    if routed:
        Booking.objects.filter(pk=draft.pk).update(assigned_to=hosts[1])
    snapshot = Snapshot(draft)

    with django_capture_on_commit_callbacks(execute=True):
        response = _cancel(api, draft)

    data = assert_ok(response, "booking")["booking"]
    assert data["status"] == "CANCELLED"
    assert data["assigned_to_id"] == (hosts[1].id if routed else None)
    assert_moved(
        snapshot, TRANSITIONS["cancel"], actor=("api_key", key_id(api)), email_status="sent"
    )
    (message,) = mailoutbox
    assert message.to == [draft.attendee_email]
    assert "METHOD:CANCEL" in next(a for a in message.attachments if a[0] == "invite.ics")[1]


# --- Bodies of the other actions -------------------------------------------------------------


@pytest.mark.parametrize("name", MOVES)
def test_an_unknown_body_field_is_400_and_nothing_changes(api, event_type, hosts, name):
    booking = _allowed(name, event_type, hosts[0])
    snapshot = Snapshot(booking)

    response = api.post(_path(booking.id, name), {"note": "x"}, format="json")

    error = assert_error(response, 400, "validation_error", details={"note"})
    assert error["details"]["note"] == ["Unknown field."]
    snapshot.assert_unchanged()


@pytest.mark.parametrize("name", MOVES)
@pytest.mark.parametrize("body", [b"[]", b'"cancel"', b"42", b"null", b"true", b'{"a":'])
def test_a_body_that_is_not_an_object_is_400_and_nothing_changes(
    api, event_type, hosts, name, body
):
    booking = _allowed(name, event_type, hosts[0])
    snapshot = Snapshot(booking)

    response = api.post(_path(booking.id, name), body, content_type="application/json")

    assert_error(response, 400, "validation_error")
    snapshot.assert_unchanged()


@pytest.mark.parametrize("name", MOVES)
@pytest.mark.parametrize("body", [b"", b"{}", b" { } "], ids=["empty", "object", "spaced"])
def test_an_empty_body_or_an_empty_object_is_accepted(api, event_type, hosts, name, body):
    booking = _allowed(name, event_type, hosts[0])
    snapshot = Snapshot(booking)

    response = api.post(_path(booking.id, name), body, content_type="application/json")

    assert assert_ok(response, "booking")["booking"]["status"] == TRANSITIONS[name].to
    assert_moved(snapshot, TRANSITIONS[name], actor=("api_key", key_id(api)))


# --- Requests the endpoints refuse, whatever the action ---------------------------------------


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_an_unknown_booking_is_404(api, scheduled, name):
    snapshot = Snapshot(scheduled)
    for booking_id in ["bkg_01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope", scheduled.id.lower()]:
        response = api.post(_path(booking_id, name), _valid_body(name), format="json")
        assert_error(response, 404, "not_found")
    snapshot.assert_unchanged()


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_another_teams_booking_is_404_and_untouched(api, other_team, name):
    host = TeamMemberFactory(team=other_team)
    theirs = _allowed(name, EventTypeFactory(team=other_team, hosts=[host]), host)
    snapshot = Snapshot(theirs)

    response = api.post(_path(theirs.id, name), _valid_body(name), format="json")

    error = assert_error(response, 404, "not_found")
    assert error["message"] == "Booking not found."
    snapshot.assert_unchanged()


@pytest.mark.parametrize("name", list(TRANSITIONS))
@pytest.mark.parametrize("query", ["reason=x", "format=json", "cancelled_by=host"])
def test_a_query_string_is_400_and_nothing_changes(api, event_type, hosts, name, query):
    booking = _allowed(name, event_type, hosts[0])
    snapshot = Snapshot(booking)

    response = api.post(f"{_path(booking.id, name)}?{query}", _valid_body(name), format="json")

    assert_error(response, 400, "validation_error", details={query.split("=")[0]})
    snapshot.assert_unchanged()


@pytest.mark.parametrize("name", list(TRANSITIONS))
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_another_content_type_is_415_and_nothing_changes(
    api, event_type, hosts, name, content_type
):
    booking = _allowed(name, event_type, hosts[0])
    snapshot = Snapshot(booking)

    response = api.post(_path(booking.id, name), b"{}", content_type=content_type)

    assert_error(response, 415, "unsupported_media_type")
    snapshot.assert_unchanged()


@pytest.mark.parametrize("name", list(TRANSITIONS))
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_on_an_action_are_405_in_the_envelope(api, event_type, hosts, name, method):
    booking = _allowed(name, event_type, hosts[0])
    snapshot = Snapshot(booking)

    response = getattr(api, method)(_path(booking.id, name))

    assert_error(response, 405, "method_not_allowed", details=set())
    assert response["Allow"] == "POST"
    snapshot.assert_unchanged()


# --- The clock -----------------------------------------------------------------------------

START = datetime(2030, 3, 4, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", STARTED_ONLY)
@pytest.mark.parametrize(
    ("offset", "started"),
    [(-timedelta(microseconds=1), False), (timedelta(0), True), (timedelta(microseconds=1), True)],
    ids=["just-before", "exactly-at", "just-after"],
)
def test_a_booking_may_be_closed_from_its_start_time_on(
    api, event_type, hosts, name, offset, started
):
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=hosts[0], start_time=START)
    snapshot = Snapshot(booking)

    with time_machine.travel(START + offset, tick=False):
        response = api.post(_path(booking.id, name), format="json")

    if not started:
        error = assert_error(response, 409, "booking_not_started")
        assert error["details"] == {"start_time": "2030-03-04T10:00:00Z"}
        snapshot.assert_unchanged()
        return
    assert assert_ok(response, "booking")["booking"]["status"] == TRANSITIONS[name].to
    entry = assert_moved(snapshot, TRANSITIONS[name], actor=("api_key", key_id(api)))
    assert entry.at == START + offset


# Written out by hand from the contract, not read from TRANSITIONS: a change to the code's
# table that let either move happen early must fail here too.
@pytest.mark.parametrize(("path", "result"), [("complete", "COMPLETED"), ("no-show", "NO_SHOW")])
def test_complete_and_no_show_wait_for_the_start_as_the_contract_says(
    api, event_type, hosts, path, result
):
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=hosts[0], start_time=START)
    snapshot = Snapshot(booking)

    with time_machine.travel(START - timedelta(minutes=1), tick=False):
        early = api.post(f"/v1/bookings/{booking.id}/{path}", format="json")
    assert_error(early, 409, "booking_not_started")
    snapshot.assert_unchanged()

    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        late = api.post(f"/v1/bookings/{booking.id}/{path}", format="json")
    assert assert_ok(late, "booking")["booking"]["status"] == result


def test_a_booking_made_now_is_completed_once_the_clock_has_moved_past_its_start(api, event_type):
    start = in_days(2)
    made = assert_ok(post_booking(api, create_body(event_type, start)), "booking", 201)
    booking = Booking.objects.get(pk=made["booking"]["id"])
    assert_error(api.post(_path(booking.id, "complete"), format="json"), 409, "booking_not_started")
    snapshot = Snapshot(booking)
    later = start + timedelta(minutes=10)

    with time_machine.travel(later, tick=False):
        response = api.post(_path(booking.id, "complete"), format="json")

    data = assert_ok(response, "booking")["booking"]
    assert (data["status"], data["updated_at"]) == ("COMPLETED", iso(later))
    entry = assert_moved(snapshot, TRANSITIONS["complete"], actor=("api_key", key_id(api)))
    assert entry.at == later
    assert row(booking)["created_at"] < later


# --- A fixed number of queries ------------------------------------------------------------
#
# Each write: auth, the booking look-up, then the transaction (a savepoint pair here, inside
# the test's own transaction) with the row lock; the update, the history insert and, with an
# email, the outbox's supersede update and insert.


def test_confirm_costs_a_fixed_number_of_queries(api, event_type, hosts, django_assert_num_queries):
    for hour in (1, 2):
        booking = booking_in(
            Status.PENDING_CONFIRMATION,
            event_type=event_type,
            host=hosts[0],
            start_time=in_days(2, hour=hour),
        )
        with django_assert_num_queries(8):
            assert api.post(_path(booking.id, "confirm"), format="json").status_code == 200


def test_cancel_and_its_repeat_cost_a_fixed_number_of_queries(
    api, scheduled, django_assert_num_queries
):
    with django_assert_num_queries(8):
        assert _cancel(api, scheduled, {"reason": "Ill"}).status_code == 200
    # A repeat: look-up, savepoint, the lock, release; nothing written.
    with django_assert_num_queries(4):
        assert _cancel(api, scheduled, {"reason": "Ill"}).status_code == 200


def test_a_refused_transition_writes_nothing_in_a_fixed_number_of_queries(
    api, scheduled, django_assert_num_queries
):
    # look-up, savepoint, the lock, then the savepoint rolled back and released.
    with django_assert_num_queries(5):
        response = api.post(_path(scheduled.id, "complete"), format="json")
    assert_error(response, 409, "booking_not_started")


def test_history_costs_two_queries_however_long_it_is(api, event_type, django_assert_num_queries):
    booking = assert_ok(post_booking(api, create_body(event_type, in_days(2))), "booking", 201)
    path = f"/v1/bookings/{booking['booking']['id']}"
    # the booking, its entries.
    with django_assert_num_queries(2):
        assert len(api.get(f"{path}/history").json()["history"]) == 2
    api.post(f"{path}/cancel", format="json")
    with django_assert_num_queries(2):
        assert len(api.get(f"{path}/history").json()["history"]) == 3
