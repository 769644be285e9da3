"""POST /v1/bookings/{id}/reschedule: the new booking, the cancelled original, the host kept or
re-routed, validation as on create, history, emails and scope. Idempotency-Key:
test_booking_reschedule_idempotency.py."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.errors import SlotUnavailable
from bookings.models import (
    ApiKey,
    Booking,
    BookingHistory,
    EventTypeHost,
    IdempotencyKey,
    TeamMember,
)
from bookings.services import Actor, booking_reschedule
from notifications.models import EmailOutbox
from tests.assertions import assert_error, assert_ok
from tests.conftest import make_client
from tests.factories import EventTypeFactory

from .booking_state import (
    actions,
    ada_booking_create,
    booking_create_via_api,
    busy_booking,
    reschedule,
    snapshot,
)
from .create_helpers import in_days, iso

pytestmark = pytest.mark.django_db


@pytest.fixture
def original(api, event_type):
    return ada_booking_create(api, event_type)


def test_reschedule_answers_201_with_the_new_booking(api, original, event_type):
    new_start = in_days(3, hour=14)

    response = reschedule(api, original.id, new_start, reason="Clash with a meeting")

    new = assert_ok(response, "booking", 201)["booking"]
    assert response["Location"] == f"/v1/bookings/{new['id']}"
    assert new["id"] != original.id
    assert new["status"] == "RESCHEDULED"
    assert new["rescheduled_from_id"] == original.id
    assert new["rescheduled_to_id"] is None
    assert new["cancellation"] is None
    assert new["event_type_id"] == event_type.id
    assert new["start_time"] == iso(new_start)
    assert new["end_time"] == iso(new_start + timedelta(minutes=event_type.duration))
    assert new["attendee"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+442071838750",
        "timezone": "Europe/London",
    }
    assert new["custom_fields"] == {"company": "Analytical Engines"}
    assert new["metadata"] == {"source": "test"}
    assert api.get(f"/v1/bookings/{new['id']}").json()["booking"] == new

    old = api.get(f"/v1/bookings/{original.id}").json()["booking"]
    assert old["status"] == "CANCELLED"
    assert old["rescheduled_to_id"] == new["id"]
    assert old["rescheduled_from_id"] is None
    assert old["start_time"] == iso(original.start_time)  # the original keeps its time
    cancellation = old["cancellation"]
    assert cancellation.pop("cancelled_at") == old["updated_at"] == new["created_at"]
    assert cancellation == {"cancelled_by": "api", "reason": "Clash with a meeting"}


def test_without_a_reason_the_cancellation_reason_is_null(api, original):
    new_id = reschedule(api, original.id, in_days(3)).json()["booking"]["id"]

    old = api.get(f"/v1/bookings/{original.id}").json()["booking"]
    assert old["cancellation"]["reason"] is None
    assert old["rescheduled_to_id"] == new_id


def test_a_pending_original_gives_a_pending_booking(api, team, hosts):
    event_type = EventTypeFactory(team=team, hosts=hosts, requires_confirmation=True)
    pending = booking_create_via_api(api, event_type, in_days(2))
    assert pending.status == Booking.Status.PENDING_CONFIRMATION

    new = assert_ok(reschedule(api, pending.id, in_days(3)), "booking", 201)["booking"]

    assert new["status"] == "PENDING_CONFIRMATION"
    assert Booking.objects.get(pk=pending.id).status == Booking.Status.CANCELLED
    email = EmailOutbox.objects.get(booking_id=new["id"])
    assert email.kind == EmailOutbox.Kind.AWAITING_CONFIRMATION


def test_a_rescheduled_booking_can_be_rescheduled_again(api, original):
    first = reschedule(api, original.id, in_days(3)).json()["booking"]
    second = assert_ok(reschedule(api, first["id"], in_days(4)), "booking", 201)["booking"]

    assert second["status"] == "RESCHEDULED"
    assert second["rescheduled_from_id"] == first["id"]
    middle = Booking.objects.get(pk=first["id"])
    assert (middle.status, middle.rescheduled_to_id) == (Booking.Status.CANCELLED, second["id"])
    rows = {b.id: b for b in Booking.objects.all()}
    # One calendar event: the same UID throughout, its SEQUENCE growing at each move.
    assert {b.ical_uid for b in rows.values()} == {original.ical_uid}
    sequences = [rows[i].ical_sequence for i in (original.id, first["id"], second["id"])]
    assert sequences == [0, 1, 2]
    emails = EmailOutbox.objects.filter(kind="confirmation").order_by("id")
    assert [(e.booking_id, e.ical_sequence) for e in emails] == [
        (original.id, 0),
        (first["id"], 1),
        (second["id"], 2),
    ]


# --- The host -------------------------------------------------------------------------------


def test_keeps_the_host_when_free(api, original):
    # Round robin alone would pick another host: the original's was assigned most recently.
    new = reschedule(api, original.id, in_days(3)).json()["booking"]
    assert new["assigned_to_id"] == original.assigned_to_id


@pytest.mark.parametrize("minutes", [10, -10, 25])
def test_keeps_the_host_on_a_move_overlapping_its_own_old_slot(api, original, minutes):
    new_start = original.start_time + timedelta(minutes=minutes)

    new = assert_ok(reschedule(api, original.id, new_start), "booking", 201)["booking"]

    assert new["assigned_to_id"] == original.assigned_to_id
    assert new["start_time"] == iso(new_start)


def test_routed_to_another_host_when_the_host_is_busy(api, original, event_type, hosts):
    new_start = in_days(3)
    busy_booking(event_type, original.assigned_to, new_start)

    new = assert_ok(reschedule(api, original.id, new_start), "booking", 201)["booking"]

    assert new["assigned_to_id"] != original.assigned_to_id
    assert new["assigned_to_id"] in {host.id for host in hosts}
    entry = BookingHistory.objects.get(booking_id=new["id"])
    assert entry.changes["assigned_to_id"] == [None, new["assigned_to_id"]]


@pytest.mark.parametrize("how", ["deactivated", "no longer a host"])
def test_routed_to_another_host_when_the_host_is_no_longer_eligible(
    api, original, event_type, hosts, how
):
    host = original.assigned_to
    if how == "deactivated":
        TeamMember.objects.filter(pk=host.pk).update(is_active=False)
    else:
        EventTypeHost.objects.filter(event_type=event_type, member=host).delete()

    new = assert_ok(reschedule(api, original.id, in_days(3)), "booking", 201)["booking"]

    assert new["assigned_to_id"] in {h.id for h in hosts} - {host.id}


def test_no_free_host_is_409_and_the_original_is_untouched(api, original, event_type, hosts):
    new_start = in_days(3)
    for host in hosts:
        busy_booking(event_type, host, new_start)
    before, bookings = snapshot(original.id), Booking.objects.count()

    assert_error(reschedule(api, original.id, new_start), 409, "slot_unavailable")

    assert snapshot(original.id) == before
    assert Booking.objects.count() == bookings
    assert before["history"][-1]["action"] == "routed"
    assert [e["kind"] for e in before["emails"]] == ["confirmation"]


def test_the_service_alone_leaves_the_original_untouched_on_failure(original, event_type, hosts):
    # As the admin or a command calls it: its own transaction, not only the view's.
    new_start = in_days(3)
    for host in hosts:
        busy_booking(event_type, host, new_start)
    before, bookings = snapshot(original.id), Booking.objects.count()

    with pytest.raises(SlotUnavailable):
        booking_reschedule(booking=original, start_time=new_start, actor=Actor.system())

    assert snapshot(original.id) == before
    assert Booking.objects.count() == bookings


# --- Validation, as on create ---------------------------------------------------------------


def _naive(start):
    return start.replace(tzinfo=None).isoformat()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"requested_time": "too-soon"}, "requested_time"),
        ({"requested_time": "beyond-horizon"}, "requested_time"),
        ({"requested_time": "naive"}, "requested_time"),
        ({"requested_time": "not a time"}, "requested_time"),
        ({"reason": "no time given"}, "requested_time"),
        ({"requested_time": "ok", "foo": 1}, "foo"),
        ({"requested_time": "ok", "assigned_to_id": "mem_x"}, "assigned_to_id"),
        ({"requested_time": "ok", "reason": "x" * 10_001}, "reason"),
    ],
)
def test_invalid_request_is_400_and_the_original_is_untouched(api, team, hosts, body, field):
    event_type = EventTypeFactory(team=team, hosts=hosts, minimum_booking_notice=120)
    booking = booking_create_via_api(api, event_type, in_days(2))
    times = {
        "too-soon": iso(timezone.now() + timedelta(minutes=60)),
        "beyond-horizon": iso(timezone.now() + timedelta(days=6 * 366)),
        "naive": _naive(in_days(3)),
        "ok": iso(in_days(3)),
    }
    if body.get("requested_time") in times:
        body = {**body, "requested_time": times[body["requested_time"]]}
    before = snapshot(booking.id)

    error = assert_error(reschedule(api, booking.id, **body), 400, "validation_error")

    assert set(error["details"]) == {field}
    assert snapshot(booking.id) == before
    assert Booking.objects.count() == 1


def test_body_that_is_not_an_object_is_400(api, original):
    before = snapshot(original.id)
    response = api.post(f"/v1/bookings/{original.id}/reschedule", [1, 2], format="json")
    assert_error(response, 400, "validation_error")
    assert snapshot(original.id) == before


def test_inactive_event_type_is_400_and_the_original_is_untouched(api, original, event_type):
    event_type.is_active = False
    event_type.save()
    before = snapshot(original.id)

    error = assert_error(reschedule(api, original.id, in_days(3)), 400, "validation_error")

    assert set(error["details"]) == {"event_type_id"}
    assert snapshot(original.id) == before
    assert Booking.objects.count() == 1


@pytest.mark.parametrize("status", ["DRAFT", "COMPLETED", "NO_SHOW", "CANCELLED"])
def test_reschedule_from_a_closed_status_is_409(api, original, status):
    fields = {"status": status}
    if status == "CANCELLED":
        fields.update(cancelled_by="host", cancelled_at=timezone.now())
    Booking.objects.filter(pk=original.id).update(**fields)
    before = snapshot(original.id)

    error = assert_error(reschedule(api, original.id, in_days(3)), 409, "invalid_transition")

    assert error["details"] == {
        "status": status,
        "allowed_from": ["PENDING_CONFIRMATION", "RESCHEDULED", "SCHEDULED"],
    }
    assert snapshot(original.id) == before
    assert Booking.objects.count() == 1


def test_a_second_reschedule_of_the_original_is_409(api, original):
    new_id = reschedule(api, original.id, in_days(3)).json()["booking"]["id"]
    before = snapshot(original.id)

    error = assert_error(reschedule(api, original.id, in_days(4)), 409, "invalid_transition")

    assert error["details"]["status"] == "CANCELLED"
    assert snapshot(original.id) == before
    assert Booking.objects.count() == 2
    assert Booking.objects.get(pk=original.id).rescheduled_to_id == new_id


def test_booking_of_another_team_is_404(other_api, original):
    before = snapshot(original.id)
    assert_error(reschedule(other_api, original.id, in_days(3)), 404, "not_found")
    assert snapshot(original.id) == before


def test_key_without_reschedule_scope_is_403_and_nothing_changes(team, original):
    scopes = [scope for scope in ApiKey.Scope.values if scope != "bookings:reschedule"]
    client = make_client(team, scopes=scopes)
    before = snapshot(original.id)

    assert_error(reschedule(client, original.id, in_days(3)), 403, "forbidden")

    assert snapshot(original.id) == before
    assert Booking.objects.count() == 1
    assert not IdempotencyKey.objects.exists()


# --- History and email ----------------------------------------------------------------------


def test_history_has_one_rescheduled_entry_on_each_booking(api, original, team):
    new_start = in_days(3, hour=14)
    new_id = reschedule(api, original.id, new_start, reason="Moved").json()["booking"]["id"]

    assert actions(original.id) == ["created", "routed", "rescheduled"]
    assert actions(new_id) == ["rescheduled"]
    key_id = team.api_keys.get().id
    moved = {
        "start_time": [iso(original.start_time), iso(new_start)],
        "end_time": [iso(original.end_time), iso(new_start + timedelta(minutes=30))],
        "reason": [None, "Moved"],
    }
    old_entry = BookingHistory.objects.filter(booking_id=original.id).latest("id")
    assert (old_entry.from_status, old_entry.to_status) == ("SCHEDULED", "CANCELLED")
    assert (old_entry.actor_type, old_entry.actor_id) == ("api_key", key_id)
    assert old_entry.changes == {
        "status": ["SCHEDULED", "CANCELLED"],
        "cancellation.cancelled_by": [None, "api"],
        "cancellation.reason": [None, "Moved"],
        "rescheduled_to_id": [None, new_id],
        **moved,
    }
    new_entry = BookingHistory.objects.get(booking_id=new_id)
    assert (new_entry.from_status, new_entry.to_status) == ("", "RESCHEDULED")
    assert (new_entry.actor_type, new_entry.actor_id) == ("api_key", key_id)
    assert new_entry.changes == {
        "rescheduled_from_id": [None, original.id],
        "assigned_to_id": [None, original.assigned_to_id],  # a new booking: no host before
        **moved,
    }
    listed = api.get(f"/v1/bookings/{new_id}/history").json()["history"]
    assert [entry["action"] for entry in listed] == ["rescheduled"]


def test_one_confirmation_for_the_new_booking_and_no_cancellation_notice(api, original):
    new_id = reschedule(api, original.id, in_days(3)).json()["booking"]["id"]

    email = EmailOutbox.objects.get(booking_id=new_id)
    assert (email.kind, email.to_email, email.ical_sequence) == (
        "confirmation",
        "ada@example.com",
        1,
    )
    # The original's only email is its creation's confirmation, unsent, so dropped.
    assert list(
        EmailOutbox.objects.filter(booking_id=original.id).values_list("kind", "status")
    ) == [("confirmation", "superseded")]


# --- A fixed number of queries --------------------------------------------------------------


def test_reschedule_costs_a_fixed_number_of_queries(api, event_type, django_assert_num_queries):
    originals = [booking_create_via_api(api, event_type, in_days(2, hour=h)) for h in (9, 10)]
    # The booking (the key is cached); then the service's transaction (a savepoint pair here,
    # inside the test's own transaction): the original locked, cancelled, candidate
    # hosts, savepoint + insert + release, history (one bulk insert), the original's emails
    # superseded, the new email. The same whichever booking, whichever time.
    for hour, booking in zip((13, 14), originals, strict=True):
        with django_assert_num_queries(12):
            assert reschedule(api, booking.id, in_days(3, hour=hour)).status_code == 201
