"""Helpers for the lifecycle tests: a booking in any status, the state of its rows, and what
the transition table says an (action, status) pair must do."""

from datetime import timedelta

from django.utils import timezone

from bookings.auth import hash_key
from bookings.models import ApiKey, Booking, BookingHistory
from bookings.transitions import Transition
from notifications.models import EmailOutbox
from tests.factories import BookingFactory

Status = Booking.Status

# The outcomes the table can give an (action, status, started) case.
MOVED = "moved"
UNCHANGED = "unchanged"
NOT_STARTED = "not_started"
REFUSED = "refused"


def expected_outcome(transition: Transition, status: str, started: bool) -> str:
    """What the table says the action does to a booking in ``status``."""
    if status in transition.unchanged_on:
        return UNCHANGED
    if status not in transition.allowed_from:
        return REFUSED
    if transition.requires_started and not started:
        return NOT_STARTED
    return MOVED


def booking_in(status: str, *, event_type, host, started: bool = False, **fields) -> Booking:
    """A booking written straight to the table in ``status``, with a pending email of its own.

    Started: it began an hour ago (and is still running). Not started: it begins tomorrow.
    ``updated_at`` is set a day back, so any write that touches it shows.
    """
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=1) if started else now + timedelta(days=1)
    start = fields.pop("start_time", start)
    if status == Status.CANCELLED:
        fields.setdefault("cancelled_at", now - timedelta(hours=2))
        fields.setdefault("cancelled_by", Booking.CancelledBy.HOST)
        fields.setdefault("cancellation_reason", "First reason")
    booking = BookingFactory(
        event_type=event_type,
        assigned_to=None if status == Status.DRAFT else host,
        status=status,
        start_time=start,
        end_time=start + timedelta(minutes=event_type.duration),
        created_at=now - timedelta(days=2),
        updated_at=now - timedelta(days=1),
        ical_sequence=1,
        **fields,
    )
    # An email still unsent: a newer one supersedes it, a refused or repeated action leaves it.
    EmailOutbox.objects.create(
        booking=booking,
        kind=EmailOutbox.Kind.CONFIRMATION,
        event_key=f"{booking.id}:seeded",
        to_email=booking.attendee_email,
        ical_sequence=1,
        next_attempt_at=now,
    )
    return booking


def row(booking: Booking) -> dict:
    """Every column of the booking's row, as stored now."""
    return Booking.objects.filter(pk=booking.pk).values().get()


def history_rows(booking: Booking) -> list[dict]:
    return list(BookingHistory.objects.filter(booking_id=booking.pk).order_by("id").values())


def outbox_rows(booking: Booking) -> list[dict]:
    return list(EmailOutbox.objects.filter(booking_id=booking.pk).order_by("id").values())


class Snapshot:
    """The booking's row, history and emails, and the table sizes, before a request."""

    def __init__(self, booking: Booking):
        self.booking = booking
        self.row = row(booking)
        self.history = history_rows(booking)
        self.outbox = outbox_rows(booking)
        self.bookings = Booking.objects.count()
        self.all_history = BookingHistory.objects.count()
        self.all_outbox = EmailOutbox.objects.count()

    def assert_unchanged(self) -> None:
        """Nothing at all was written: the row, its history, its emails, no other rows."""
        assert row(self.booking) == self.row
        assert history_rows(self.booking) == self.history
        assert outbox_rows(self.booking) == self.outbox
        assert Booking.objects.count() == self.bookings
        assert BookingHistory.objects.count() == self.all_history
        assert EmailOutbox.objects.count() == self.all_outbox

    def assert_untouched(self) -> None:
        """This booking's row, history and emails are as they were (others may have moved)."""
        assert row(self.booking) == self.row
        assert history_rows(self.booking) == self.history
        assert outbox_rows(self.booking) == self.outbox

    def new_history(self) -> list[BookingHistory]:
        known = {entry["id"] for entry in self.history}
        return list(
            BookingHistory.objects.filter(booking_id=self.booking.pk)
            .exclude(id__in=known)
            .order_by("id")
        )

    def new_outbox(self) -> list[EmailOutbox]:
        known = {email["id"] for email in self.outbox}
        return list(
            EmailOutbox.objects.filter(booking_id=self.booking.pk)
            .exclude(id__in=known)
            .order_by("id")
        )


def email_kind(transition: Transition, status: str) -> str | None:
    """The kind of email the table says a move queues for a booking that is now ``status``: a
    confirmation of a booking still pending is the 'awaiting confirmation' notice."""
    if transition.email == EmailOutbox.Kind.CONFIRMATION:
        if status == Status.PENDING_CONFIRMATION:
            return EmailOutbox.Kind.AWAITING_CONFIRMATION
        return EmailOutbox.Kind.CONFIRMATION
    return transition.email


def assert_moved(
    snapshot: Snapshot,
    transition: Transition,
    *,
    actor: tuple[str, str],
    cancelled_by: str = Booking.CancelledBy.API,
    reason: str | None = None,
    email_status: str = EmailOutbox.Status.PENDING,
) -> BookingHistory:
    """The booking moved as the table says, with one history entry and its email (or none).

    ``email_status``: where the new email should be (pending, unless the test ran the
    after-commit callbacks that send it).
    """
    before, after = snapshot.row, row(snapshot.booking)
    old = before["status"]
    (entry,) = snapshot.new_history()
    assert (entry.action, entry.from_status, entry.to_status) == (
        transition.history_action,
        old,
        transition.to,
    )
    assert (entry.actor_type, entry.actor_id) == actor
    changes = {"status": [old, transition.to]}
    expected = {**before, "status": transition.to, "updated_at": entry.at}
    if transition.to == Status.CANCELLED:
        changes["cancellation.cancelled_by"] = [None, cancelled_by]
        if reason is not None:  # a change is a pair that differs
            changes["cancellation.reason"] = [None, reason]
        expected.update(
            cancelled_by=cancelled_by, cancellation_reason=reason, cancelled_at=entry.at
        )
    assert entry.changes == changes

    new_emails = snapshot.new_outbox()
    # The email booking_in seeds, still unsent (None for a booking made through the API).
    seeded = EmailOutbox.objects.filter(event_key=f"{snapshot.booking.pk}:seeded").first()
    kind = email_kind(transition, transition.to)
    if kind is None:
        assert new_emails == []
        assert seeded is None or seeded.status == EmailOutbox.Status.PENDING
    else:
        expected["ical_sequence"] = before["ical_sequence"] + 1
        (email,) = new_emails
        assert email.kind == kind
        assert email.to_email == before["attendee_email"]
        assert email.status == email_status
        assert email.ical_sequence == expected["ical_sequence"]
        if email_status == EmailOutbox.Status.PENDING:
            assert email.next_attempt_at == entry.at  # due at once
        # One event of one booking: the unique key that keeps it from being sent twice.
        assert email.event_key == f"{snapshot.booking.pk}:{transition.history_action}"
        # The newer email replaces the one still unsent.
        assert seeded is None or seeded.status == EmailOutbox.Status.SUPERSEDED
    assert after == expected
    assert Booking.objects.count() == snapshot.bookings
    return entry


def key_id(client) -> str:
    """The id of the API key a test client sends."""
    return ApiKey.objects.get(key_hash=hash_key(client.secret)).id
