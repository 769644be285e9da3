"""Thin views: validate, call a selector or service, serialize into the envelope."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from bookings_project.api.renderers import Utf8JSONRenderer
from bookings_project.api.views import ApiView, ok

from . import errors, selectors, services
from .idempotency import Result, idempotency_key_parse, idempotent_call
from .models import ApiKey, BookingHistory
from .schema import DATE_OR_TIME_SCHEMA, STATUS_LIST_SCHEMA, id_schema
from .serializers import (
    BookingCreateSerializer,
    BookingEnvelope,
    BookingListEnvelope,
    BookingSerializer,
    ErrorEnvelope,
    EventTypeEnvelope,
    EventTypeListEnvelope,
    EventTypeSerializer,
    MemberEnvelope,
    MemberListEnvelope,
    TeamMemberSerializer,
)
from .services import Actor

Scope = ApiKey.Scope

# The one place a domain error meets its HTTP status (registered with the exception handler
# when the app is ready). Its code, message and details come from the error itself.
ERROR_STATUSES: dict[type[errors.BookingsError], int] = {
    errors.BookingsError: 400,
    errors.ValidationFailed: 400,
    errors.FieldNotUpdatable: 400,
    errors.InvalidCursor: 400,
    errors.InvalidIdempotencyKey: 400,
    errors.NotFound: 404,
    errors.InvalidTransition: 409,
    errors.BookingNotStarted: 409,
    errors.SlotUnavailable: 409,
    errors.IdempotencyRequestInProgress: 409,
    errors.IdempotencyKeyReused: 422,
}

_AUTH_ERRORS = {401: ErrorEnvelope, 403: ErrorEnvelope, 429: ErrorEnvelope}
_GET_ERRORS = {**_AUTH_ERRORS, 404: ErrorEnvelope}
_LIST_ERRORS = {**_AUTH_ERRORS, 400: ErrorEnvelope}


def _query_params(request) -> dict[str, list[str]]:
    return {name: request.query_params.getlist(name) for name in request.query_params}


def _created(booking) -> Result:
    """A 201 with the booking, rendered once: these bytes are also what a replay returns."""
    body = Utf8JSONRenderer().render({"success": True, "booking": BookingSerializer(booking).data})
    return Result(
        status=201,
        body=body,
        headers={"Location": f"/v1/bookings/{booking.id}"},
        booking_id=booking.id,
    )


def _actor(request) -> Actor:
    return Actor(BookingHistory.ActorType.API_KEY, request.auth.id)


_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Retry safely: the same key and body replay the first response (24 hours).",
)


class BookingListApi(ApiView):
    required_scopes = {"GET": Scope.BOOKINGS_READ, "POST": Scope.BOOKINGS_CREATE}

    @extend_schema(
        operation_id="bookings_create",
        summary="Create a booking",
        request=BookingCreateSerializer,
        parameters=[_IDEMPOTENCY_HEADER],
        responses={
            201: BookingEnvelope,
            200: OpenApiResponse(BookingEnvelope, description="An idempotent replay."),
            **_LIST_ERRORS,
            409: ErrorEnvelope,
            413: ErrorEnvelope,
            415: ErrorEnvelope,
            422: ErrorEnvelope,
        },
    )
    def post(self, request):
        team = request.user.team
        key = idempotency_key_parse(request.headers.get("Idempotency-Key"))
        payload = request.data

        def prepare() -> dict:
            serializer = BookingCreateSerializer(data=payload, context={"team": team})
            serializer.is_valid(raise_exception=True)
            return serializer.service_kwargs()

        def produce(kwargs: dict) -> Result:
            booking = services.booking_create(team=team, actor=_actor(request), **kwargs)
            return _created(booking)

        result = idempotent_call(
            team=team,
            key=key,
            endpoint="POST /v1/bookings",
            payload=payload,
            prepare=prepare,
            produce=produce,
        )
        return HttpResponse(
            result.body,
            status=result.status,
            content_type=Utf8JSONRenderer.media_type + "; charset=utf-8",
            headers=result.headers,
        )

    @extend_schema(
        operation_id="bookings_list",
        summary="List bookings",
        parameters=[
            OpenApiParameter(
                "status", STATUS_LIST_SCHEMA, description="One status, or several comma-separated."
            ),
            OpenApiParameter("event_type_id", id_schema("evt")),
            OpenApiParameter("assigned_to_id", id_schema("mem")),
            OpenApiParameter(
                "attendee_email",
                {"type": "string", "format": "email"},
                description="Case-insensitive.",
            ),
            OpenApiParameter(
                "start_date",
                DATE_OR_TIME_SCHEMA,
                description="ISO 8601 date or time with offset: start_time >= start_date.",
            ),
            OpenApiParameter(
                "end_date",
                DATE_OR_TIME_SCHEMA,
                description="ISO 8601 date or time with offset: start_time < end_date "
                "(a date: the whole UTC day).",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
                description="Page size.",
            ),
            OpenApiParameter(
                "cursor",
                {"type": "string", "minLength": 1},
                description="pagination.next_cursor of the previous page.",
            ),
        ],
        responses={200: BookingListEnvelope, **_LIST_ERRORS},
    )
    def get(self, request):
        page = selectors.booking_list(team=request.user.team, params=_query_params(request))
        return ok(
            bookings=BookingSerializer(page.items, many=True).data,
            pagination={"next_cursor": page.next_cursor, "has_more": page.has_more},
        )


class BookingDetailApi(ApiView):
    required_scopes = {"GET": Scope.BOOKINGS_READ}

    @extend_schema(
        operation_id="bookings_retrieve",
        parameters=[OpenApiParameter("booking_id", id_schema("bkg"), OpenApiParameter.PATH)],
        responses={200: BookingEnvelope, **_GET_ERRORS},
    )
    def get(self, request, booking_id: str):
        booking = selectors.booking_get(team=request.user.team, booking_id=booking_id)
        return ok(booking=BookingSerializer(booking).data)


class EventTypeListApi(ApiView):
    required_scopes = {"GET": Scope.EVENT_TYPES_READ}

    @extend_schema(
        operation_id="event_types_list", responses={200: EventTypeListEnvelope, **_LIST_ERRORS}
    )
    def get(self, request):
        event_types = selectors.event_type_list(
            team=request.user.team, params=_query_params(request)
        )
        return ok(event_types=EventTypeSerializer(event_types, many=True).data)


class EventTypeDetailApi(ApiView):
    required_scopes = {"GET": Scope.EVENT_TYPES_READ}

    @extend_schema(
        operation_id="event_types_retrieve",
        parameters=[OpenApiParameter("event_type_id", id_schema("evt"), OpenApiParameter.PATH)],
        responses={200: EventTypeEnvelope, **_GET_ERRORS},
    )
    def get(self, request, event_type_id: str):
        event_type = selectors.event_type_get(team=request.user.team, event_type_id=event_type_id)
        return ok(event_type=EventTypeSerializer(event_type).data)


class MemberListApi(ApiView):
    required_scopes = {"GET": Scope.TEAM_READ}

    @extend_schema(
        operation_id="team_members_list",
        parameters=[OpenApiParameter("is_active", {"type": "string", "enum": ["true", "false"]})],
        responses={200: MemberListEnvelope, **_LIST_ERRORS},
    )
    def get(self, request):
        members = selectors.member_list(team=request.user.team, params=_query_params(request))
        return ok(members=TeamMemberSerializer(members, many=True).data)


class MemberDetailApi(ApiView):
    required_scopes = {"GET": Scope.TEAM_READ}

    @extend_schema(
        operation_id="team_members_retrieve",
        parameters=[OpenApiParameter("member_id", id_schema("mem"), OpenApiParameter.PATH)],
        responses={200: MemberEnvelope, **_GET_ERRORS},
    )
    def get(self, request, member_id: str):
        member = selectors.member_get(team=request.user.team, member_id=member_id)
        return ok(member=TeamMemberSerializer(member).data)
