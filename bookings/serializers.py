"""Shapes of the API: output serializers for resources and envelopes, input serializers."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Booking, EventType, TeamMember


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
