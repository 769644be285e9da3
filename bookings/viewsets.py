"""Thin viewsets: validate, call a selector or service, serialize into the envelope.

Registered on the router in ``bookings/urls.py``. Each action names the scope it needs in
``required_scopes``; lifecycle transitions join ``BookingViewSet`` as ``@action`` routes.
"""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from bookings_project.api.renderers import JSON_CONTENT_TYPE, Utf8JSONRenderer
from bookings_project.api.views import AcyclicViewMixin, LeanReadMixin, RateLimitedMixin, ok

from . import errors, selectors, services
from .filters import BookingListQuery, MemberListQuery, query_validate
from .idempotency import Result, idempotency_key_parse, idempotent_call, idempotent_insert
from .models import ApiKey, BookingHistory
from .pagination import KeysetCursorPagination
from .schema import id_schema
from .serializers import (
    BookingCreateSerializer,
    BookingEnvelope,
    BookingListEnvelope,
    BookingSerializer,
    BookingUpdateSerializer,
    CancelSerializer,
    EmptyBodySerializer,
    ErrorEnvelope,
    EventTypeEnvelope,
    EventTypeListEnvelope,
    EventTypeSerializer,
    HistoryEntrySerializer,
    HistoryEnvelope,
    MemberEnvelope,
    MemberListEnvelope,
    RescheduleSerializer,
    TeamMemberSerializer,
    rendered,
)
from .services import Actor
from .transitions import ATTENDEE_EDITABLE, TRANSITIONS

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
    errors.BookingChanged: 409,  # the admin's; the API's PATCH names no version
    errors.SlotUnavailable: 409,
    errors.IdempotencyRequestInProgress: 409,
    errors.IdempotencyKeyReused: 422,
}

# 503: the database could not serve the request right now (Retry-After says when to retry).
_AUTH_ERRORS = {401: ErrorEnvelope, 403: ErrorEnvelope, 429: ErrorEnvelope, 503: ErrorEnvelope}
# Any query parameter on a GET of one object is a 400 too.
_GET_ERRORS = {**_AUTH_ERRORS, 400: ErrorEnvelope, 404: ErrorEnvelope}
_LIST_ERRORS = {**_AUTH_ERRORS, 400: ErrorEnvelope}
# A write on one booking: bad body, unknown booking, refused move, body too big or not JSON.
_ACTION_ERRORS = {
    **_GET_ERRORS,
    400: ErrorEnvelope,
    409: ErrorEnvelope,
    413: ErrorEnvelope,
    415: ErrorEnvelope,
}
_BOOKING_ID = OpenApiParameter("booking_id", id_schema("bkg"), OpenApiParameter.PATH)

_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    OpenApiParameter.HEADER,
    description="Retry safely: the same key and body replay the first response (24 hours).",
)


def _query(request) -> dict[str, list[str]]:
    # ``GET``: DRF's request passes it through, and the lean path has Django's. Without a query
    # string there is nothing to parse (the common case: building the QueryDict is not free).
    if not request.META.get("QUERY_STRING"):
        return {}
    return {name: request.GET.getlist(name) for name in request.GET}


def _actor(request) -> Actor:
    return Actor(BookingHistory.ActorType.API_KEY, request.auth.id)


def _created(booking) -> Result:
    """A 201 with the booking, rendered once: these bytes are also what a replay returns."""
    body = Utf8JSONRenderer().render(
        {"success": True, "booking": BookingSerializer.render_one(booking)}
    )
    return Result(
        status=201,
        body=body,
        headers={"Location": f"/v1/bookings/{booking.id}"},
        booking_id=booking.id,
    )


def _transition_schema(name: str, request_serializer=EmptyBodySerializer):
    """The OpenAPI entry of a transition endpoint, described from the transition table."""
    transition = TRANSITIONS[name]
    return extend_schema(
        operation_id=f"bookings_{name}",
        summary=f"{transition.path.capitalize()} a booking",
        description=transition.describe(),
        parameters=[_BOOKING_ID],
        request=request_serializer,
        responses={200: BookingEnvelope, **_ACTION_ERRORS},
    )


def _idempotent(request, endpoint: str, *, prepare, produce, call=idempotent_call) -> HttpResponse:
    """A write that honours ``Idempotency-Key`` (create, reschedule): run it at most once per
    key and send its stored bytes. ``call``: ``idempotent_call``, or ``idempotent_insert`` for
    a producer that writes the key with its own rows (a create)."""
    return _send(
        call(
            team=request.user.team,
            key=idempotency_key_parse(request.headers.get("Idempotency-Key")),
            endpoint=endpoint,
            payload=request.data,
            prepare=prepare,
            produce=produce,
            cached=getattr(request, "cached_replay", None),
        )
    )


def _send(result: Result) -> HttpResponse:
    """The stored bytes exactly as they are (a replay must not be re-rendered)."""
    return HttpResponse(
        result.body, status=result.status, content_type=JSON_CONTENT_TYPE, headers=result.headers
    )


class ApiViewSet(AcyclicViewMixin, LeanReadMixin, RateLimitedMixin, viewsets.GenericViewSet):
    """Our API's viewsets: rate-limited, scoped per action; the hottest reads lean."""

    #: action → scope the key must carry.
    required_scopes: dict[str, str] = {}
    #: actions that read query parameters (and validate them themselves).
    query_actions = frozenset({"list"})
    lookup_value_regex = "[^/]+"

    def check_request(self, request) -> None:
        # No action: a method the route does not take, answered 405 whatever its query.
        if self.action is not None and self.action not in self.query_actions:
            query_validate(_query(request))  # takes none: any parameter is a 400, not ignored


class BookingViewSet(ApiViewSet):
    """Bookings of the key's team: each routed to a free host, with a strict lifecycle."""

    required_scopes = {
        "list": Scope.BOOKINGS_READ,
        "retrieve": Scope.BOOKINGS_READ,
        "history": Scope.BOOKINGS_READ,
        "create": Scope.BOOKINGS_CREATE,
        "partial_update": Scope.BOOKINGS_UPDATE,
        **{name: transition.scope for name, transition in TRANSITIONS.items()},
    }
    lookup_url_kwarg = "booking_id"
    lean_actions = frozenset({"retrieve", "list"})
    lean_replays = frozenset({"create", "reschedule"})
    lean_writes = frozenset({"create"})
    pagination_class = KeysetCursorPagination
    envelope_plural = "bookings"

    @extend_schema(
        operation_id="bookings_list",
        summary="List bookings",
        parameters=[BookingListQuery],
        responses={200: BookingListEnvelope, **_LIST_ERRORS},
    )
    def list(self, request):
        query = _query(request)
        filters = query_validate(
            query,
            BookingListQuery,
            also_allowed=self.paginator.query_parameters,
            extra_errors=self.paginator.query_errors(
                {name: values[-1] for name, values in query.items()}
            ),
        )
        page = selectors.booking_page(
            team=request.user.team, **self.paginator.page_arguments(request), **filters
        )
        bookings = self.paginator.paginate_page(page, view=self)
        return self.get_paginated_response(BookingSerializer.render_many(bookings))

    @extend_schema(
        operation_id="bookings_retrieve",
        parameters=[_BOOKING_ID],
        responses={200: BookingEnvelope, **_GET_ERRORS},
    )
    def retrieve(self, request, booking_id: str):
        booking = selectors.booking_view(team=request.user.team, booking_id=booking_id)
        return ok(booking=BookingSerializer.render_one(booking))

    @extend_schema(
        operation_id="bookings_history",
        summary="A booking's history",
        description="Every change to the booking, oldest first: its creation, routing, each "
        "transition, a reschedule (on both bookings) and each change of the attendee.",
        parameters=[_BOOKING_ID],
        responses={200: HistoryEnvelope, **_GET_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def history(self, request, booking_id: str):
        booking = selectors.booking_get(team=request.user.team, booking_id=booking_id)
        entries = selectors.booking_history_list(booking=booking)
        return ok(history=HistoryEntrySerializer.render_many(entries))

    @extend_schema(
        operation_id="bookings_update",
        summary="Change the attendee's details",
        description="Only `attendee` may be sent; any other top-level field is 400 "
        "`field_not_updatable` with `details.fields`, and nothing changes. Allowed in "
        f"{', '.join(sorted(ATTENDEE_EDITABLE))}; else 409 `invalid_transition`. A new email "
        "address gets a fresh confirmation, once, after the change commits; a PATCH that "
        f"changes nothing writes no history and sends nothing. Scope: `{Scope.BOOKINGS_UPDATE}`.",
        parameters=[_BOOKING_ID],
        request=BookingUpdateSerializer,
        responses={200: BookingEnvelope, **_ACTION_ERRORS},
    )
    def partial_update(self, request, booking_id: str):
        booking = selectors.booking_get(team=request.user.team, booking_id=booking_id)
        serializer = BookingUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        booking = services.booking_attendee_update(
            booking=booking, actor=_actor(request), **serializer.service_kwargs()
        )
        return ok(booking=BookingSerializer.render_one(booking))

    def _transition(
        self, request, booking_id: str, name: str, serializer_class=EmptyBodySerializer
    ):
        """Every transition endpoint: validate the body, one service call, the booking."""
        booking = selectors.booking_get(team=request.user.team, booking_id=booking_id)
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        booking, _changed = services.booking_transition(
            booking=booking, action=name, actor=_actor(request), **serializer.validated_data
        )
        return ok(booking=BookingSerializer.render_one(booking))

    @_transition_schema("confirm")
    @action(detail=True, methods=["post"], url_path=TRANSITIONS["confirm"].path)
    def confirm(self, request, booking_id: str):
        return self._transition(request, booking_id, "confirm")

    @_transition_schema("complete")
    @action(detail=True, methods=["post"], url_path=TRANSITIONS["complete"].path)
    def complete(self, request, booking_id: str):
        return self._transition(request, booking_id, "complete")

    @_transition_schema("no_show")
    @action(detail=True, methods=["post"], url_path=TRANSITIONS["no_show"].path)
    def no_show(self, request, booking_id: str):
        return self._transition(request, booking_id, "no_show")

    @_transition_schema("cancel", CancelSerializer)
    @action(detail=True, methods=["post"], url_path=TRANSITIONS["cancel"].path)
    def cancel(self, request, booking_id: str):
        return self._transition(request, booking_id, "cancel", CancelSerializer)

    @extend_schema(
        operation_id="bookings_reschedule",
        summary="Reschedule a booking",
        description=TRANSITIONS["reschedule"].describe()
        + "\n\nThe original becomes CANCELLED (`cancelled_by` api, `rescheduled_to_id` set); "
        "a new booking at the new time, `rescheduled_from_id` set, is RESCHEDULED "
        "(PENDING_CONFIRMATION if the original was pending). It keeps the original's host when "
        "free, else it is routed like a create; the same notice and horizon rules apply. Any "
        "failure leaves the original untouched. 201 with `Location`; honours "
        "`Idempotency-Key` exactly as a create does.",
        parameters=[_BOOKING_ID, _IDEMPOTENCY_HEADER],
        request=RescheduleSerializer,
        responses={
            201: BookingEnvelope,
            200: OpenApiResponse(BookingEnvelope, description="An idempotent replay."),
            **_ACTION_ERRORS,
            422: ErrorEnvelope,
        },
    )
    @action(detail=True, methods=["post"], url_path=TRANSITIONS["reschedule"].path)
    def reschedule(self, request, booking_id: str):
        team = request.user.team
        payload = request.data

        def prepare() -> tuple:
            booking = selectors.booking_get(team=team, booking_id=booking_id)
            serializer = RescheduleSerializer(data=payload)
            serializer.is_valid(raise_exception=True)
            return booking, serializer.validated_data

        def produce(prepared: tuple) -> Result:
            booking, data = prepared
            new = services.booking_reschedule(
                booking=booking,
                start_time=data["requested_time"],
                reason=data["reason"],
                actor=_actor(request),
            )
            return _created(new)

        return _idempotent(
            request, f"POST /v1/bookings/{booking_id}/reschedule", prepare=prepare, produce=produce
        )

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
    def create(self, request):
        team = request.user.team
        payload = request.data

        def prepare() -> dict:
            return BookingCreateSerializer.kwargs_for(payload, team=team)

        def produce(kwargs: dict, key_rows) -> Result:
            created = None

            def written_also(booking) -> list:  # rendered once the host is chosen
                nonlocal created
                created = _created(booking)
                return key_rows(created)

            services.booking_create(
                team=team, actor=_actor(request), written_also=written_also, **kwargs
            )
            return created

        return _idempotent(
            request, "POST /v1/bookings", prepare=prepare, produce=produce, call=idempotent_insert
        )


class EventTypeViewSet(ApiViewSet):
    """Event types of the key's team (managed by staff in the admin)."""

    required_scopes = {"list": Scope.EVENT_TYPES_READ, "retrieve": Scope.EVENT_TYPES_READ}
    query_actions = frozenset()  # the list takes no parameters either
    lookup_url_kwarg = "event_type_id"

    @extend_schema(
        operation_id="event_types_list", responses={200: EventTypeListEnvelope, **_LIST_ERRORS}
    )
    def list(self, request):
        event_types = selectors.event_type_list(team=request.user.team)
        return ok(event_types=rendered(EventTypeSerializer(event_types, many=True)))

    @extend_schema(
        operation_id="event_types_retrieve",
        parameters=[OpenApiParameter("event_type_id", id_schema("evt"), OpenApiParameter.PATH)],
        responses={200: EventTypeEnvelope, **_GET_ERRORS},
    )
    def retrieve(self, request, event_type_id: str):
        event_type = selectors.event_type_get(team=request.user.team, event_type_id=event_type_id)
        return ok(event_type=rendered(EventTypeSerializer(event_type)))


class TeamMemberViewSet(ApiViewSet):
    """Members of the key's team, active or not."""

    required_scopes = {"list": Scope.TEAM_READ, "retrieve": Scope.TEAM_READ}
    lookup_url_kwarg = "member_id"

    @extend_schema(
        operation_id="team_members_list",
        parameters=[MemberListQuery],
        responses={200: MemberListEnvelope, **_LIST_ERRORS},
    )
    def list(self, request):
        filters = query_validate(_query(request), MemberListQuery)
        members = selectors.member_list(team=request.user.team, **filters)
        return ok(members=rendered(TeamMemberSerializer(members, many=True)))

    @extend_schema(
        operation_id="team_members_retrieve",
        parameters=[OpenApiParameter("member_id", id_schema("mem"), OpenApiParameter.PATH)],
        responses={200: MemberEnvelope, **_GET_ERRORS},
    )
    def retrieve(self, request, member_id: str):
        member = selectors.member_get(team=request.user.team, member_id=member_id)
        return ok(member=rendered(TeamMemberSerializer(member)))
