"""Resending failed emails: back to pending through the outbox, once, and never old news."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.consistency import consistency_check
from bookings.services import Actor, booking_transition
from notifications.models import EmailOutbox
from notifications.services import MAX_ATTEMPTS, email_resend, email_send
from tests.concurrency import run_together
from tests.factories import BookingFactory


@pytest.fixture
def booking(event_type, hosts):
    return BookingFactory(event_type=event_type, assigned_to=hosts[0])


def _row(booking, status=EmailOutbox.Status.FAILED, kind="confirmation", **fields) -> EmailOutbox:
    now = timezone.now()
    defaults = {
        "attempts": MAX_ATTEMPTS if status == EmailOutbox.Status.FAILED else 1,
        "last_error": "SMTPServerDisconnected: gone" if status == EmailOutbox.Status.FAILED else "",
        "next_attempt_at": now - timedelta(hours=1),
        "sent_at": now if status == EmailOutbox.Status.SENT else None,
    }
    return EmailOutbox.objects.create(
        booking=booking,
        kind=kind,
        event_key=f"{booking.id}:{status}:{kind}:{EmailOutbox.objects.count()}",
        to_email=booking.attendee_email,
        ical_sequence=booking.ical_sequence,
        status=status,
        **{**defaults, **fields},
    )


def _snapshot(row: EmailOutbox) -> dict:
    return EmailOutbox.objects.filter(pk=row.pk).values().get()


@pytest.mark.django_db
def test_a_failed_email_is_pending_again_and_dispatched_after_commit(
    booking, dispatched, mailoutbox, django_capture_on_commit_callbacks
):
    row = _row(booking)
    before = timezone.now()

    with django_capture_on_commit_callbacks() as callbacks:
        result = email_resend(outbox_ids=[row.pk])
        assert dispatched == []  # nothing leaves before the commit

    assert (result.queued, result.not_failed, result.outdated) == (1, 0, 0)
    row.refresh_from_db()
    assert row.status == EmailOutbox.Status.PENDING
    assert row.attempts == 0
    assert before <= row.next_attempt_at <= timezone.now()
    assert row.last_error == "SMTPServerDisconnected: gone"  # until the next attempt
    assert len(callbacks) == 1
    callbacks[0]()
    assert dispatched == [row.pk]
    assert mailoutbox == []  # dispatched through the outbox, never sent directly

    # The worker's send then goes out once, and clears the error.
    assert email_send(outbox_id=row.pk) is True
    assert email_send(outbox_id=row.pk) is False
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [booking.attendee_email]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (EmailOutbox.Status.SENT, 1, "")


@pytest.mark.django_db
def test_resend_through_the_real_dispatch_sends_it(
    booking, mailoutbox, django_capture_on_commit_callbacks
):
    row = _row(booking)

    with django_capture_on_commit_callbacks(execute=True):
        email_resend(outbox_ids=[row.pk])

    row.refresh_from_db()
    assert row.status == EmailOutbox.Status.SENT
    assert len(mailoutbox) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status",
    [EmailOutbox.Status.SENT, EmailOutbox.Status.PENDING, EmailOutbox.Status.SUPERSEDED],
)
def test_rows_not_failed_are_left_alone(
    booking, dispatched, status, django_capture_on_commit_callbacks
):
    row = _row(booking, status=status)
    before = _snapshot(row)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = email_resend(outbox_ids=[row.pk])

    assert (result.queued, result.not_failed, result.outdated) == (0, 1, 0)
    assert _snapshot(row) == before
    assert callbacks == []
    assert dispatched == []


@pytest.mark.django_db
def test_a_mixed_selection_moves_only_the_failed(booking, dispatched, hosts, event_type):
    failed = [_row(booking), _row(BookingFactory(event_type=event_type, assigned_to=hosts[1]))]
    sent = _row(booking, status=EmailOutbox.Status.SENT)

    result = email_resend(outbox_ids=[sent.pk, *(row.pk for row in failed)])

    assert (result.queued, result.not_failed, result.outdated) == (2, 1, 0)
    assert set(
        EmailOutbox.objects.filter(status=EmailOutbox.Status.PENDING).values_list("pk", flat=True)
    ) == {row.pk for row in failed}


@pytest.mark.django_db
def test_a_second_resend_queues_nothing(booking, dispatched, django_capture_on_commit_callbacks):
    row = _row(booking)
    with django_capture_on_commit_callbacks(execute=True):
        email_resend(outbox_ids=[row.pk])

    with django_capture_on_commit_callbacks(execute=True):
        again = email_resend(outbox_ids=[row.pk])

    assert (again.queued, again.not_failed) == (0, 1)
    assert dispatched == [row.pk]


@pytest.mark.django_db
def test_a_failed_confirmation_is_superseded_when_the_booking_is_cancelled(
    booking, dispatched, mailoutbox, django_capture_on_commit_callbacks
):
    # Found black-box: a 550 then a cancel left the confirmation failed for ever, refused by
    # the resend as outdated and reported by check_consistency as an email never sent.
    confirmation = _row(booking)
    with django_capture_on_commit_callbacks(execute=True):
        booking_transition(booking=booking, action="cancel", actor=Actor.system())
    confirmation.refresh_from_db()
    assert confirmation.status == EmailOutbox.Status.SUPERSEDED
    assert confirmation.last_error == "SMTPServerDisconnected: gone"  # kept for staff
    before = _snapshot(confirmation)

    with django_capture_on_commit_callbacks(execute=True):
        result = email_resend(outbox_ids=[confirmation.pk])

    assert (result.queued, result.not_failed, result.outdated) == (0, 1, 0)
    assert _snapshot(confirmation) == before
    cancellation = EmailOutbox.objects.get(booking=booking, kind="cancellation")
    assert dispatched == [cancellation.pk]  # the cancellation's own, not the resend's
    assert email_send(outbox_id=cancellation.pk)
    unsent = {v.subject for v in consistency_check().violations if v.rule == "email_unsent"}
    assert str(confirmation.pk) not in unsent


@pytest.mark.django_db
def test_a_failed_email_of_a_booking_rescheduled_away_is_outdated(
    booking, event_type, hosts, dispatched
):
    row = _row(booking)
    moved = BookingFactory(event_type=event_type, assigned_to=hosts[1])
    type(booking).objects.filter(pk=booking.pk).update(rescheduled_to=moved)

    result = email_resend(outbox_ids=[row.pk])

    assert result.outdated == 1
    row.refresh_from_db()
    assert row.status == EmailOutbox.Status.FAILED


@pytest.mark.django_db
def test_a_cancel_after_the_resend_supersedes_it(
    booking, dispatched, mailoutbox, django_capture_on_commit_callbacks
):
    row = _row(booking)
    email_resend(outbox_ids=[row.pk])  # pending again, its task not yet run

    with django_capture_on_commit_callbacks(execute=True):
        booking_transition(booking=booking, action="cancel", actor=Actor.system())

    row.refresh_from_db()
    assert row.status == EmailOutbox.Status.SUPERSEDED
    assert email_send(outbox_id=row.pk) is False
    assert mailoutbox == []


@pytest.mark.django_db(transaction=True)
def test_staff_resending_at_once_queue_it_once(booking, dispatched):
    row = _row(booking)

    results = run_together(8, lambda _: email_resend(outbox_ids=[row.pk]))

    assert sorted(result.queued for result in results) == [0] * 7 + [1]
    assert dispatched == [row.pk]
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailOutbox.Status.PENDING, 0)
