"""Shapes of the API: output serializers for resources and envelopes, input serializers."""

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .ids import is_valid_id
from .models import Booking, EventType, TeamMember
from .services import Attendee
from .validators import normalize_phone, validate_timezone


class AttendeeSerializer(serializers.Serializer):
    name = serializers.CharField(source="attendee_name")
    email = serializers.EmailField(source="attendee_email")
    phone = serializers.SerializerMethodField()
    timezone = serializers.SerializerMethodField()

    def get_phone(self, booking) -> str | None:
        return booking.attendee_phone or None

    def get_timezone(self, booking) -> str | None:
        return booking.attendee_timezone or None


class CancellationSerializer(serializers.Serializer):
    cancelled_by = serializers.ChoiceField(choices=Booking.CancelledBy.choices)
    reason = serializers.CharField(source="cancellation_reason", allow_null=True)
    cancelled_at = serializers.DateTimeField()


class BookingSerializer(serializers.ModelSerializer):
    event_type_id = serializers.CharField()
    assigned_to_id = serializers.CharField(allow_null=True)
    attendee = AttendeeSerializer(source="*")
    rescheduled_from_id = serializers.CharField(allow_null=True)
    rescheduled_to_id = serializers.CharField(allow_null=True)
    cancellation = serializers.SerializerMethodField()

    class Meta:
        model = Booking
        fields = [
            "id",
            "status",
            "event_type_id",
            "assigned_to_id",
            "start_time",
            "end_time",
            "attendee",
            "custom_fields",
            "metadata",
            "rescheduled_from_id",
            "rescheduled_to_id",
            "cancellation",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(CancellationSerializer(allow_null=True))
    def get_cancellation(self, booking) -> dict | None:
        if booking.cancelled_at is None:
            return None
        return CancellationSerializer(booking).data

    def to_representation(self, booking) -> dict:
        # The fields above document the shape (and the schema); this writes it out directly,
        # several times faster than field-by-field for a page of 100. A test holds the two
        # to the same output.
        return {
            "id": booking.id,
            "status": booking.status,
            "event_type_id": booking.event_type_id,
            "assigned_to_id": booking.assigned_to_id,
            "start_time": utc_iso(booking.start_time),
            "end_time": utc_iso(booking.end_time),
            "attendee": {
                "name": booking.attendee_name,
                "email": booking.attendee_email,
                "phone": booking.attendee_phone or None,
                "timezone": booking.attendee_timezone or None,
            },
            "custom_fields": booking.custom_fields,
            "metadata": booking.metadata,
            "rescheduled_from_id": booking.rescheduled_from_id,
            "rescheduled_to_id": booking.rescheduled_to_id,
            "cancellation": None
            if booking.cancelled_at is None
            else {
                "cancelled_by": booking.cancelled_by,
                "reason": booking.cancellation_reason,
                "cancelled_at": utc_iso(booking.cancelled_at),
            },
            "created_at": utc_iso(booking.created_at),
            "updated_at": utc_iso(booking.updated_at),
        }


def utc_iso(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, as DRF renders it (microseconds only when there are some)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class EventTypeSerializer(serializers.ModelSerializer):
    host_ids = serializers.SerializerMethodField()

    class Meta:
        model = EventType
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "duration",
            "buffer_before",
            "buffer_after",
            "minimum_booking_notice",
            "scheduling_type",
            "requires_confirmation",
            "host_ids",
            "is_active",
        ]
        read_only_fields = fields

    def get_host_ids(self, event_type) -> list[str]:
        # Uses the prefetched links; the selector guarantees they are prefetched.
        return [link.member_id for link in event_type.host_links.all()]


class TeamMemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = TeamMember
        fields = ["id", "name", "email", "timezone", "is_active"]
        read_only_fields = fields


# --- Envelopes (documented in the schema) ----------------------------------------------------


class PaginationSerializer(serializers.Serializer):
    next_cursor = serializers.CharField(allow_null=True)
    has_more = serializers.BooleanField()


class BookingEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    booking = BookingSerializer()


class BookingListEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    bookings = BookingSerializer(many=True)
    pagination = PaginationSerializer()


class EventTypeEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    event_type = EventTypeSerializer()


class EventTypeListEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    event_types = EventTypeSerializer(many=True)


class MemberEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    member = TeamMemberSerializer()


class MemberListEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    members = TeamMemberSerializer(many=True)


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=False)
    error = ErrorBodySerializer()


# --- Input --------------------------------------------------------------------------------

MAX_JSON_OBJECT_BYTES = 16 * 1024


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, instead of silently dropping them."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeField(serializers.Field):
    """An RFC 3339 time that carries an offset; returned in UTC. A naive time is refused."""

    default_error_messages = {
        "invalid": "Expected an ISO 8601 time with an offset, like 2026-12-01T15:00:00Z.",
        "naive": "The time must carry an offset ('Z' or '+02:00').",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            value = parse_datetime(data.strip())
        except ValueError:
            value = None
        if value is None:
            self.fail("invalid")
        if value.tzinfo is None:
            self.fail("naive")
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
            self.fail("invalid")

    def to_representation(self, value):
        return serializers.DateTimeField().to_representation(value)


class PrefixedIdField(serializers.CharField):
    def __init__(self, *, prefix: str, **kwargs):
        self.prefix = prefix
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not is_valid_id(value, self.prefix):
            raise serializers.ValidationError(f"Not a valid id: expected '{self.prefix}_…'.")
        return value


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


class AttendeeInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=254)
    phone = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=40)
    timezone = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=64
    )

    def validate_phone(self, value):
        if not value:
            return ""
        try:
            return normalize_phone(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def validate_timezone(self, value):
        if not value:
            return ""
        try:
            validate_timezone(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value


class BookingCreateSerializer(StrictSerializer):
    event_type_id = PrefixedIdField(prefix="evt")
    requested_time = AwareDateTimeField()
    attendee = AttendeeInputSerializer()
    assigned_to_id = PrefixedIdField(prefix="mem", required=False, allow_null=True)
    custom_fields = JSONObjectField(required=False)
    metadata = JSONObjectField(required=False)

    def validate_event_type_id(self, value):
        try:
            return EventType.objects.get(team=self.context["team"], pk=value)
        except EventType.DoesNotExist:
            raise serializers.ValidationError("Unknown event type.") from None

    def service_kwargs(self) -> dict:
        """The validated request as the arguments of ``services.booking_create``."""
        data = self.validated_data
        attendee = data["attendee"]
        return {
            "event_type": data["event_type_id"],
            "start_time": data["requested_time"],
            "attendee": Attendee(
                name=attendee["name"],
                email=attendee["email"],
                phone=attendee.get("phone") or "",
                timezone=attendee.get("timezone") or "",
            ),
            "assigned_to_id": data.get("assigned_to_id"),
            "custom_fields": data.get("custom_fields"),
            "metadata": data.get("metadata"),
        }
