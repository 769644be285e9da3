"""Shapes of the API: output serializers for resources and envelopes, input serializers."""

import copy
from collections.abc import Callable, Mapping
from datetime import UTC

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from .errors import FieldNotUpdatable
from .fields import (
    AwareDateTimeField,
    EmailAddressField,
    JSONObjectField,
    PhoneField,
    PrefixedIdField,
    TextField,
    TimezoneField,
)
from .models import Booking, BookingHistory, EventType, TeamMember
from .selectors import event_type_for_booking
from .services import Attendee


class DeclaredOutputSerializer(serializers.Serializer):
    """Writes its declared fields out directly: the declaration is the one description of the
    shape, for the OpenAPI schema and for the response alike.

    DRF's field-by-field path costs several times more for a page of 100 bookings; this reads
    each declared field's source once. Plain fields are read as attributes; nested serializers
    and method fields are called as DRF would. A time is left a datetime, in UTC, for the JSON
    renderer (``bookings_project.api.renderers``) to write: the same text DRF's field gives,
    at a tenth of ``isoformat()``'s cost (a fifth of a list page's CPU went to it). The fields
    are compiled into one render function per class, not per request: a subclass's fields must
    not depend on its context or instance (none here do).
    """

    @classmethod
    def _compiled_render(cls, instance) -> Callable:
        render = cls.__dict__.get("_render")
        if render is None:
            render = cls._render = instance._build_render()
        return render

    def _build_render(self) -> Callable:
        """A function of (serializer, object) returning the dict, written out as Python source
        from the declared fields (as dataclasses writes its methods): one dict display, each
        field an attribute read, a time in UTC, a method or a nested serializer's call."""
        namespace: dict[str, object] = {"UTC": UTC}
        items = []
        for n, (name, field) in enumerate(self.fields.items()):
            attribute = field.source_attrs[0] if len(field.source_attrs) == 1 else None
            if isinstance(field, serializers.SerializerMethodField):
                namespace[f"method{n}"] = getattr(type(self), field.method_name)
                value = f"method{n}(self, obj)"
            elif isinstance(field, DeclaredOutputSerializer) and field.source == "*":
                namespace[f"render{n}"] = field._compiled_render(field)
                namespace[f"nested{n}"] = field
                value = f"render{n}(nested{n}, obj)"
            elif (
                isinstance(field, serializers.BaseSerializer)
                or attribute is None
                or not attribute.isidentifier()
            ):
                namespace[f"field{n}"] = field
                value = f"field{n}.to_representation(field{n}.get_attribute(obj))"
            elif isinstance(field, serializers.DateTimeField | AwareDateTimeField):
                value = (
                    f"(v if (v := obj.{attribute}) is None or v.tzinfo is UTC"
                    " else v.astimezone(UTC))"
                )
            else:
                value = f"obj.{attribute}"
            items.append(f"{name!r}: {value}")
        source = "def render(self, obj):\n    return {" + ", ".join(items) + "}\n"
        exec(source, namespace)  # noqa: S102 (source made above from the declared fields)
        return namespace["render"]

    def to_representation(self, instance) -> dict:
        return self._compiled_render(self)(self, instance)

    @classmethod
    def render_one(cls, instance) -> dict:
        """``cls(instance).data`` as a plain dict, without a serializer per call (DRF's
        ``Serializer.__init__`` costs a read more than the rendering itself)."""
        writer = cls.__dict__.get("_writer")
        if writer is None:
            writer = cls._writer = cls()  # stateless, as the class docstring requires
        return cls._compiled_render(writer)(writer, instance)

    @classmethod
    def render_many(cls, instances) -> list[dict]:
        """``cls(instances, many=True).data`` as a plain list."""
        return [cls.render_one(instance) for instance in instances]


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
        return CancellationSerializer.render_one(booking)


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
        return event_type.host_ids  # set by the selectors, in one query for a whole list


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


class ActorSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=BookingHistory.ActorType.choices)
    id = serializers.CharField(
        allow_null=True, help_text="The API key or staff user; null for the system."
    )


class HistoryEntrySerializer(DeclaredOutputSerializer):
    """One change to a booking."""

    at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=BookingHistory.Action.choices)
    from_status = serializers.SerializerMethodField()
    to_status = serializers.ChoiceField(choices=Booking.Status.choices)
    actor = serializers.SerializerMethodField()
    changes = serializers.DictField(
        child=serializers.ListField(min_length=2, max_length=2),
        help_text="Each changed field: [old, new].",
    )

    @extend_schema_field(serializers.ChoiceField(choices=Booking.Status.choices, allow_null=True))
    def get_from_status(self, entry) -> str | None:
        return entry.from_status or None

    @extend_schema_field(ActorSerializer)
    def get_actor(self, entry) -> dict:
        return {"type": entry.actor_type, "id": entry.actor_id or None}


@extend_schema_serializer(many=False)  # an envelope around the list
class HistoryEnvelope(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    history = HistoryEntrySerializer(many=True)


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

    def get_fields(self) -> dict:
        # DRF deep-copies every declared field for each instance, which runs each field's
        # __init__ again: a tenth of a create's CPU. A plain field keeps nothing of a request
        # (binding sets its name and parent on the copy; its validators are only read), so a
        # shallow copy does. A nested serializer, or a field with a child bound to it, is
        # deep-copied as DRF does.
        return {
            name: copy.deepcopy(field)
            if isinstance(field, serializers.BaseSerializer) or hasattr(field, "child")
            else copy.copy(field)
            for name, field in self._declared_fields.items()
        }

    def is_valid(self, *, raise_exception=False):
        try:
            return super().is_valid(raise_exception=raise_exception)
        finally:
            _fields_unbound(self)

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def rendered(serializer: serializers.BaseSerializer) -> list | dict:
    """An output serializer's ``data`` as a plain list or dict, the serializer unbound after
    (``_fields_unbound``)."""
    data = serializer.data
    plain = list(data) if isinstance(data, list) else dict(data)
    _fields_unbound(serializer)
    return plain


def _fields_unbound(field: serializers.Field) -> None:
    """Drops the links by which a used serializer and its bound fields name each other: each
    bound field names its serializer as its parent, and the serializer keeps them; a list's
    child (``many=True``, ``ListField``, ``DictField``) names the list. Reference cycles, one set
    per request, that only the garbage collector frees (see ``bookings_project.api.wsgi``).
    What validation found is kept (``validated_data``, ``errors``); the fields are bound again
    if anything asks for them."""
    child = getattr(field, "child", None)
    if child is not None:
        child.__dict__.pop("parent", None)
        _fields_unbound(child)
    for bound in (field.__dict__.pop("fields", None) or {}).values():
        _fields_unbound(bound)


class AttendeeInputSerializer(StrictSerializer):
    name = TextField(max_length=200)
    email = EmailAddressField()
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
        looked_up = self.context.get("event_types", {})  # by ``kwargs_for``'s first pass
        if value in looked_up:
            event_type = looked_up[value]
        else:
            event_type = event_type_for_booking(team=self.context["team"], event_type_id=value)
        if event_type is None:
            raise serializers.ValidationError("Unknown event type.")
        return event_type

    @classmethod
    def kwargs_for(cls, payload, *, team) -> dict:
        """``service_kwargs`` of a valid body, or the serializer's ``ValidationError``.

        DRF's serializer copies and binds its fields for each request and collects every
        field's errors: a tenth of a create's CPU. A body with nothing to report runs each
        declared field's own ``run_validation`` instead, the steps DRF would run for it; at
        the first doubt (any error, anything unusual) the serializer validates the body as
        always and explains. tests/bookings/test_create_kwargs.py checks, with hypothesis,
        that whatever the first pass accepts the serializer accepts with the same result.
        """
        looked_up: dict = {}
        values = _plainly_valid(payload, cls._declared_fields)
        if values is not None:
            event_type_id = values["event_type_id"]
            event_type = event_type_for_booking(team=team, event_type_id=event_type_id)
            if event_type is not None:
                return _create_kwargs({**values, "event_type_id": event_type})
            looked_up[event_type_id] = None  # the serializer says so, without asking again
        serializer = cls(data=payload, context={"team": team, "event_types": looked_up})
        serializer.is_valid(raise_exception=True)
        return serializer.service_kwargs()

    def service_kwargs(self) -> dict:
        """The validated request as the arguments of ``services.booking_create``."""
        return _create_kwargs(self.validated_data)


def _create_kwargs(data: Mapping) -> dict:
    """A create's validated body (``event_type_id`` its EventType) as the service's arguments."""
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


def _plainly_valid(data, fields: Mapping) -> dict | None:
    """``data`` validated field by field with the declared (unbound) fields, nested
    serializers' fields included; None for anything the serializer itself must look at: an
    unknown or missing field, a field's error, a nested serializer with validate methods. The
    top serializer's own validate methods do not run here: the caller does what they would."""
    if type(data) is not dict or not data.keys() <= fields.keys():
        return None
    values = {}
    for name, field in fields.items():
        if name not in data:
            if field.required:
                return None
            continue
        if isinstance(field, serializers.BaseSerializer):
            if (
                field.validators
                or type(field).validate is not serializers.Serializer.validate
                or any(hasattr(field, f"validate_{nested}") for nested in field._declared_fields)
            ):
                return None  # rules of its own: the serializer runs them
            nested = _plainly_valid(data[name], field._declared_fields)
            if nested is None:
                return None
            values[name] = nested
            continue
        try:
            values[name] = field.run_validation(data[name])
        except (serializers.ValidationError, DjangoValidationError):
            return None
    return values


class EmptyBodySerializer(StrictSerializer):
    """No fields: the body is empty or ``{}``."""


def reason_field() -> TextField:
    """Why a booking was cancelled or moved: free text, line breaks allowed, optional."""
    return TextField(
        multiline=True,
        max_length=10_000,
        allow_null=True,
        allow_blank=True,
        required=False,
        default=None,
    )


class CancelSerializer(StrictSerializer):
    cancelled_by = serializers.ChoiceField(
        choices=Booking.CancelledBy.choices, default=Booking.CancelledBy.API
    )
    reason = reason_field()


class RescheduleSerializer(StrictSerializer):
    requested_time = AwareDateTimeField(help_text="The new start time, with an offset.")
    reason = reason_field()


class AttendeeUpdateSerializer(AttendeeInputSerializer):
    """Any of the attendee's fields; the phone and time zone may be null to clear them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


#: What a PATCH may name: the attendee. Anything else is a scheduling field or unknown.
UPDATABLE_FIELDS = frozenset({"attendee"})


class BookingUpdateSerializer(StrictSerializer):
    """PATCH: the attendee's details only. Any other top-level field is
    ``field_not_updatable``, listed in ``details.fields``."""

    attendee = AttendeeUpdateSerializer(required=False)  # {}: a PATCH that changes nothing

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            others = sorted(set(data) - UPDATABLE_FIELDS)
            if others:
                raise FieldNotUpdatable(
                    f"Only the attendee's details can be changed, not: {', '.join(others)}.",
                    details={"fields": others},
                )
        return super().to_internal_value(data)

    def service_kwargs(self) -> dict:
        """Only the fields sent; a null or blank phone or time zone clears it ("")."""
        attendee = self.validated_data.get("attendee", {})
        return {name: value or "" for name, value in attendee.items()}
