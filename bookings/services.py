"""Writes. Every change to a booking is one of these functions, whoever asks for it."""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from notifications.models import EmailOutbox
from notifications.services import email_queue

from .auth import ALL_SCOPES, hash_key
from .errors import ValidationFailed
from .ids import ulid
from .models import ApiKey, Booking, BookingHistory, EventType, Team
from .routing import hosts_to_try, insert_with_first_free_host

# How far ahead a booking may be made: a scheduling horizon, and a guard against dates so far
# away that adding a duration overflows.
BOOKING_HORIZON = timedelta(days=5 * 366)


def api_key_create(
    *, team: Team, name: str = "", scopes: list[str] | None = None, test: bool = False
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret: the only time the secret is known."""
    scopes = list(ALL_SCOPES) if scopes is None else list(dict.fromkeys(scopes))
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown or not scopes:
        message = f"Unknown or missing scopes: {', '.join(unknown) or '(none)'}"
        raise ValidationFailed({"scopes": message}, message)
    secret = f"sk_{'test' if test else 'live'}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        team=team,
        name=name,
        prefix=secret[:12],
        key_hash=hash_key(secret),
        scopes=scopes,
        is_test=test,
    )
    return key, secret


def api_key_revoke(*, api_keys: Iterable[ApiKey]) -> int:
    """Revoke keys at once; a key revoked before keeps its first revocation time."""
    ids = [key.pk for key in api_keys]
    return ApiKey.objects.filter(pk__in=ids, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


@dataclass(frozen=True)
class Actor:
    """Who asked for a change: an API key, a staff user or the system itself."""

    type: str
    id: str = ""

    @classmethod
    def system(cls) -> "Actor":
        return cls(BookingHistory.ActorType.SYSTEM)


@dataclass(frozen=True)
class Attendee:
    name: str
    email: str
    phone: str = ""
    timezone: str = ""


def _history(
    booking: Booking,
    *,
    action: str,
    actor: Actor,
    at: datetime,
    from_status="",
    to_status=None,
    changes=None,
) -> BookingHistory:
    return BookingHistory(
        booking=booking,
        at=at,
        action=action,
        from_status=from_status,
        to_status=to_status or booking.status,
        actor_type=actor.type,
        actor_id=actor.id,
        changes=changes or {},
    )


def _check_bookable(*, event_type: EventType, start_time: datetime, now: datetime) -> None:
    if not event_type.is_active:
        raise ValidationFailed({"event_type_id": "This event type is not active."})
    earliest = now + timedelta(minutes=event_type.minimum_booking_notice)
    if start_time < earliest:
        raise ValidationFailed(
            {
                "requested_time": (
                    f"Too soon: this event type needs {event_type.minimum_booking_notice} minutes' "
                    f"notice (the earliest start is {earliest.isoformat()})."
                )
            }
        )
    if start_time > now + BOOKING_HORIZON:
        raise ValidationFailed(
            {"requested_time": "Too far ahead: bookings open at most 5 years in advance."}
        )


def _confirmation_kind(status: str) -> str:
    if status == Booking.Status.PENDING_CONFIRMATION:
        return EmailOutbox.Kind.AWAITING_CONFIRMATION
    return EmailOutbox.Kind.CONFIRMATION


@transaction.atomic(savepoint=False)  # joins the caller's transaction (idempotency) if any
def booking_create(
    *,
    team: Team,
    event_type: EventType,
    start_time: datetime,
    attendee: Attendee,
    actor: Actor,
    assigned_to_id: str | None = None,
    custom_fields: dict | None = None,
    metadata: dict | None = None,
) -> Booking:
    """Create a booking and route it to a free host, in one transaction.

    The booking is born DRAFT and routed at once to SCHEDULED, or PENDING_CONFIRMATION when
    the event type requires confirmation; history records both steps. No free host: 409
    ``slot_unavailable`` and nothing is left behind.
    """
    if event_type.team_id != team.id:
        raise ValidationFailed({"event_type_id": "Unknown event type."})
    now = timezone.now()
    _check_bookable(event_type=event_type, start_time=start_time, now=now)
    end_time = start_time + timedelta(minutes=event_type.duration)
    blocked_start = start_time - timedelta(minutes=event_type.buffer_before)
    blocked_end = end_time + timedelta(minutes=event_type.buffer_after)

    hosts = hosts_to_try(
        event_type=event_type,
        blocked_start=blocked_start,
        blocked_end=blocked_end,
        pinned_host_id=assigned_to_id,
    )
    routed_status = (
        Booking.Status.PENDING_CONFIRMATION
        if event_type.requires_confirmation
        else Booking.Status.SCHEDULED
    )
    booking = Booking(
        team=team,
        event_type=event_type,
        status=routed_status,
        start_time=start_time,
        end_time=end_time,
        blocked_start=blocked_start,
        blocked_end=blocked_end,
        attendee_name=attendee.name,
        attendee_email=attendee.email,
        attendee_phone=attendee.phone,
        attendee_timezone=attendee.timezone,
        custom_fields=custom_fields or {},
        metadata=metadata or {},
        ical_uid=f"{ulid()}@bookings",
        created_at=now,
        updated_at=now,
    )
    insert_with_first_free_host(booking, hosts)

    created = _history(
        booking,
        action=BookingHistory.Action.CREATED,
        actor=actor,
        at=now,
        to_status=Booking.Status.DRAFT,
    )
    routed = _history(
        booking,
        action=BookingHistory.Action.ROUTED,
        actor=Actor.system(),
        at=now,
        from_status=Booking.Status.DRAFT,
        changes={"assigned_to_id": [None, booking.assigned_to_id]},
    )
    BookingHistory.objects.bulk_create([created, routed])
    email_queue(
        booking=booking,
        kind=_confirmation_kind(booking.status),
        event_key=f"{booking.id}:created",
        now=now,
    )
    return booking
