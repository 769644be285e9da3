"""The lifecycle, as data: which action may move a booking from which status, and to where.

This table is the one description of the lifecycle. ``services.booking_transition`` and
``services.booking_reschedule`` read it, the API's OpenAPI descriptions are written from it,
and the tests generate every (action, status) case from it. Nothing else decides whether a
move is allowed.
"""

from dataclasses import dataclass

from notifications.models import EmailOutbox

from .models import ApiKey, BookingHistory, BookingStatus

Status = BookingStatus


@dataclass(frozen=True)
class Transition:
    #: the name callers use: "confirm", "complete", "no_show", "cancel", "reschedule".
    action: str
    #: the statuses the action moves a booking out of.
    allowed_from: frozenset[BookingStatus]
    #: the status it moves the booking to (for a reschedule: the original's).
    to: BookingStatus
    #: the statuses where a repeat answers 200 with the booking unchanged, and does nothing.
    unchanged_on: frozenset[BookingStatus]
    #: whether the booking's start time must have passed.
    requires_started: bool
    #: the email it queues to the attendee (notifications.EmailOutbox.Kind), if any.
    email: EmailOutbox.Kind | None
    #: the history entry it writes.
    history_action: BookingHistory.Action
    #: the API key scope it needs.
    scope: ApiKey.Scope
    #: the path segment of its endpoint: POST /v1/bookings/{id}/<path>.
    path: str
    #: the permission (a codename of ``Booking.Meta.permissions``) staff need in the admin.
    permission: str

    def describe(self) -> str:
        """One paragraph for the OpenAPI description of the action's endpoint."""
        lines = [f"Allowed from {', '.join(sorted(self.allowed_from))}; the result is {self.to}."]
        if self.unchanged_on:
            lines.append(
                f"Repeated on {', '.join(sorted(self.unchanged_on))}: 200 with the booking "
                "unchanged, and no second email or history entry."
            )
        if self.requires_started:
            lines.append("Only once the booking has started: before, 409 `booking_not_started`.")
        lines.append(
            "From any other status: 409 `invalid_transition`, with `details.status` and "
            "`details.allowed_from`."
        )
        lines.append(f"Emails the attendee: {self.email or 'nothing'}. Scope: `{self.scope}`.")
        return "\n\n".join(lines)


_IN_PLAY = frozenset({Status.SCHEDULED, Status.RESCHEDULED})
_OPEN = frozenset({Status.SCHEDULED, Status.RESCHEDULED, Status.PENDING_CONFIRMATION})

TRANSITIONS: dict[str, Transition] = {
    transition.action: transition
    for transition in [
        Transition(
            action="confirm",
            allowed_from=frozenset({Status.PENDING_CONFIRMATION}),
            to=Status.SCHEDULED,
            unchanged_on=_IN_PLAY,
            requires_started=False,
            email=EmailOutbox.Kind.CONFIRMATION,
            history_action=BookingHistory.Action.CONFIRMED,
            scope=ApiKey.Scope.BOOKINGS_TRANSITION,
            path="confirm",
            permission="confirm_booking",
        ),
        Transition(
            action="complete",
            allowed_from=_IN_PLAY,
            to=Status.COMPLETED,
            unchanged_on=frozenset({Status.COMPLETED}),
            requires_started=True,
            email=None,
            history_action=BookingHistory.Action.COMPLETED,
            scope=ApiKey.Scope.BOOKINGS_TRANSITION,
            path="complete",
            permission="complete_booking",
        ),
        Transition(
            action="no_show",
            allowed_from=_IN_PLAY,
            to=Status.NO_SHOW,
            unchanged_on=frozenset({Status.NO_SHOW}),
            requires_started=True,
            email=None,
            history_action=BookingHistory.Action.NO_SHOW,
            scope=ApiKey.Scope.BOOKINGS_TRANSITION,
            path="no-show",
            permission="complete_booking",
        ),
        Transition(
            action="cancel",
            allowed_from=frozenset({Status.DRAFT}) | _OPEN,
            to=Status.CANCELLED,
            unchanged_on=frozenset({Status.CANCELLED}),  # the first cancellation's details stay
            requires_started=False,
            email=EmailOutbox.Kind.CANCELLATION,
            history_action=BookingHistory.Action.CANCELLED,
            scope=ApiKey.Scope.BOOKINGS_CANCEL,
            path="cancel",
            permission="cancel_booking",
        ),
        # The original becomes CANCELLED and a new booking takes the new time: RESCHEDULED, or
        # PENDING_CONFIRMATION when the original was pending. Its email is the new booking's
        # confirmation (the original's cancellation notice is not sent). A repeat is 409, unless
        # the same Idempotency-Key replays the first answer.
        Transition(
            action="reschedule",
            allowed_from=_OPEN,
            to=Status.CANCELLED,
            unchanged_on=frozenset(),
            requires_started=False,
            email=EmailOutbox.Kind.CONFIRMATION,
            history_action=BookingHistory.Action.RESCHEDULED,
            scope=ApiKey.Scope.BOOKINGS_RESCHEDULE,
            path="reschedule",
            permission="reschedule_booking",
        ),
    ]
}

#: The statuses in which the attendee's details may be changed (PATCH); else 409.
ATTENDEE_EDITABLE: frozenset[BookingStatus] = _OPEN


def rescheduled_status(original: BookingStatus) -> BookingStatus:
    """The status of the booking a reschedule makes."""
    if original == Status.PENDING_CONFIRMATION:
        return Status.PENDING_CONFIRMATION
    return Status.RESCHEDULED
