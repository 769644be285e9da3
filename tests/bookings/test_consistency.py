"""The consistency check (bookings/consistency.py, manage.py check_consistency): silent on data
the services wrote, and each rule reports its own kind of damage."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from bookings.consistency import DeliveredEmail, consistency_check
from bookings.models import Booking, BookingHistory, IdempotencyKey
from bookings.services import (
    Actor,
    Attendee,
    booking_attendee_update,
    booking_create,
    booking_reschedule,
    booking_transition,
)
from notifications.emails import outbox_message_id
from notifications.models import EmailOutbox
from notifications.services import email_send

from .create_helpers import in_days

pytestmark = pytest.mark.django_db

API = Actor(BookingHistory.ActorType.API_KEY, "key_x")


def _create(event_type, days: float, *, hour: int = 10) -> Booking:
    return booking_create(
        team=event_type.team,
        event_type=event_type,
        start_time=in_days(days, hour=hour),
        attendee=Attendee(name="Ada", email="ada@example.com"),
        actor=API,
    )


def _send_all() -> list[DeliveredEmail]:
    for pk in EmailOutbox.objects.filter(status="pending").values_list("pk", flat=True):
        assert email_send(outbox_id=pk)
    return [DeliveredEmail.from_message(message.message()) for message in mail.outbox]


@pytest.fixture
def lived(event_type):
    """Bookings through every kind of change the services make, emails sent: clean data."""
    pending_type = type(event_type).objects.create(
        team=event_type.team,
        name="Pending",
        slug="pending",
        duration=30,
        scheduling_type="SOLO",
        requires_confirmation=True,
    )
    pending_type.host_links.create(member=event_type.hosts.first())
    scheduled = _create(event_type, 3)
    cancelled = _create(event_type, 4)
    booking_transition(booking=cancelled, action="cancel", actor=API)  # supersedes its confirmation
    moved = _create(event_type, 5)
    new = booking_reschedule(booking=moved, start_time=in_days(6), actor=API)
    booking_attendee_update(booking=new, actor=API, email="grace@example.com")
    booking_attendee_update(booking=new, actor=API, name="Grace")  # no email
    confirmed = _create(pending_type, 7)
    _send_all()  # the awaiting-confirmation goes out before the confirm
    booking_transition(booking=confirmed, action="confirm", actor=API)
    IdempotencyKey.objects.create(
        team=event_type.team,
        key="k1",
        fingerprint="f",
        response_status=201,
        response_body=b"{}",
        booking=scheduled,
        created_at=scheduled.created_at,
        expires_at=scheduled.created_at + timedelta(days=1),
    )
    delivered = _send_all()
    return {"scheduled": scheduled, "cancelled": cancelled, "new": new, "delivered": delivered}


def _rules(report) -> set[str]:
    return {violation.rule for violation in report.violations}


def test_clean_data_has_no_violation(lived):
    report = consistency_check(delivered=lived["delivered"])
    assert report.ok, report.violations
    assert report.counted["bookings"] == 5
    assert report.counted["emails superseded"] >= 1
    assert report.counted["messages received"] == report.counted["emails sent"]
    call_command("check_consistency")  # exit 0


@contextmanager
def _without_exclusion_constraint():
    """The overlap the constraint forbids, written as a bug or a hand-made SQL would (the test's
    transaction rolls the DDL back)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks on the table
            cursor.execute(
                "ALTER TABLE bookings_booking DROP CONSTRAINT booking_no_overlap_per_host"
            )
    yield


def test_overlap_is_reported(lived):
    scheduled = lived["scheduled"]
    twin = _create(scheduled.event_type, 30)
    with _without_exclusion_constraint():
        Booking.objects.filter(pk=twin.pk).update(
            assigned_to=scheduled.assigned_to,
            blocked_start=scheduled.blocked_start + timedelta(minutes=10),
            blocked_end=scheduled.blocked_end + timedelta(minutes=10),
            start_time=scheduled.start_time + timedelta(minutes=10),
            end_time=scheduled.end_time + timedelta(minutes=10),
        )
        report = consistency_check(drained=False)
    overlaps = [v for v in report.violations if v.rule == "overlap"]
    assert {v.subject for v in overlaps} == {scheduled.id, twin.id}
    assert _rules(report) == {"overlap"}


@pytest.mark.parametrize(
    "damage",
    [
        "status_changed_behind_history",
        "move_not_in_table",
        "broken_chain",
        "no_history",
        "born_without_create",
    ],
)
def test_history_damage_is_reported(lived, damage):
    scheduled, cancelled = lived["scheduled"], lived["cancelled"]
    if damage == "status_changed_behind_history":
        Booking.objects.filter(pk=scheduled.pk).update(status=Booking.Status.PENDING_CONFIRMATION)
        subject = scheduled.id
    elif damage == "move_not_in_table":  # CANCELLED -> SCHEDULED: no action does that
        BookingHistory.objects.create(
            booking=cancelled,
            action="confirmed",
            from_status="CANCELLED",
            to_status="SCHEDULED",
            actor_type="system",
        )
        Booking.objects.filter(pk=cancelled.pk).update(
            status="SCHEDULED", cancelled_at=None, cancelled_by=""
        )
        subject = cancelled.id
    elif damage == "broken_chain":  # the routed entry lost: DRAFT then a move from SCHEDULED
        scheduled.history.filter(action="routed").delete()
        subject = scheduled.id
    elif damage == "no_history":
        scheduled.history.all().delete()
        subject = scheduled.id
    else:
        scheduled.history.filter(action="created").delete()
        subject = scheduled.id
    report = consistency_check(drained=False)
    assert {(v.rule, v.subject) for v in report.violations} >= {("history", subject)}
    assert _rules(report) <= {"history", "email_event"}


def test_email_rules_are_reported(lived):
    scheduled = lived["scheduled"]
    rows = EmailOutbox.objects.filter(booking=scheduled)
    row = rows.get()
    # A second row for one event (what the unique event_key prevents), never sent; a failed
    # one; a superseded one that nothing superseded.
    EmailOutbox.objects.create(
        booking=scheduled,
        kind="confirmation",
        event_key=f"{scheduled.id}:again",
        to_email="ada@example.com",
        next_attempt_at=row.next_attempt_at,
    )
    new = lived["new"]
    EmailOutbox.objects.filter(booking=new, kind="confirmation").update(status="failed")
    last = EmailOutbox.objects.filter(booking=lived["cancelled"]).latest("id")
    EmailOutbox.objects.filter(pk=last.pk).update(status="superseded")

    report = consistency_check()
    found = {(v.rule, v.subject) for v in report.violations}
    assert ("email_event", f"{scheduled.id}:again") in found
    assert {v.subject for v in report.violations if v.rule == "email_unsent"} == {
        str(pk)
        for pk in EmailOutbox.objects.exclude(status="sent")
        .filter(booking__in=[scheduled, new, lived["cancelled"]])
        .exclude(booking=lived["cancelled"], status="superseded")
        .values_list("pk", flat=True)
    } | {str(last.pk)}
    # Pending is fine on a live service; failed and wrongly superseded rows are not.
    live = {(v.rule, v.subject) for v in consistency_check(drained=False).violations}
    assert (
        "email_unsent",
        str(EmailOutbox.objects.get(event_key=f"{scheduled.id}:again").pk),
    ) not in live
    assert ("email_unsent", str(last.pk)) in live


def test_an_event_without_its_email_is_reported(lived):
    cancelled = lived["cancelled"]
    EmailOutbox.objects.filter(event_key=f"{cancelled.id}:cancelled").delete()
    report = consistency_check()
    assert ("email_event", f"{cancelled.id}:cancelled") in {
        (v.rule, v.subject) for v in report.violations
    }


def test_deliveries_are_held_to_the_sent_rows(lived):
    delivered = lived["delivered"]
    assert consistency_check(delivered=delivered).ok
    duplicate = consistency_check(delivered=[*delivered, delivered[0]])
    missing = consistency_check(delivered=delivered[1:])
    assert _rules(duplicate) == {"email_delivery"}
    assert _rules(missing) == {"email_delivery"}
    # One to one by Message-ID when the messages carry one (the row's, made from its event).
    rows = list(EmailOutbox.objects.filter(status="sent"))
    by_id = [
        DeliveredEmail(row.booking_id, row.kind, message_id=outbox_message_id(row)) for row in rows
    ]
    assert consistency_check(delivered=by_id).ok
    stranger = DeliveredEmail(rows[0].booking_id, rows[0].kind, message_id="<other@example>")
    swapped = [*by_id[1:], stranger]
    assert {(v.rule, v.subject) for v in consistency_check(delivered=swapped).violations} == {
        ("email_delivery", str(rows[0].pk)),
        ("email_delivery", "<other@example>"),
    }


def test_a_key_without_its_booking_is_reported(lived):
    key = IdempotencyKey.objects.get(key="k1")
    IdempotencyKey.objects.filter(pk=key.pk).update(booking=None)
    report = consistency_check()
    assert [(v.rule, v.subject) for v in report.violations] == [("idempotency", str(key.pk))]
    with pytest.raises(CommandError) as raised:
        call_command("check_consistency")
    assert raised.value.returncode == 1
