"""The domain's errors, each with its stable code."""

from rest_framework import status

from bookings_project.api.errors import ApiError, NotFound

__all__ = ["NotFound"]


class InvalidCursor(ApiError):
    default_code = "invalid_cursor"
    default_detail = "The cursor is not one this API issued, or it was altered."


class FieldNotUpdatable(ApiError):
    default_code = "field_not_updatable"
    default_detail = "Only attendee details can be updated."


class InvalidIdempotencyKey(ApiError):
    default_code = "invalid_idempotency_key"
    default_detail = "Idempotency-Key must be 1 to 255 printable ASCII characters."


class InvalidTransition(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "invalid_transition"
    default_detail = "This action is not allowed in the booking's current status."


class BookingNotStarted(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "booking_not_started"
    default_detail = "The booking has not started yet."


class SlotUnavailable(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "slot_unavailable"
    default_detail = "No eligible host is free at that time."


class IdempotencyRequestInProgress(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_request_in_progress"
    default_detail = "A request with this Idempotency-Key is still being processed."


class IdempotencyKeyReused(ApiError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used with a different request."
