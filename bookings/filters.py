"""Query strings of the lists, validated at the API edge into the selectors' typed arguments.

A bad value is a 400 naming the parameter, never silently ignored; so are an unknown
parameter and a repeated one. The values are parsed by the same fields as request bodies.
"""

from collections.abc import Iterable, Mapping
from functools import cache

from rest_framework import serializers

from .errors import ValidationFailed
from .fields import DateOrTimeField, PrefixedIdField, StatusListField


class BookingListQuery(serializers.Serializer):
    """``GET /v1/bookings`` filters → keyword arguments of ``selectors.booking_list``."""

    status = StatusListField(required=False, help_text="One status, or several comma-separated.")
    event_type_id = PrefixedIdField(prefix="evt", required=False)
    assigned_to_id = PrefixedIdField(prefix="mem", required=False)
    attendee_email = serializers.EmailField(required=False, help_text="Case-insensitive.")
    start_date = DateOrTimeField(
        bound="start",
        required=False,
        help_text="ISO 8601 date or time with offset: start_time >= start_date.",
    )
    end_date = DateOrTimeField(
        bound="end",
        required=False,
        help_text="ISO 8601 date or time with offset: start_time < end_date "
        "(a date: the whole UTC day).",
    )

    # query parameter → selector argument
    SELECTOR_ARGUMENTS = {
        "status": "statuses",
        "event_type_id": "event_type_id",
        "assigned_to_id": "assigned_to_id",
        "attendee_email": "attendee_email",
        "start_date": "start_from",
        "end_date": "start_before",
    }

    def validate_attendee_email(self, value: str) -> str:
        return value.lower()

    def validate(self, data):
        start, end = data.get("start_date"), data.get("end_date")
        if start is not None and end is not None and end <= start:
            raise serializers.ValidationError({"end_date": "end_date must be after start_date."})
        return data

    def selector_kwargs(self) -> dict:
        return {self.SELECTOR_ARGUMENTS[name]: value for name, value in self.validated_data.items()}


class MemberListQuery(serializers.Serializer):
    """``GET /v1/team/members`` → keyword arguments of ``selectors.member_list``."""

    is_active = serializers.ChoiceField(
        choices=["true", "false"],
        required=False,
        error_messages={"invalid_choice": "Must be true or false."},
    )

    def selector_kwargs(self) -> dict:
        value = self.validated_data.get("is_active")
        return {} if value is None else {"is_active": value == "true"}


def query_validate(
    query: Mapping[str, list[str]],
    serializer_class: type[serializers.Serializer] | None = None,
    *,
    also_allowed: Iterable[str] = (),
    extra_errors: Mapping[str, list[str]] | None = None,
) -> dict:
    """Validate a query string (name → its values) and return the selector's arguments.

    Every problem is reported at once in one ``ValidationFailed``: unknown or repeated
    parameters, bad values, and ``extra_errors`` (the paginator's, for ``limit``/``cursor``).
    """
    fields, any_required = _query_fields(serializer_class) if serializer_class else ((), False)
    allowed = set(fields) | set(also_allowed)
    errors: dict[str, list[str]] = {}
    for name, values in query.items():
        if name not in allowed:
            errors[name] = ["Unknown parameter."]
        elif len(values) > 1:
            errors[name] = [
                "Give this parameter once (several statuses go comma-separated)."
                if name == "status"
                else "Give this parameter once."
            ]
    single = {name: values[-1] for name, values in query.items() if name in fields}
    kwargs = {}
    # No parameter of the serializer's (the usual list request): nothing to validate, and
    # building one costs a deep copy of its fields.
    if serializer_class is not None and (single or any_required):
        serializer = serializer_class(data=single)
        if serializer.is_valid():
            kwargs = serializer.selector_kwargs()
        else:
            for name, messages in serializer.errors.items():
                errors.setdefault(name, [str(message) for message in messages])
    for name, messages in (extra_errors or {}).items():
        errors.setdefault(name, list(messages))
    if errors:
        raise ValidationFailed(errors)
    return kwargs


@cache
def _query_fields(serializer_class: type[serializers.Serializer]) -> tuple[frozenset, bool]:
    """The parameters a query serializer takes, and whether it requires any."""
    fields = serializer_class().fields
    return frozenset(fields), any(field.required for field in fields.values())
