"""The domain's errors: what went wrong, in words the API, the admin and commands share.

Nothing here knows HTTP. Each error has a stable ``code``, a message, ``details`` (a JSON
object) and, when retrying later may succeed, ``retry_after`` in seconds. The API maps each
class to a status in one place (``bookings.viewsets.ERROR_STATUSES``); the admin and management
commands catch ``BookingsError`` and show its message.
"""


class BookingsError(Exception):
    code = "error"
    default_message = "The request could not be carried out."

    def __init__(
        self, message: str | None = None, *, details: dict | None = None, retry_after=None
    ):
        self.message = message or self.default_message
        self.details = details or {}
        self.retry_after: int | None = retry_after
        super().__init__(self.message)


class ValidationFailed(BookingsError):
    """Bad input. ``details`` maps each field to its messages: ``{"field": ["…"]}``."""

    code = "validation_error"
    default_message = "The request is not valid."

    def __init__(self, errors: dict[str, str | list[str]], message: str | None = None):
        details = {
            field: [messages] if isinstance(messages, str) else list(messages)
            for field, messages in errors.items()
        }
        super().__init__(message, details=details)


class FieldNotUpdatable(BookingsError):
    code = "field_not_updatable"
    default_message = "Only attendee details can be updated."


class InvalidCursor(BookingsError):
    code = "invalid_cursor"
    default_message = "The cursor is not one this API issued, or it was altered."


class InvalidIdempotencyKey(BookingsError):
    code = "invalid_idempotency_key"
    default_message = "Idempotency-Key must be 1 to 255 printable ASCII characters."


class NotFound(BookingsError):
    code = "not_found"
    default_message = "Not found."


class InvalidTransition(BookingsError):
    code = "invalid_transition"
    default_message = "This action is not allowed in the booking's current status."


class BookingChanged(BookingsError):
    """An edit made against a version of the booking that is no longer the latest (the admin's
    page was opened before someone else's change): refused rather than undoing that change."""

    code = "booking_changed"
    default_message = (
        "Someone changed this booking after you opened it. Reload the page, check the change, "
        "then edit again."
    )


class BookingNotStarted(BookingsError):
    code = "booking_not_started"
    default_message = "The booking has not started yet."


class SlotUnavailable(BookingsError):
    code = "slot_unavailable"
    default_message = "No eligible host is free at that time."


class IdempotencyRequestInProgress(BookingsError):
    code = "idempotency_request_in_progress"
    default_message = "A request with this Idempotency-Key is still being processed."

    def __init__(self, message: str | None = None):
        super().__init__(message, retry_after=1)


class IdempotencyKeyReused(BookingsError):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was used with a different request."
