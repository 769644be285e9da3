"""Thin views: validate, call a selector or service, serialize into the envelope."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError

from . import selectors
from .api_base import ApiView, ok
from .models import ApiKey
from .serializers import (
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

Scope = ApiKey.Scope

_AUTH_ERRORS = {401: ErrorEnvelope, 403: ErrorEnvelope, 429: ErrorEnvelope}
_GET_ERRORS = {**_AUTH_ERRORS, 404: ErrorEnvelope}
_LIST_ERRORS = {**_AUTH_ERRORS, 400: ErrorEnvelope}


def _query_params(request) -> dict[str, list[str]]:
    return {name: request.query_params.getlist(name) for name in request.query_params}


def _parse_is_active(params: dict[str, list[str]]) -> bool | None:
    errors = {name: ["Unknown parameter."] for name in params if name != "is_active"}
    raw = params.get("is_active")
    if raw is not None and raw not in (["true"], ["false"]):
        errors["is_active"] = ["Must be true or false."]
    if errors:
        raise ValidationError(errors)
    return None if raw is None else raw == ["true"]


class BookingListApi(ApiView):
    required_scopes = {"GET": Scope.BOOKINGS_READ}

    @extend_schema(
        operation_id="bookings_list",
        summary="List bookings",
        parameters=[
            OpenApiParameter("status", str, description="One status, or several comma-separated."),
            OpenApiParameter("event_type_id", str),
            OpenApiParameter("assigned_to_id", str),
            OpenApiParameter("attendee_email", str, description="Case-insensitive."),
            OpenApiParameter(
                "start_date", str, description="ISO 8601 date or time: start_time >= start_date."
            ),
            OpenApiParameter(
                "end_date",
                str,
                description="ISO 8601 date or time: start_time < end_date (a date: the whole day).",
            ),
            OpenApiParameter("limit", OpenApiTypes.INT, description="1 to 100, default 50."),
            OpenApiParameter("cursor", str, description="pagination.next_cursor of a page."),
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
        operation_id="bookings_retrieve", responses={200: BookingEnvelope, **_GET_ERRORS}
    )
    def get(self, request, booking_id: str):
        booking = selectors.booking_get(team=request.user.team, booking_id=booking_id)
        return ok(booking=BookingSerializer(booking).data)


class EventTypeListApi(ApiView):
    required_scopes = {"GET": Scope.EVENT_TYPES_READ}

    @extend_schema(
        operation_id="event_types_list", responses={200: EventTypeListEnvelope, **_AUTH_ERRORS}
    )
    def get(self, request):
        event_types = selectors.event_type_list(team=request.user.team)
        return ok(event_types=EventTypeSerializer(event_types, many=True).data)


class EventTypeDetailApi(ApiView):
    required_scopes = {"GET": Scope.EVENT_TYPES_READ}

    @extend_schema(
        operation_id="event_types_retrieve", responses={200: EventTypeEnvelope, **_GET_ERRORS}
    )
    def get(self, request, event_type_id: str):
        event_type = selectors.event_type_get(team=request.user.team, event_type_id=event_type_id)
        return ok(event_type=EventTypeSerializer(event_type).data)


class MemberListApi(ApiView):
    required_scopes = {"GET": Scope.TEAM_READ}

    @extend_schema(
        operation_id="team_members_list",
        parameters=[OpenApiParameter("is_active", OpenApiTypes.BOOL, enum=["true", "false"])],
        responses={200: MemberListEnvelope, **_LIST_ERRORS},
    )
    def get(self, request):
        is_active = _parse_is_active(_query_params(request))
        members = selectors.member_list(team=request.user.team, is_active=is_active)
        return ok(members=TeamMemberSerializer(members, many=True).data)


class MemberDetailApi(ApiView):
    required_scopes = {"GET": Scope.TEAM_READ}

    @extend_schema(
        operation_id="team_members_retrieve", responses={200: MemberEnvelope, **_GET_ERRORS}
    )
    def get(self, request, member_id: str):
        member = selectors.member_get(team=request.user.team, member_id=member_id)
        return ok(member=TeamMemberSerializer(member).data)
