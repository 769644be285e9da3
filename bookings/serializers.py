"""Shapes of the API: output serializers for resources and envelopes, input serializers."""

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from .fields import (
    AwareDateTimeField,
    JSONObjectField,
    PhoneField,
    PrefixedIdField,
    TimezoneField,
)
from .models import Booking, EventType, TeamMember
from .services import Attendee


def utc_iso(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, as DRF renders it (microseconds only when there are some)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class DeclaredOutputSerializer(serializers.Serializer):
    """Writes its declared fields out directly: the declaration is the one description of the
    shape, for the OpenAPI schema and for the response alike.

    DRF's field-by-field path costs several times more for a page of 100 bookings; this reads
    each declared field's source once and formats times itself. Plain fields are read as
    attributes; nested serializers and method fields are called as DRF would.
    """

    @property
    def _writers(self) -> list[tuple[str, Callable]]:
        writers = self.__dict__.get("_compiled_writers")
        if writers is None:
            writers = [(name, self._writer(field)) for name, field in self.fields.items()]
            self.__dict__["_compiled_writers"] = writers
        return writers

    def _writer(self, field) -> Callable:
        if isinstance(field, serializers.SerializerMethodField):
            return getattr(self, field.method_name)
        if isinstance(field, serializers.BaseSerializer):
            return lambda obj: field.to_representation(field.get_attribute(obj))
        attribute = field.source_attrs[0] if len(field.source_attrs) == 1 else None
        if attribute is None:
            return lambda obj: field.to_representation(field.get_attribute(obj))
        if isinstance(field, serializers.DateTimeField | AwareDateTimeField):
            return lambda obj: None if (v := getattr(obj, attribute)) is None else utc_iso(v)
        return lambda obj: getattr(obj, attribute)

    def to_representation(self, instance) -> dict:
        return {name: write(instance) for name, write in self._writers}


class AttendeeSerializer(DeclaredOutputSerializer):
    """Who the booking is for."""

    name = serializers.CharField(source="attendee_name")
    email = serializers.EmailField(source="attendee_email")
    phone = serializers.SerializerMethodField()
    timezone = serializers.SerializerMethodField()

    def get_phone(self, booking) -> str | None:
        return booking.attendee_phone or None

    def get_timezone(self, booking) -> str | None:
        return booking.attendee_timezone or None


class CancellationSerializer(DeclaredOutputSerializer):
    """Who cancelled, why and when; null until the booking is cancelled."""

    cancelled_by = serializers.ChoiceField(choices=Booking.CancelledBy.choices)
    reason = serializers.CharField(source="cancellation_reason", allow_null=True)
    cancelled_at = serializers.DateTimeField()


class BookingSerializer(DeclaredOutputSerializer, serializers.ModelSerializer):
    """A booking: one attendee's slot with one host."""

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


@extend_schema_serializer(many=False)  # an envelope around the list
class BookingListEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    bookings = BookingSerializer(many=True)
    pagination = PaginationSerializer()


class EventTypeEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    event_type = EventTypeSerializer()


@extend_schema_serializer(many=False)  # an envelope around the list
class EventTypeListEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    event_types = EventTypeSerializer(many=True)


class MemberEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    member = TeamMemberSerializer()


@extend_schema_serializer(many=False)  # an envelope around the list
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


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, instead of silently dropping them."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class AttendeeInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=254)
    phone = PhoneField()
    timezone = TimezoneField()


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
