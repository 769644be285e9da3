"""Filters of ``GET /v1/bookings``. Every bad value is a 400, never silently ignored."""

import re
from datetime import UTC, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models.functions import Lower
from django.utils.dateparse import parse_date, parse_datetime

from .ids import is_valid_id
from .models import Booking


class _StrictField(forms.Field):
    """A field that refuses an empty value: ``?status=`` is a mistake, not "no filter"."""

    def to_python(self, value):
        if value in (None,):
            return None
        if not isinstance(value, str) or value.strip() == "":
            raise forms.ValidationError("Must not be empty.", code="empty")
        return self.parse(value.strip())

    def parse(self, value: str):
        raise NotImplementedError


class StatusListField(_StrictField):
    def parse(self, value):
        statuses = [item.strip() for item in value.split(",")]
        unknown = [item for item in statuses if item not in Booking.Status.values]
        if unknown:
            raise forms.ValidationError(
                f"Unknown status {', '.join(map(repr, unknown))}; "
                f"expected one or more of {', '.join(Booking.Status.values)}, comma-separated."
            )
        return sorted(set(statuses))


class PrefixedIdField(_StrictField):
    def __init__(self, *args, prefix: str, **kwargs):
        self.prefix = prefix
        super().__init__(*args, **kwargs)

    def parse(self, value):
        if not is_valid_id(value, self.prefix):
            raise forms.ValidationError(
                f"Not a valid id: expected '{self.prefix}_' and 26 characters."
            )
        return value


class EmailValueField(_StrictField):
    def parse(self, value):
        forms.EmailField().clean(value)
        return value.lower()


# RFC 3339 shapes (``T`` or a space between date and time); the offset is optional here only
# so that a naive time gets its own message.
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$"
)


class DateOrTimeField(_StrictField):
    """An ISO 8601 date, or a time with an offset. A bare date is a whole UTC day.

    ``bound`` says which end of that day a bare date stands for: the start for a lower bound,
    the start of the next day for an exclusive upper bound.
    """

    def __init__(self, *args, bound: str, **kwargs):
        self.bound = bound
        super().__init__(*args, **kwargs)

    def parse(self, value):
        # Shapes are checked first: Python's ``fromisoformat`` (under Django's parsers) also
        # takes ISO week dates and odd digit runs (``1733011200`` is 12 January 1733), and
        # answers a naive midnight for a bare date.
        try:
            day = parse_date(value) if _DATE.match(value) else None
            moment = parse_datetime(value) if _DATETIME.match(value) else None
        except ValueError:
            moment = day = None
        try:
            if moment is not None:
                if moment.tzinfo is None:
                    raise forms.ValidationError("A time must carry an offset ('Z' or '+02:00').")
                return moment.astimezone(UTC)
            if day is None:
                raise forms.ValidationError(
                    "Expected an ISO 8601 date (2026-12-01) or time with offset."
                )
            start = datetime.combine(day, time.min, tzinfo=UTC)
            return start + timedelta(days=1) if self.bound == "end" else start
        except OverflowError:
            raise forms.ValidationError("Out of the supported range of dates.") from None


class _FieldFilter(django_filters.Filter):
    def __init__(self, *args, field_class, field_kwargs=None, **kwargs):
        self.field_class = field_class
        super().__init__(*args, **kwargs)
        self.extra.update(field_kwargs or {})


class BookingFilterForm(forms.Form):
    def clean(self):
        data = super().clean()
        start, end = data.get("start_date"), data.get("end_date")
        if start is not None and end is not None and end <= start:
            self.add_error("end_date", "end_date must be after start_date.")
        return data


class BookingFilter(django_filters.FilterSet):
    status = _FieldFilter(field_name="status", lookup_expr="in", field_class=StatusListField)
    event_type_id = _FieldFilter(
        field_name="event_type_id", field_class=PrefixedIdField, field_kwargs={"prefix": "evt"}
    )
    assigned_to_id = _FieldFilter(
        field_name="assigned_to_id", field_class=PrefixedIdField, field_kwargs={"prefix": "mem"}
    )
    attendee_email = _FieldFilter(method="filter_attendee_email", field_class=EmailValueField)
    start_date = _FieldFilter(
        field_name="start_time",
        lookup_expr="gte",
        field_class=DateOrTimeField,
        field_kwargs={"bound": "start"},
    )
    end_date = _FieldFilter(
        field_name="start_time",
        lookup_expr="lt",
        field_class=DateOrTimeField,
        field_kwargs={"bound": "end"},
    )

    class Meta:
        model = Booking
        fields = []
        form = BookingFilterForm

    def filter_attendee_email(self, queryset, name, value):
        # Matches the expression index on (team, lower(attendee_email), start_time, id).
        return queryset.alias(attendee_email_lower=Lower("attendee_email")).filter(
            attendee_email_lower=value
        )


LIST_PARAMETERS = frozenset(BookingFilter.base_filters) | {"limit", "cursor"}
