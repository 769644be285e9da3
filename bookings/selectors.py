"""Reads. Every selector takes the team: another team's object is simply not found."""

from collections.abc import Mapping

from django.db.models import QuerySet

from .errors import NotFound, ValidationFailed
from .filters import LIST_PARAMETERS, BookingFilter
from .ids import is_valid_id
from .models import Booking, BookingHistory, EventType, Team, TeamMember
from .pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, keyset_paginate


def _get(queryset: QuerySet, pk: str, prefix: str, what: str):
    # A string that is not one of our ids cannot name a row: no query (and no NUL byte
    # or other oddity ever reaches the database).
    if not is_valid_id(pk, prefix):
        raise NotFound(f"{what} not found.")
    try:
        return queryset.get(pk=pk)
    except queryset.model.DoesNotExist:
        raise NotFound(f"{what} not found.") from None


def _query_errors(params: Mapping[str, list[str]], allowed: frozenset | set) -> dict:
    """Unknown or repeated query parameters: a 400, never silently ignored."""
    errors = {}
    for name, values in params.items():
        if name not in allowed:
            errors[name] = ["Unknown parameter."]
        elif len(values) > 1:
            errors[name] = ["Give this parameter once (several statuses go comma-separated)."]
    return errors


def booking_get(*, team: Team, booking_id: str) -> Booking:
    return _get(Booking.objects.filter(team=team), booking_id, "bkg", "Booking")


def booking_list(*, team: Team, params: Mapping[str, list[str]]) -> Page:
    """One page of the team's bookings. ``params`` is the query string, validated here."""
    errors = _query_errors(params, LIST_PARAMETERS)
    single = {name: values[-1] for name, values in params.items()}
    limit = _parse_limit(single.get("limit"), errors)
    cursor = single.get("cursor")
    if cursor is not None and cursor.strip() == "":
        errors["cursor"] = ["Must not be empty."]
    filterset = BookingFilter(data=single, queryset=Booking.objects.filter(team=team))
    if not filterset.is_valid():
        errors.update({field: list(messages) for field, messages in filterset.errors.items()})
    if errors:
        raise ValidationFailed(errors)
    return keyset_paginate(filterset.qs, cursor=cursor, limit=limit)


def _parse_limit(raw: str | None, errors: dict) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        errors["limit"] = [f"Must be a whole number from 1 to {MAX_LIMIT}."]
        return DEFAULT_LIMIT
    return int(raw)


def booking_history_list(*, booking: Booking) -> QuerySet[BookingHistory]:
    return BookingHistory.objects.filter(booking=booking).order_by("at", "id")


def event_type_list(
    *, team: Team, params: Mapping[str, list[str]] | None = None
) -> QuerySet[EventType]:
    errors = _query_errors(params or {}, allowed=set())
    if errors:
        raise ValidationFailed(errors)
    return EventType.objects.filter(team=team).prefetch_related("host_links").order_by("id")


def event_type_get(*, team: Team, event_type_id: str) -> EventType:
    return _get(event_type_list(team=team), event_type_id, "evt", "Event type")


def member_list(
    *, team: Team, params: Mapping[str, list[str]] | None = None
) -> QuerySet[TeamMember]:
    """All members, active or not; ``?is_active=true|false`` filters."""
    params = params or {}
    errors = _query_errors(params, allowed={"is_active"})
    raw = params.get("is_active")
    if raw is not None and raw[-1] not in ("true", "false"):
        errors.setdefault("is_active", ["Must be true or false."])
    if errors:
        raise ValidationFailed(errors)
    members = TeamMember.objects.filter(team=team).order_by("id")
    if raw is not None:
        members = members.filter(is_active=raw[-1] == "true")
    return members


def member_get(*, team: Team, member_id: str) -> TeamMember:
    return _get(TeamMember.objects.filter(team=team), member_id, "mem", "Team member")
