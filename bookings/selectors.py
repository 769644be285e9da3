"""Reads. Every selector takes the team: another team's object is simply not found."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet
from django.db.models.functions import Lower

from .compiled import CompiledQuery
from .errors import NotFound
from .ids import is_valid_id
from .models import Booking, BookingHistory, EventType, EventTypeHost, Team, TeamMember
from .pagination import Page, keyset_after, keyset_paginate

# What the API renders of a booking (``BookingSerializer``): reads fetch only these.
BOOKING_RENDERED = (
    "id",
    "status",
    "event_type_id",
    "assigned_to_id",
    "start_time",
    "end_time",
    "attendee_name",
    "attendee_email",
    "attendee_phone",
    "attendee_timezone",
    "custom_fields",
    "metadata",
    "rescheduled_from_id",
    "rescheduled_to_id",
    "cancelled_by",
    "cancellation_reason",
    "cancelled_at",
    "created_at",
    "updated_at",
)


def _check_id(pk: str, prefix: str, what: str) -> None:
    # A string that is not one of our ids cannot name a row: no query (and no NUL byte
    # or other oddity ever reaches the database).
    if not is_valid_id(pk, prefix):
        raise NotFound(f"{what} not found.")


def _get(queryset: QuerySet, pk: str, prefix: str, what: str):
    _check_id(pk, prefix, what)
    try:
        return queryset.get(pk=pk)
    except queryset.model.DoesNotExist:
        raise NotFound(f"{what} not found.") from None


def booking_get(*, team: Team, booking_id: str) -> Booking:
    """The booking as the API shows it (only the rendered fields; a service that changes it
    reads the whole row again, under its lock)."""
    return _booking_one(_booking_by_id, team, booking_id)


def booking_view(*, team: Team, booking_id: str) -> tuple:
    """The booking to render: a read-only record of ``BOOKING_RENDERED``, not a model."""
    return _booking_one(_booking_view, team, booking_id)


def _booking_one(query: CompiledQuery, team: Team, booking_id: str):
    _check_id(booking_id, "bkg", "Booking")
    rows = query(team_id=team.pk, booking_id=booking_id)
    if not rows:
        raise NotFound("Booking not found.")
    return rows[0]


def _booking_by_id_queryset(*, team_id, booking_id):
    return Booking.objects.filter(team_id=team_id, pk=booking_id).only(*BOOKING_RENDERED).order_by()


_booking_by_id = CompiledQuery(_booking_by_id_queryset)
_booking_view = CompiledQuery(_booking_by_id_queryset, records=True)


def booking_list(
    *,
    team: Team,
    statuses: Iterable[str] | None = None,
    event_type_id: str | None = None,
    assigned_to_id: str | None = None,
    attendee_email: str | None = None,
    start_from: datetime | None = None,
    start_before: datetime | None = None,
) -> QuerySet[Booking]:
    """The team's bookings matching every filter given, in start time order, then id.

    ``attendee_email`` matches the whole address, ignoring case; ``start_from`` is inclusive,
    ``start_before`` exclusive. Each filter is served by an index that leads with the team.
    """
    bookings = Booking.objects.filter(team=team)
    if statuses is not None:
        bookings = bookings.filter(status__in=list(statuses))
    if event_type_id is not None:
        bookings = bookings.filter(event_type_id=event_type_id)
    if assigned_to_id is not None:
        bookings = bookings.filter(assigned_to_id=assigned_to_id)
    if attendee_email is not None:
        # Matches the expression index on (team, lower(attendee_email), start_time, id).
        bookings = bookings.alias(attendee_email_lower=Lower("attendee_email")).filter(
            attendee_email_lower=attendee_email.lower()
        )
    if start_from is not None:
        bookings = bookings.filter(start_time__gte=start_from)
    if start_before is not None:
        bookings = bookings.filter(start_time__lt=start_before)
    return bookings.order_by("start_time", "id")


def booking_page(*, team: Team, cursor: str | None, limit: int, **filters) -> Page:
    """One page of ``booking_list`` (same filters) after ``cursor``: records of the rendered
    fields, as ``booking_view`` gives."""
    if filters.get("attendee_email") is not None:
        filters["attendee_email"] = filters["attendee_email"].lower()  # as the index holds it
    if filters.get("statuses") is not None:
        filters["statuses"] = sorted(filters["statuses"])

    def rows_after(after, count: int) -> list[Booking]:
        after_time, after_id = after or (None, None)
        return _booking_page(
            team_id=team.pk, after_time=after_time, after_id=after_id, count=count, **filters
        )

    return keyset_paginate(rows_after, cursor=cursor, limit=limit)


def _booking_page_queryset(*, team_id, after_time, after_id, count, **filters):
    bookings = booking_list(team=team_id, **filters).only(*BOOKING_RENDERED)
    return keyset_after(bookings, after_time, after_id)[:count]


_booking_page = CompiledQuery(_booking_page_queryset, records=True)


def booking_history_list(*, booking: Booking) -> QuerySet[BookingHistory]:
    return BookingHistory.objects.filter(booking=booking).order_by("at", "id")


def event_type_list(*, team: Team) -> list[EventType]:
    """The team's event types, each with ``host_ids`` (see ``_with_host_ids``)."""
    return _with_host_ids(list(EventType.objects.filter(team=team).order_by("id")))


def _with_host_ids(event_types: list[EventType]) -> list[EventType]:
    """Sets each event type's ``host_ids``, its hosts' ids in the order they were added, from
    one query. Not ``prefetch_related("host_links")``, which links each host link to its event
    type and back: a reference cycle per row, left for the garbage collector."""
    host_ids: dict[str, list[str]] = {event_type.pk: [] for event_type in event_types}
    if host_ids:
        links = EventTypeHost.objects.filter(event_type_id__in=host_ids).order_by("id")
        for event_type_id, member_id in links.values_list("event_type_id", "member_id"):
            host_ids[event_type_id].append(member_id)
    for event_type in event_types:
        event_type.host_ids = host_ids[event_type.pk]
    return event_types


def event_type_for_booking(*, team: Team, event_type_id: str) -> EventType | None:
    """The team's event type a create names, or None: one query, compiled once (a create's
    hot path)."""
    if not is_valid_id(event_type_id, "evt"):
        return None
    rows = _event_type_by_id(team_id=team.pk, event_type_id=event_type_id)
    return rows[0] if rows else None


_event_type_by_id = CompiledQuery(
    lambda *, team_id, event_type_id: EventType.objects.filter(
        team_id=team_id, pk=event_type_id
    ).order_by()[:1]
)


def event_type_get(*, team: Team, event_type_id: str) -> EventType:
    event_type = _get(EventType.objects.filter(team=team), event_type_id, "evt", "Event type")
    return _with_host_ids([event_type])[0]


def member_list(*, team: Team, is_active: bool | None = None) -> QuerySet[TeamMember]:
    """All members, active or not, unless ``is_active`` says which."""
    members = TeamMember.objects.filter(team=team).order_by("id")
    if is_active is not None:
        members = members.filter(is_active=is_active)
    return members


def member_get(*, team: Team, member_id: str) -> TeamMember:
    return _get(TeamMember.objects.filter(team=team), member_id, "mem", "Team member")
