"""The API's value fields: one field per rule, for request bodies and query strings alike.

Each field parses with the one function in ``bookings.validators`` that owns its rule (a time
with an offset, an id of ours, a phone number, a time zone), so the body of a create and the
filters of a list accept and refuse exactly the same strings.
"""

import json
from datetime import UTC, datetime, time, timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Booking
from .validators import (
    CONTROL_CHARACTERS,
    CONTROL_CHARACTERS_BUT_LINES,
    control_characters_refused,
    is_iso_date,
    normalize_phone,
    parse_aware_datetime,
    parse_iso_date,
    parse_prefixed_id,
    utc_iso,
    validate_email_address,
    validate_timezone,
)

MAX_JSON_OBJECT_BYTES = 16 * 1024


def _run(parse, value):
    """Call a validator; its Django ValidationError becomes the serializer's."""
    try:
        return parse(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None


@extend_schema_field({"type": "string", "format": "date-time"})
class AwareDateTimeField(serializers.Field):
    """An RFC 3339 time that carries an offset; returned in UTC. A naive time is refused."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(
                "Expected an ISO 8601 time with an offset, like 2026-12-01T15:00:00Z."
            )
        return _run(parse_aware_datetime, data)

    def to_representation(self, value):
        return utc_iso(value)


@extend_schema_field(
    {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
)
class DateOrTimeField(AwareDateTimeField):
    """An ISO 8601 date (a whole UTC day) or a time with an offset.

    ``bound`` says which end of a bare date's day it stands for: the start for a lower bound,
    the start of the next day for an exclusive upper bound.
    """

    def __init__(self, *, bound: str, **kwargs):
        self.bound = bound
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and is_iso_date(data):
            day = _run(parse_iso_date, data)
            start = datetime.combine(day, time.min, tzinfo=UTC)
            try:
                return start + timedelta(days=1) if self.bound == "end" else start
            except OverflowError:
                raise serializers.ValidationError("Out of the supported range of dates.") from None
        return super().to_internal_value(data)


class TextField(serializers.CharField):
    """A JSON string: a number or a boolean is refused, not turned into one (DRF's CharField
    takes ``123`` as ``"123"``), and so are control characters."""

    def __init__(self, *, multiline: bool = False, **kwargs):
        self.multiline = multiline
        #: The refused characters, as a regular expression's character class (also the schema's).
        self.refused_characters = CONTROL_CHARACTERS_BUT_LINES if multiline else CONTROL_CHARACTERS
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if message := control_characters_refused(data, multiline=self.multiline):
            raise serializers.ValidationError(message)
        return super().to_internal_value(data)


class PrefixedIdField(TextField):
    """One of our ids with a given type prefix: ``evt_`` then 26 characters of a ULID."""

    def __init__(self, *, prefix: str, **kwargs):
        self.prefix = prefix
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return _run(lambda text: parse_prefixed_id(text, self.prefix), value)


class PhoneField(TextField):
    """International: ``+`` then 7 to 15 digits; stored as ``+`` and digits. Blank: none."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, allow_blank=True, max_length=40, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return _run(normalize_phone, value) if value else ""


class EmailAddressField(serializers.EmailField):
    """An email address the attendee's emails can be sent to (``validate_email_address``)."""

    def __init__(self, **kwargs):
        super().__init__(max_length=254, **kwargs)
        # In place of DRF's EmailValidator, which validate_email_address runs first: both
        # refused a bad address, and it was explained twice.
        self.validators = [
            validator for validator in self.validators if not isinstance(validator, EmailValidator)
        ] + [validate_email_address]


class TimezoneField(TextField):
    """An IANA time zone name. Blank: none."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, allow_blank=True, max_length=64, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value:
            _run(validate_timezone, value)
        return value or ""


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object (not a list or a scalar) of bounded encoded size."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected a JSON object.")
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_JSON_OBJECT_BYTES:
            raise serializers.ValidationError(
                f"Too large: {size} bytes encoded, at most {MAX_JSON_OBJECT_BYTES}."
            )
        return data


_STATUS = "|".join(Booking.Status.values)


@extend_schema_field({"type": "string", "pattern": f"^({_STATUS})(,({_STATUS}))*$"})
class StatusListField(serializers.CharField):
    """One booking status, or several comma-separated: a sorted list without repeats."""

    def to_internal_value(self, data):
        statuses = [item.strip() for item in super().to_internal_value(data).split(",")]
        unknown = [item for item in statuses if item not in Booking.Status.values]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown status {', '.join(map(repr, unknown))}; "
                f"expected one or more of {', '.join(Booking.Status.values)}, comma-separated."
            )
        return sorted(set(statuses))
