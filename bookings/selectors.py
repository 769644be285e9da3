"""Reads. Every selector takes the team: another team's object is simply not found."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet
from django.db.models.functions import Lower

from .errors import NotFound
from .ids import is_valid_id
from .models import Booking, BookingHistory, EventType, Team, TeamMember


def _get(queryset: QuerySet, pk: str, prefix: str, what: str):
    # A string that is not one of our ids cannot name a row: no query (and no NUL byte
    # or other oddity ever reaches the database).
    if not is_valid_id(pk, prefix):
        raise NotFound(f"{what} not found.")
    try:
        return queryset.get(pk=pk)
    except queryset.model.DoesNotExist:
        raise NotFound(f"{what} not found.") from None


def booking_get(*, team: Team, booking_id: str) -> Booking:
    return _get(Booking.objects.filter(team=team), booking_id, "bkg", "Booking")


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


def booking_history_list(*, booking: Booking) -> QuerySet[BookingHistory]:
    return BookingHistory.objects.filter(booking=booking).order_by("at", "id")


def event_type_list(*, team: Team) -> QuerySet[EventType]:
    return EventType.objects.filter(team=team).prefetch_related("host_links").order_by("id")


def event_type_get(*, team: Team, event_type_id: str) -> EventType:
    return _get(event_type_list(team=team), event_type_id, "evt", "Event type")


def member_list(*, team: Team, is_active: bool | None = None) -> QuerySet[TeamMember]:
    """All members, active or not, unless ``is_active`` says which."""
    members = TeamMember.objects.filter(team=team).order_by("id")
    if is_active is not None:
        members = members.filter(is_active=is_active)
    return members


def member_get(*, team: Team, member_id: str) -> TeamMember:
    return _get(TeamMember.objects.filter(team=team), member_id, "mem", "Team member")
