"""The booking page: the attendee edited through the PATCH service, a button per move the
table allows, each through the lifecycle services with the staff user as the actor."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.utils import timezone

from bookings.errors import InvalidTransition
from bookings.models import Booking, BookingHistory
from bookings.transitions import ATTENDEE_EDITABLE, TRANSITIONS
from notifications.models import EmailOutbox
from tests.bookings.admin_helpers import (
    act_url,
    attendee_post,
    change_url,
    messages_of,
    staff_client,
)
from tests.bookings.transition_helpers import (
    MOVED,
    NOT_STARTED,
    REFUSED,
    UNCHANGED,
    Snapshot,
    booking_in,
    expected_outcome,
)
from tests.factories import BookingFactory, EventTypeFactory, TeamMemberFactory

pytestmark = pytest.mark.django_db
Status = Booking.Status
CLIENT_STATUSES = [s for s in Status.values if s != Status.DRAFT]


@pytest.fixture
def support(db):
    return staff_client(username="sam", group="Support")


@pytest.fixture
def host(hosts):
    return hosts[0]


def _page(client, booking):
    response = client.get(change_url(booking))
    assert response.status_code == 200
    return response, response.content.decode()


# -- what the page shows ---------------------------------------------------------------------


@pytest.mark.parametrize("status", CLIENT_STATUSES)
@pytest.mark.parametrize("started", [False, True], ids=["future", "started"])
def test_the_buttons_are_the_moves_the_table_allows(support, event_type, host, status, started):
    client, _ = support
    booking = booking_in(status, event_type=event_type, host=host, started=started)

    response, html = _page(client, booking)

    allowed = {a for a, t in TRANSITIONS.items() if status in t.allowed_from}
    offered = {item["action"] for item in response.context["booking_actions"]}
    assert offered == allowed
    for action in TRANSITIONS:
        assert (f'id="booking-action-{action}"' in html) == (action in allowed)
    waiting = {item["action"] for item in response.context["booking_actions"] if item["waiting"]}
    assert waiting == {a for a in allowed if TRANSITIONS[a].requires_started and not started}
    assert f"booking-status--{status.lower()}" in html


@pytest.mark.parametrize("status", CLIENT_STATUSES)
def test_attendee_fields_are_editable_only_where_patch_is_allowed(
    support, event_type, host, status
):
    client, _ = support
    booking = booking_in(status, event_type=event_type, host=host)

    _, html = _page(client, booking)

    assert ('name="attendee_email"' in html) == (status in ATTENDEE_EDITABLE)
    assert booking.attendee_email in html
    assert 'name="start_time"' not in html or status in TRANSITIONS["reschedule"].allowed_from
    assert 'name="status"' not in html  # scheduling fields are never inputs


def test_the_page_shows_history_emails_and_links_between_rescheduled_bookings(
    support, event_type, host
):
    client, user = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    response = client.post(
        act_url(booking, "reschedule"),
        {"start_time": (booking.start_time + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")},
    )
    new = Booking.objects.get(rescheduled_from=booking)
    EmailOutbox.objects.filter(booking=new).update(
        status=EmailOutbox.Status.FAILED, attempts=6, last_error="SMTPRecipientsRefused: 550"
    )

    _, old_html = _page(client, booking)
    _, new_html = _page(client, new)

    assert response.status_code == 302
    assert response["Location"] == change_url(new)
    assert f'href="{change_url(new)}"' in old_html  # rescheduled to
    assert f'href="{change_url(booking)}"' in new_html  # rescheduled from
    assert 'id="history-group"' in new_html
    assert "rescheduled" in new_html
    assert f"staff: {user.username}" in new_html
    assert 'id="emails-group"' in new_html
    assert "SMTPRecipientsRefused: 550" in new_html
    assert "failed" in new_html


def test_the_page_reads_a_fixed_number_of_queries(support, event_type, host):
    client, _ = support
    few = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    many = booking_in(
        Status.SCHEDULED, event_type=event_type, host=TeamMemberFactory(team=event_type.team)
    )
    for i in range(20):
        BookingHistory.objects.create(
            booking=many, action="attendee_updated", to_status="SCHEDULED", actor_type="system"
        )
        EmailOutbox.objects.create(
            booking=many,
            kind="confirmation",
            event_key=f"x{i}",
            to_email="a@b.io",
            next_attempt_at=timezone.now(),
        )
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as first:
        _page(client, few)
    with CaptureQueriesContext(connection) as second:
        _page(client, many)

    assert len(second.captured_queries) == len(first.captured_queries)


# -- the attendee, through booking_attendee_update -----------------------------------------


def test_an_email_change_is_saved_by_the_service_and_queues_one_confirmation(
    support, event_type, host, django_capture_on_commit_callbacks
):
    client, user = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    snapshot = Snapshot(booking)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            change_url(booking),
            attendee_post(booking, attendee_email="new@example.org"),
            follow=True,
        )

    assert response.status_code == 200
    assert any("queued" in text and "new@example.org" in text for text in messages_of(response))
    assert Booking.objects.get(pk=booking.pk).attendee_email == "new@example.org"
    [entry] = snapshot.new_history()
    assert entry.action == BookingHistory.Action.ATTENDEE_UPDATED
    assert (entry.actor_type, entry.actor_id) == ("staff", str(user.pk))
    assert entry.changes == {"attendee.email": [booking.attendee_email, "new@example.org"]}
    [email] = snapshot.new_outbox()
    assert (email.to_email, email.kind, email.status) == ("new@example.org", "confirmation", "sent")
    assert [m.to for m in mail.outbox] == [["new@example.org"]]
    # The seeded unsent email to the old address was superseded, not sent.
    assert EmailOutbox.objects.get(event_key=f"{booking.id}:seeded").status == "superseded"
    assert LogEntry.objects.filter(object_id=booking.pk).count() == 1
    # The page then shows the new row among the booking's emails.
    assert "new@example.org" in response.content.decode()


def test_a_name_change_writes_history_but_no_email(support, event_type, host):
    client, _ = support
    booking = booking_in(Status.PENDING_CONFIRMATION, event_type=event_type, host=host)
    snapshot = Snapshot(booking)

    response = client.post(change_url(booking), attendee_post(booking, attendee_name="Ada L."))

    assert response.status_code == 302
    assert [e.changes for e in snapshot.new_history()] == [
        {"attendee.name": [booking.attendee_name, "Ada L."]}
    ]
    assert snapshot.new_outbox() == []


def test_saving_without_changes_writes_nothing(support, event_type, host):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    snapshot = Snapshot(booking)

    response = client.post(change_url(booking), attendee_post(booking))

    assert response.status_code == 302
    snapshot.assert_unchanged()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("attendee_email", "not-an-email"),
        ("attendee_email", "ada@ex\u202eample.com"),  # no IDNA form: could never be sent
        ("attendee_phone", "12"),
        ("attendee_timezone", "Mars/Olympus"),
        ("attendee_name", ""),
        ("attendee_name", "x" * 201),
        # Control characters, refused as the API refuses them (a line break would reach the
        # email's text; C1 and BEL are invisible).
        ("attendee_name", "Eve\r\nEND:VEVENT"),
        ("attendee_name", "Eve\x07"),
        ("attendee_name", "Ev\x85e"),
        ("attendee_name", "Eve\tAda"),
    ],
)
def test_bad_attendee_input_is_shown_and_changes_nothing(support, event_type, host, field, value):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    snapshot = Snapshot(booking)

    response = client.post(change_url(booking), attendee_post(booking, **{field: value}))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    snapshot.assert_unchanged()


def test_a_phone_is_normalised_as_the_api_does(support, event_type, host):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)

    client.post(change_url(booking), attendee_post(booking, attendee_phone="+1 (555) 010-0200"))

    assert Booking.objects.get(pk=booking.pk).attendee_phone == "+15550100200"


def test_a_save_over_a_newer_change_is_refused(support, event_type, host):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    seen = attendee_post(booking, attendee_name="Mine")
    Booking.objects.filter(pk=booking.pk).update(
        attendee_email="theirs@example.org", updated_at=timezone.now()
    )
    snapshot = Snapshot(booking)

    response = client.post(change_url(booking), seen)

    assert response.status_code == 200
    assert "changed this booking after you opened it" in str(
        response.context["adminform"].form.non_field_errors()
    )
    snapshot.assert_unchanged()


def test_a_booking_cancelled_while_the_page_was_open_keeps_its_attendee(support, event_type, host):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    post = attendee_post(booking, attendee_email="late@example.org")
    Booking.objects.filter(pk=booking.pk).update(
        status=Status.CANCELLED, cancelled_at=timezone.now(), cancelled_by="host"
    )
    snapshot = Snapshot(booking)

    response = client.post(change_url(booking), post, follow=True)

    assert response.status_code == 200
    assert any("can no longer be changed" in text for text in messages_of(response))
    snapshot.assert_unchanged()


def test_a_refusal_from_the_service_is_a_message_not_a_500(support, event_type, host, monkeypatch):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    snapshot = Snapshot(booking)

    def refuse(**kwargs):
        raise InvalidTransition("Cannot update a booking that is CANCELLED.")

    monkeypatch.setattr("bookings.admin.booking.booking_attendee_update", refuse)
    response = client.post(
        change_url(booking), attendee_post(booking, attendee_name="Racer"), follow=True
    )

    assert response.status_code == 200
    assert "Cannot update a booking that is CANCELLED." in messages_of(response)
    snapshot.assert_unchanged()
    assert not LogEntry.objects.filter(object_id=booking.pk).exists()


# -- the buttons: every action from every status, as the table says -----------------------


@pytest.mark.parametrize("action", [a for a in TRANSITIONS if a != "reschedule"])
@pytest.mark.parametrize("status", CLIENT_STATUSES)
@pytest.mark.parametrize("started", [False, True], ids=["future", "started"])
def test_each_button_does_what_the_table_says(support, event_type, host, action, status, started):
    client, user = support
    transition = TRANSITIONS[action]
    booking = booking_in(status, event_type=event_type, host=host, started=started)
    snapshot = Snapshot(booking)
    data = {"cancelled_by": "attendee", "reason": "Asked by phone"} if action == "cancel" else {}

    response = client.post(act_url(booking, action), data, follow=True)

    assert response.status_code == 200
    texts = messages_of(response)
    outcome = expected_outcome(transition, status, started)
    if outcome == MOVED:
        assert Booking.objects.get(pk=booking.pk).status == transition.to
        [entry] = snapshot.new_history()
        assert (entry.action, entry.actor_type, entry.actor_id) == (
            transition.history_action,
            "staff",
            str(user.pk),
        )
        assert len(snapshot.new_outbox()) == (1 if transition.email else 0)
        assert texts == [f"Booking {booking.pk} is now {transition.to}."]
        if action == "cancel":
            moved = Booking.objects.get(pk=booking.pk)
            assert (moved.cancelled_by, moved.cancellation_reason) == ("attendee", "Asked by phone")
    else:
        snapshot.assert_unchanged()
        if outcome == UNCHANGED:
            assert texts == [f"Booking {booking.pk} was already {status}: nothing changed."]
        elif outcome == NOT_STARTED:
            [text] = texts
            assert f"cannot be marked {transition.to} before then" in text
        else:
            assert outcome == REFUSED
            assert texts == [f"Cannot {action.replace('_', '-')} a booking that is {status}."]


@pytest.mark.parametrize(
    "data",
    [
        {"cancelled_by": "api", "reason": "x"},
        {"cancelled_by": "", "reason": "x"},
        {"cancelled_by": "host", "reason": "x" * 10_001},
        {"cancelled_by": "host", "reason": "a\x07b"},
        {"cancelled_by": "host", "reason": "a\x1bb"},
    ],
    ids=["api-is-not-staff", "missing", "reason-too-long", "bel", "escape"],
)
def test_a_bad_cancel_form_changes_nothing(support, event_type, host, data):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    snapshot = Snapshot(booking)

    response = client.post(act_url(booking, "cancel"), data, follow=True)

    assert response.status_code == 200
    assert len(messages_of(response)) == 1
    snapshot.assert_unchanged()


def test_reschedule_moves_the_booking_and_lands_on_the_new_one(support, event_type, host):
    client, user = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    new_start = (booking.start_time + timedelta(days=3)).replace(second=0, microsecond=0)

    response = client.post(
        act_url(booking, "reschedule"),
        {"start_time": new_start.strftime("%Y-%m-%d %H:%M"), "reason": "Host is ill"},
        follow=True,
    )

    original = Booking.objects.get(pk=booking.pk)
    new = Booking.objects.get(pk=original.rescheduled_to_id)
    assert response.redirect_chain == [(change_url(new), 302)]
    assert (original.status, original.cancellation_reason) == (Status.CANCELLED, "Host is ill")
    assert (new.status, new.start_time, new.assigned_to_id) == (
        Status.RESCHEDULED,
        new_start,
        host.pk,
    )
    entries = BookingHistory.objects.filter(action="rescheduled")
    assert {(e.booking_id, e.actor_type, e.actor_id) for e in entries} == {
        (original.pk, "staff", str(user.pk)),
        (new.pk, "staff", str(user.pk)),
    }
    assert EmailOutbox.objects.filter(booking=new, kind="confirmation").count() == 1
    assert any("Rescheduled to" in text for text in messages_of(response))


def test_reschedule_takes_an_offset_time_too(support, event_type, host):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    target = (booking.start_time + timedelta(days=3)).replace(second=0, microsecond=0)

    client.post(
        act_url(booking, "reschedule"),
        {"start_time": target.astimezone(timezone.get_fixed_timezone(120)).isoformat()},
    )

    assert Booking.objects.get(rescheduled_from=booking).start_time == target


@pytest.mark.parametrize("reason", ["x\x07y", "x\x9fy"], ids=ascii)
def test_a_reschedule_reason_with_control_characters_changes_nothing(
    support, event_type, host, reason
):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    start = (booking.start_time + timedelta(days=3)).replace(second=0, microsecond=0)
    snapshot = Snapshot(booking)

    response = client.post(
        act_url(booking, "reschedule"),
        {"start_time": start.strftime("%Y-%m-%d %H:%M"), "reason": reason},
        follow=True,
    )

    [text] = messages_of(response)
    assert "Control characters are not allowed (tab and line breaks are)." in text
    snapshot.assert_unchanged()
    assert not Booking.objects.filter(rescheduled_from=booking).exists()


def test_a_reason_may_hold_line_breaks_and_tabs_in_the_admin_too(support, event_type, host):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)

    client.post(act_url(booking, "cancel"), {"cancelled_by": "host", "reason": "a\r\n\tb"})

    assert Booking.objects.get(pk=booking.pk).cancellation_reason == "a\r\n\tb"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tomorrow", "YYYY-MM-DD HH:MM"),
        ("2027-02-30 10:00", "Not a real date"),
        ("", "This field is required"),
        ("2020-01-01 10:00", "New start (UTC): Too soon"),
    ],
)
def test_a_bad_reschedule_time_is_a_message_and_changes_nothing(
    support, event_type, host, value, message
):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    snapshot = Snapshot(booking)

    response = client.post(act_url(booking, "reschedule"), {"start_time": value}, follow=True)

    assert response.redirect_chain == [(change_url(booking), 302)]
    [text] = messages_of(response)
    assert message.lower() in text.lower()
    snapshot.assert_unchanged()


def test_a_busy_slot_is_a_clear_message_and_the_original_stays(support, team):
    client, _ = support
    solo_host = TeamMemberFactory(team=team)
    solo = EventTypeFactory(team=team, hosts=[solo_host], scheduling_type="SOLO")
    booking = booking_in(Status.SCHEDULED, event_type=solo, host=solo_host)
    busy = BookingFactory(
        event_type=solo,
        assigned_to=solo_host,
        start_time=booking.start_time + timedelta(days=1),
    )
    snapshot = Snapshot(booking)

    response = client.post(
        act_url(booking, "reschedule"),
        {"start_time": busy.start_time.strftime("%Y-%m-%d %H:%M")},
        follow=True,
    )

    [text] = messages_of(response)
    assert "No eligible host is free" in text
    snapshot.assert_unchanged()


def test_the_action_url_answers_only_post_and_known_actions(support, event_type, host):
    client, _ = support
    booking = booking_in(Status.SCHEDULED, event_type=event_type, host=host)
    snapshot = Snapshot(booking)

    assert client.get(act_url(booking, "cancel")).status_code == 405
    assert client.post(act_url(booking, "delete")).status_code == 404
    missing = client.post(
        act_url(booking, "cancel").replace(booking.pk, "bkg_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        {"cancelled_by": "host"},
    )
    assert missing.status_code == 302  # the admin's "does not exist" redirect, with a message
    snapshot.assert_unchanged()
