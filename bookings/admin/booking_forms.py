"""The booking page's forms: the attendee's details, a cancel and a reschedule.

They check what a person typed and say what is wrong in words; the rules of the lifecycle
(which status may move where, a free host, the notice) are the services' to apply.
"""

import re
from datetime import UTC, datetime

from django import forms
from django.core.exceptions import ValidationError

from ..errors import BookingChanged, BookingsError, ValidationFailed
from ..models import Booking
from ..transitions import ATTENDEE_EDITABLE
from ..validators import (
    normalize_phone,
    parse_aware_datetime,
    utc_iso,
    validate_email_address,
    validate_multiline_text,
    validate_single_line_text,
    validate_timezone,
)

ATTENDEE_FIELDS = ["attendee_name", "attendee_email", "attendee_phone", "attendee_timezone"]
REASON_MAX = 10_000  # as the API's cancel and reschedule


class BookingAttendeeForm(forms.ModelForm):
    """The attendee's details; saved by ``booking_attendee_update``, never by ``save()``."""

    # The booking's updated_at when the page was drawn: a save over someone else's newer
    # change is refused instead of silently undoing it. Checked here for a clear form error,
    # and again by the service under the row's lock (two saves from one page version at once:
    # the second is refused). Required: a POST without it would skip both.
    seen_version = forms.CharField(widget=forms.HiddenInput, required=True)
    # Typed with separators ("+1 (555) 010-0200"), stored as "+" and the digits.
    attendee_phone = forms.CharField(label="Attendee phone", required=False, max_length=40)

    class Meta:
        model = Booking
        fields = ATTENDEE_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "seen_version" in self.fields:
            self.fields["seen_version"].initial = utc_iso(self.instance.updated_at)

    def clean_attendee_name(self) -> str:
        # As the API's PATCH: a line break in a name would break the email it is written into.
        value = self.cleaned_data.get("attendee_name", "")
        validate_single_line_text(value)
        return value

    def clean_attendee_phone(self) -> str:
        value = self.cleaned_data.get("attendee_phone", "").strip()
        return normalize_phone(value) if value else ""

    def clean_attendee_email(self) -> str:
        value = self.cleaned_data.get("attendee_email", "")
        if value:
            validate_email_address(value)
        return value

    def clean_attendee_timezone(self) -> str:
        value = self.cleaned_data.get("attendee_timezone", "").strip()
        if value:
            validate_timezone(value)
        return value

    def clean(self):
        cleaned = super().clean()
        booking = self.instance
        if not self.attendee_changes():
            return cleaned
        if booking.status not in ATTENDEE_EDITABLE:
            raise ValidationError(
                f"The attendee of a {booking.status} booking cannot be changed.",
                code="invalid_transition",
            )
        seen = cleaned.get("seen_version")  # absent or garbled: the form has its error
        if seen is not None and seen != booking.updated_at:
            raise ValidationError(BookingChanged.default_message, code="stale")
        return cleaned

    def clean_seen_version(self) -> datetime:
        """The version the page was drawn from, as the service compares it."""
        try:
            return parse_aware_datetime(self.cleaned_data["seen_version"])
        except ValidationError:
            raise ValidationError("Reload the page, then edit again.") from None

    def attendee_changes(self) -> dict[str, str]:
        """The fields changed, as ``booking_attendee_update`` takes them (name=, email=, …)."""
        return {
            field.removeprefix("attendee_"): self.cleaned_data[field]
            for field in self.changed_data
            if field in ATTENDEE_FIELDS and field in self.cleaned_data
        }


def _reason_field() -> forms.CharField:
    """The optional reason a cancel or a reschedule records, as long as the API allows."""
    return forms.CharField(
        label="Reason",
        required=False,
        max_length=REASON_MAX,
        validators=[validate_multiline_text],  # as the API's: tab and line breaks, no other
        widget=forms.Textarea(attrs={"rows": 2, "cols": 40}),
    )


class BookingCancelForm(forms.Form):
    cancelled_by = forms.ChoiceField(
        label="Cancelled by",
        choices=[
            (Booking.CancelledBy.HOST, "The host"),
            (Booking.CancelledBy.ATTENDEE, "The attendee"),
        ],
        initial=Booking.CancelledBy.HOST,
    )
    reason = _reason_field()

    def service_kwargs(self) -> dict:
        return {
            "cancelled_by": self.cleaned_data["cancelled_by"],
            "reason": self.cleaned_data["reason"] or None,
        }


# "2026-12-01 15:00" (UTC, as the page shows times), or any RFC 3339 time with an offset.
_UTC_MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}$", re.ASCII)


class BookingRescheduleForm(forms.Form):
    start_time = forms.CharField(
        label="New start (UTC)",
        max_length=40,
        widget=forms.TextInput(attrs={"placeholder": "YYYY-MM-DD HH:MM", "size": 18}),
    )
    reason = _reason_field()

    def clean_start_time(self) -> datetime:
        value = self.cleaned_data["start_time"].strip()
        if _UTC_MINUTE.match(value):
            try:
                return datetime.fromisoformat(value).replace(tzinfo=UTC)
            except ValueError:
                raise ValidationError("Not a real date and time.") from None
        try:
            return parse_aware_datetime(value)
        except ValidationError:
            raise ValidationError(
                "Write the new start in UTC as YYYY-MM-DD HH:MM (or with an offset)."
            ) from None

    def service_kwargs(self) -> dict:
        return {
            "start_time": self.cleaned_data["start_time"],
            "reason": self.cleaned_data["reason"] or None,
        }


# The services name fields as the API does; the page calls them what its forms call them.
_API_FIELDS = {"requested_time": "New start (UTC)", "event_type_id": "Event type"}


def error_text(exc: BookingsError) -> str:
    """A service's refusal as one line: its message, and for bad input what was wrong."""
    if not isinstance(exc, ValidationFailed):
        return exc.message
    problems = [
        f"{_API_FIELDS.get(field, field)}: {' '.join(str(m) for m in messages)}"
        for field, messages in exc.details.items()
    ]
    return " ".join([exc.message, *problems])


def form_errors(form: forms.Form) -> str:
    """A form's errors as one line for a message: "New start (UTC): Not a real date…"."""
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else None
        parts.append(f"{label}: {' '.join(errors)}" if label else " ".join(errors))
    return " ".join(parts)
