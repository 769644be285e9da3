"""The lifecycle state machine's model of a booking, and what the transition table says.

Used by test_lifecycle_stateful.py: the model decides every expected answer from
``TRANSITIONS`` and keeps, per booking, the history and outbox rows the database must hold.
"""

from dataclasses import dataclass, field
from datetime import datetime

from bookings.models import Booking, EventType
from bookings.transitions import TRANSITIONS
from notifications.models import EmailOutbox

Status = Booking.Status
Kind = EmailOutbox.Kind
PENDING, SUPERSEDED = EmailOutbox.Status.PENDING, EmailOutbox.Status.SUPERSEDED


def expected_verdict(action: str, status: str, *, started: bool = False) -> str:
    """What ``TRANSITIONS[action]`` does to a booking in ``status``: "changed", "unchanged"
    (a repeat, 200) or the code of the 409."""
    transition = TRANSITIONS[action]
    if status in transition.unchanged_on:
        return "unchanged"
    if status not in transition.allowed_from:
        return "invalid_transition"
    if transition.requires_started and not started:
        return "booking_not_started"
    return "changed"


def email_kind(kind: str, status: str) -> str:
    """A confirmation of a booking still awaiting confirmation says so instead."""
    if kind == Kind.CONFIRMATION and status == Status.PENDING_CONFIRMATION:
        return Kind.AWAITING_CONFIRMATION
    return kind


@dataclass
class Expected:
    """One booking as the model sees it."""

    id: str
    event_type: EventType
    host_id: str
    status: str
    start: datetime
    end: datetime
    name: str
    email: str
    created: int  # creation order: routing prefers the host assigned least recently
    rescheduled_from: str | None = None
    rescheduled_to: str | None = None
    cancellation: tuple = ()
    sequence: int = 0  # the calendar SEQUENCE: one more for each change that emails
    history: list[str] = field(default_factory=list)
    # [event_key, kind, to_email, ical_sequence, status], in the order queued.
    emails: list[list] = field(default_factory=list)

    def queue(self, kind: str, event_key: str, *, new: bool = False) -> None:
        """An email about a change (a newer one replaces those unsent), or about a new
        booking (``new``: its SEQUENCE is already set)."""
        if not new:
            self.sequence += 1
            self.supersede()
        self.emails.append([event_key, kind, self.email, self.sequence, PENDING])

    def supersede(self) -> None:
        for row in self.emails:
            if row[-1] == PENDING:
                row[-1] = SUPERSEDED
