"""PATCH /v1/bookings/{id}: the attendee's details only — partial changes, validation as on
create, the statuses that allow it, history, and the email to a new address after commit."""

from datetime import datetime

import pytest
from django.db import connection
from django.utils import timezone

from bookings.models import ApiKey, Booking, BookingHistory
from notifications.models import EmailOutbox
from tests.assertions import assert_error, assert_ok
from tests.conftest import make_client
from tests.factories import EventTypeFactory

from .booking_state import booking_create_via_api, patch, snapshot
from .create_helpers import in_days

pytestmark = pytest.mark.django_db

ADA = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "+442071838750",
    "timezone": "Europe/London",
}


@pytest.fixture
def booking(api, event_type):
    return booking_create_via_api(api, event_type, in_days(2), attendee=dict(ADA))


def _scheduling(row: dict) -> dict:
    """The booking's columns other than the attendee's and ``updated_at``."""
    return {k: v for k, v in row.items() if not k.startswith(("attendee_", "updated_at"))}


def _updates(booking_id: str) -> list[BookingHistory]:
    return list(BookingHistory.objects.filter(booking_id=booking_id, action="attendee_updated"))


# --- Only the attendee ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        ["requested_time"],
        ["start_time"],
        ["end_time"],
        ["status"],
        ["assigned_to_id"],
        ["event_type_id"],
        ["foo"],
        ["status", "end_time", "foo", "assigned_to_id"],
    ],
)
@pytest.mark.parametrize("with_attendee", [False, True])
def test_any_other_field_is_400_field_not_updatable_and_nothing_changes(
    api, booking, fields, with_attendee
):
    body = dict.fromkeys(fields, "2030-01-01T10:00:00Z")
    if with_attendee:
        body["attendee"] = {"name": "Someone Else", "email": "else@example.com"}
    before = snapshot(booking.id)

    error = assert_error(patch(api, booking.id, body), 400, "field_not_updatable")

    assert error["details"] == {"fields": sorted(fields)}
    assert snapshot(booking.id) == before


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"attendee": {"email": "not-an-email"}}, {"attendee": {"email"}}),
        ({"attendee": {"email": None}}, {"attendee": {"email"}}),
        ({"attendee": {"phone": "555-0123"}}, {"attendee": {"phone"}}),
        ({"attendee": {"phone": "+12345"}}, {"attendee": {"phone"}}),
        ({"attendee": {"timezone": "Mars/Olympus_Mons"}}, {"attendee": {"timezone"}}),
        ({"attendee": {"name": ""}}, {"attendee": {"name"}}),
        ({"attendee": {"name": None}}, {"attendee": {"name"}}),
        ({"attendee": {"name": "x" * 201}}, {"attendee": {"name"}}),
        ({"attendee": {"name": "Ada", "shoe_size": 42}}, {"attendee": {"shoe_size"}}),
        ({"attendee": "Ada"}, {"attendee": {"non_field_errors"}}),
        ({"attendee": None}, {"attendee": None}),
        ([{"attendee": {"name": "Ada"}}], {"non_field_errors": None}),
    ],
)
def test_invalid_body_is_400_validation_error_and_nothing_changes(api, booking, body, details):
    """``details`` names the field, and for the attendee's, the sub-field (else None)."""
    before = snapshot(booking.id)

    error = assert_error(patch(api, booking.id, body), 400, "validation_error")

    named = {
        field: set(messages) if isinstance(messages, dict) else None
        for field, messages in error["details"].items()
    }
    assert named == details
    assert snapshot(booking.id) == before


# --- Partial changes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ({"name": "Ada King"}, {"name": "Ada King"}),
        ({"phone": "+1-555-0123"}, {"phone": "+15550123"}),
        ({"phone": "+44 20 7183 8750 "}, {}),  # normalised, it is the same number: no change
        ({"phone": None}, {"phone": None}),
        ({"phone": ""}, {"phone": None}),
        ({"timezone": None}, {"timezone": None}),
        ({"timezone": "America/New_York"}, {"timezone": "America/New_York"}),
        ({"name": "Ada King", "timezone": None}, {"name": "Ada King", "timezone": None}),
    ],
)
def test_only_the_fields_sent_change(api, booking, sent, shown):
    before = snapshot(booking.id)

    response = patch(api, booking.id, {"attendee": sent})

    attendee = assert_ok(response, "booking")["booking"]["attendee"]
    assert attendee == {**ADA, **shown}
    assert api.get(f"/v1/bookings/{booking.id}").json()["booking"]["attendee"] == attendee
    after = snapshot(booking.id)
    # Nothing else of the booking moves, and the email stays where it was.
    assert _scheduling(after["row"]) == _scheduling(before["row"])
    assert after["emails"] == before["emails"]


def test_phone_is_normalised_as_on_create(api, booking):
    patch(api, booking.id, {"attendee": {"phone": None}})

    response = patch(api, booking.id, {"attendee": {"phone": "+44 20 7183 8750"}})

    assert response.json()["booking"]["attendee"]["phone"] == "+442071838750"
    assert Booking.objects.get(pk=booking.id).attendee_phone == "+442071838750"
    assert _updates(booking.id)[-1].changes == {"attendee.phone": [None, "+442071838750"]}


@pytest.mark.parametrize(
    "attendee",
    [{}, dict(ADA), {"name": "Ada Lovelace"}, {"phone": "+44 (20) 7183-8750"}],
)
def test_a_patch_that_changes_nothing_writes_nothing(api, booking, attendee):
    before = snapshot(booking.id)

    body = assert_ok(patch(api, booking.id, {"attendee": attendee}), "booking")

    assert body["booking"]["attendee"] == ADA
    assert snapshot(booking.id) == before  # updated_at included
    assert body["booking"]["updated_at"] == body["booking"]["created_at"]


def test_an_empty_patch_changes_nothing(api, booking):
    """``{}``: the PATCH body's one field is optional (as the schema says), so nothing to do."""
    before = snapshot(booking.id)

    body = assert_ok(patch(api, booking.id, {}), "booking")

    assert body["booking"]["attendee"] == ADA
    assert snapshot(booking.id) == before


def test_a_change_writes_one_history_entry(api, booking, team):
    response = patch(
        api, booking.id, {"attendee": {"name": "Ada King", "phone": None, "timezone": "UTC"}}
    )

    updated_at = assert_ok(response, "booking")["booking"]["updated_at"]
    [entry] = _updates(booking.id)
    assert (entry.from_status, entry.to_status) == ("SCHEDULED", "SCHEDULED")
    assert (entry.actor_type, entry.actor_id) == ("api_key", team.api_keys.get().id)
    assert entry.changes == {
        "attendee.name": ["Ada Lovelace", "Ada King"],
        "attendee.phone": ["+442071838750", None],
        "attendee.timezone": ["Europe/London", "UTC"],
    }
    created_at = response.json()["booking"]["created_at"]
    assert datetime.fromisoformat(updated_at) > datetime.fromisoformat(created_at)
    history = api.get(f"/v1/bookings/{booking.id}/history").json()["history"]
    assert [e["action"] for e in history] == ["created", "routed", "attendee_updated"]
    assert history[-1]["at"] == updated_at
    # No new address: no email.
    assert EmailOutbox.objects.filter(booking_id=booking.id).count() == 1


# --- Statuses, scope, team ------------------------------------------------------------------


@pytest.mark.parametrize("status", Booking.Status.values)
def test_allowed_only_while_the_booking_is_open(api, booking, status):
    fields = {"status": status}
    if status == "CANCELLED":
        fields.update(cancelled_by="host", cancelled_at=timezone.now())
    Booking.objects.filter(pk=booking.id).update(**fields)
    before = snapshot(booking.id)

    response = patch(api, booking.id, {"attendee": {"name": "Ada King"}})

    if status in {"SCHEDULED", "RESCHEDULED", "PENDING_CONFIRMATION"}:
        assert assert_ok(response, "booking")["booking"]["attendee"]["name"] == "Ada King"
        assert len(_updates(booking.id)) == 1
    else:
        error = assert_error(response, 409, "invalid_transition")
        assert error["details"] == {
            "status": status,
            "allowed_from": ["PENDING_CONFIRMATION", "RESCHEDULED", "SCHEDULED"],
        }
        assert snapshot(booking.id) == before


def test_key_without_update_scope_is_403_and_nothing_changes(team, booking):
    scopes = [scope for scope in ApiKey.Scope.values if scope != "bookings:update"]
    before = snapshot(booking.id)

    response = patch(make_client(team, scopes=scopes), booking.id, {"attendee": {"name": "X"}})

    assert_error(response, 403, "forbidden")
    assert snapshot(booking.id) == before


def test_booking_of_another_team_is_404_and_nothing_changes(other_api, booking):
    before = snapshot(booking.id)
    assert_error(patch(other_api, booking.id, {"attendee": {"name": "X"}}), 404, "not_found")
    assert snapshot(booking.id) == before


# --- A new email address --------------------------------------------------------------------


def _emails(booking_id: str) -> list[tuple]:
    return list(
        EmailOutbox.objects.filter(booking_id=booking_id)
        .order_by("id")
        .values_list("kind", "to_email", "status", "ical_sequence")
    )


def test_a_new_address_gets_one_confirmation(api, booking):
    response = patch(api, booking.id, {"attendee": {"email": "ada@lovelace.example"}})

    assert response.json()["booking"]["attendee"]["email"] == "ada@lovelace.example"
    assert _emails(booking.id) == [
        ("confirmation", "ada@example.com", "superseded", 0),  # the creation's, unsent
        ("confirmation", "ada@lovelace.example", "pending", 1),
    ]
    [entry] = _updates(booking.id)
    assert entry.changes == {"attendee.email": ["ada@example.com", "ada@lovelace.example"]}
    # The same address again changes nothing and sends nothing more.
    before = snapshot(booking.id)
    patch(api, booking.id, {"attendee": {"email": "ada@lovelace.example"}})
    assert snapshot(booking.id) == before


def test_a_pending_booking_gets_the_awaiting_confirmation_notice(api, team, hosts):
    event_type = EventTypeFactory(team=team, hosts=hosts, requires_confirmation=True)
    pending = booking_create_via_api(api, event_type, in_days(2))

    patch(api, pending.id, {"attendee": {"email": "new@example.com"}})

    assert _emails(pending.id)[-1] == ("awaiting_confirmation", "new@example.com", "pending", 1)
    assert len(_emails(pending.id)) == 2


def test_an_address_differing_only_in_case_is_stored_but_sends_nothing(api, booking):
    before = snapshot(booking.id)

    response = patch(api, booking.id, {"attendee": {"email": "Ada@Example.COM"}})

    assert response.json()["booking"]["attendee"]["email"] == "Ada@Example.COM"
    [entry] = _updates(booking.id)
    assert entry.changes == {"attendee.email": ["ada@example.com", "Ada@Example.COM"]}
    after = snapshot(booking.id)
    assert after["emails"] == before["emails"]
    assert after["row"]["ical_sequence"] == before["row"]["ical_sequence"]


def test_two_address_changes_send_two_emails_each_to_its_address(
    api, booking, mailoutbox, django_capture_on_commit_callbacks
):
    # Unsent: the first address's confirmation is dropped by the second change.
    patch(api, booking.id, {"attendee": {"email": "first@example.com"}})
    patch(api, booking.id, {"attendee": {"email": "second@example.com"}})
    assert _emails(booking.id)[1:] == [
        ("confirmation", "first@example.com", "superseded", 1),
        ("confirmation", "second@example.com", "pending", 2),
    ]

    # Sent at once: both go out, each to its own address.
    with django_capture_on_commit_callbacks(execute=True):
        patch(api, booking.id, {"attendee": {"email": "third@example.com"}})
    with django_capture_on_commit_callbacks(execute=True):
        patch(api, booking.id, {"attendee": {"email": "fourth@example.com"}})
    assert _emails(booking.id)[3:] == [
        ("confirmation", "third@example.com", "sent", 3),
        ("confirmation", "fourth@example.com", "sent", 4),
    ]
    assert [message.to for message in mailoutbox] == [
        ["third@example.com"],
        ["fourth@example.com"],
    ]
    assert len(_updates(booking.id)) == 4


@pytest.mark.django_db(transaction=True)
def test_the_email_is_dispatched_once_after_the_change_commits(
    event_type, team, mailoutbox, monkeypatch
):
    from notifications.tasks import send_email_task

    api = make_client(team)
    booking = booking_create_via_api(api, event_type, in_days(2), attendee=dict(ADA))
    mailoutbox.clear()
    dispatched = []
    delay = send_email_task.delay

    def spy(**kwargs):
        # What the task would find: the change is committed and visible to anyone.
        dispatched.append(
            (
                kwargs["outbox_id"],
                connection.in_atomic_block,
                Booking.objects.get(pk=booking.id).attendee_email,
            )
        )
        return delay(**kwargs)

    monkeypatch.setattr(send_email_task, "delay", spy)

    patch(api, booking.id, {"attendee": {"email": "ada@lovelace.example"}})

    row = EmailOutbox.objects.get(booking_id=booking.id, to_email="ada@lovelace.example")
    assert dispatched == [(row.pk, False, "ada@lovelace.example")]
    assert (row.kind, row.status) == ("confirmation", "sent")
    assert [message.to for message in mailoutbox] == [["ada@lovelace.example"]]


# --- A fixed number of queries --------------------------------------------------------------


def test_patch_costs_a_fixed_number_of_queries(api, booking, django_assert_num_queries):
    # The booking (the key is cached); then the transaction (a savepoint pair here, in the test's
    # transaction): the row locked, updated, one history entry.
    for name in ("Ada King", "Ada Byron"):
        with django_assert_num_queries(6):
            assert patch(api, booking.id, {"attendee": {"name": name}}).status_code == 200
    # + the old address's unsent emails superseded, the new email.
    for email in ("a@example.com", "b@example.com"):
        with django_assert_num_queries(8):
            assert patch(api, booking.id, {"attendee": {"email": email}}).status_code == 200
    # Nothing to change: the row is read under its lock, and nothing is written.
    with django_assert_num_queries(4):
        assert patch(api, booking.id, {"attendee": {}}).status_code == 200
