"""Writes. Every change to a booking is one of these functions, whoever asks for it."""

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from notifications.models import EmailOutbox
from notifications.services import (
    email_dispatch_on_commit,
    email_queue,
    email_row,
    email_supersede,
)

from .access import api_keys_recache_on_commit
from .auth import ALL_SCOPES, hash_key
from .compiled import CompiledQuery
from .errors import BookingChanged, BookingNotStarted, InvalidTransition, ValidationFailed
from .ids import ulid
from .models import ApiKey, Booking, BookingHistory, EventType, Team
from .routing import hosts_to_try, insert_routed, insert_with_first_free_host, routing_transaction
from .transitions import ATTENDEE_EDITABLE, TRANSITIONS, Transition, rescheduled_status
from .validators import utc_iso

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


@transaction.atomic
def api_key_revoke(*, api_keys: Iterable[ApiKey]) -> int:
    """Revoke keys at once; a key revoked before keeps its first revocation time. Every
    process refuses them as soon as this commits (their cached rows are rewritten then)."""
    api_keys = list(api_keys)
    revoked = ApiKey.objects.filter(
        pk__in=[key.pk for key in api_keys], revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    api_keys_recache_on_commit(key.key_hash for key in api_keys)
    return revoked


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
        # Only what changed: a kept host or an absent reason is no [x, x] pair.
        changes={field: pair for field, pair in (changes or {}).items() if pair[0] != pair[1]},
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
                    f"notice (the earliest start is {utc_iso(earliest)})."
                )
            }
        )
    if start_time > now + BOOKING_HORIZON:
        raise ValidationFailed(
            {"requested_time": "Too far ahead: bookings open at most 5 years in advance."}
        )


def _slot(event_type: EventType, start_time: datetime) -> tuple[datetime, datetime, datetime]:
    """The end of a booking starting then, and the stretch of its host's calendar it blocks."""
    end_time = start_time + timedelta(minutes=event_type.duration)
    return (
        end_time,
        start_time - timedelta(minutes=event_type.buffer_before),
        end_time + timedelta(minutes=event_type.buffer_after),
    )


def _confirmation_kind(status: str) -> str:
    if status == Booking.Status.PENDING_CONFIRMATION:
        return EmailOutbox.Kind.AWAITING_CONFIRMATION
    return EmailOutbox.Kind.CONFIRMATION


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
    written_also: Callable[[Booking], list[Model]] | None = None,
) -> Booking:
    """Create a booking and route it to a free host, atomically.

    The booking is born DRAFT and routed at once to SCHEDULED, or PENDING_CONFIRMATION when
    the event type requires confirmation; history records both steps, and the confirmation
    email is queued. No free host: 409 ``slot_unavailable`` and nothing is left behind. The
    booking, its history and its email are written together (``routing.insert_routed``: one
    statement on PostgreSQL); a caller's transaction is joined. ``written_also`` makes the
    caller's own rows for the booking once its host is set (an Idempotency-Key holding the
    response): written with the others, all or nothing, and an error of theirs (the key
    already taken) is raised with nothing written.
    """
    if event_type.team_id != team.id:
        raise ValidationFailed({"event_type_id": "Unknown event type."})
    now = timezone.now()
    _check_bookable(event_type=event_type, start_time=start_time, now=now)
    end_time, blocked_start, blocked_end = _slot(event_type, start_time)

    with routing_transaction():
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

        def written_with(booking: Booking) -> list:
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
            email = email_row(
                booking=booking,
                kind=_confirmation_kind(booking.status),
                event_key=f"{booking.id}:created",
                now=now,
            )
            return [created, routed, email, *(written_also(booking) if written_also else [])]

        _created, _routed, email, *_also = insert_routed(booking, hosts, written_with)
        email_dispatch_on_commit(email)
    return booking


# --- The lifecycle -----------------------------------------------------------------------------
#
# Every change of a booking after its creation goes through the functions below, whoever asks
# (the API, the admin, a command, a task). Each locks the booking's row for the length of its
# transaction (SELECT … FOR UPDATE; on SQLite a write transaction runs alone), decides from the
# row as it is now, and writes the change, its history entry and its email in that transaction.
# So two concurrent requests on one booking run one after the other: the second sees the first's
# result, and a repeat finds nothing to do.


def _locked(booking: Booking) -> Booking:
    """The booking's row as it is now, locked until the transaction ends (with its event
    type, which a reschedule needs)."""
    return (
        Booking.objects.select_for_update(of=("self",))
        .select_related("event_type")
        .get(pk=booking.pk)
    )


def _locked_row_queryset(*, booking_id):
    return Booking.objects.select_for_update(of=("self",)).filter(pk=booking_id).order_by()


# A transition and an attendee update read the locked row alone: compiled once, the read costs
# them no queryset building (a fifth of a cancel's CPU). Only ever run inside the service's
# transaction (the queryset is compiled at the first call, where Django checks it is in one).
_locked_row_query = CompiledQuery(_locked_row_queryset)


def _locked_row(booking: Booking) -> Booking:
    """``_locked`` without the event type."""
    (row,) = _locked_row_query(booking_id=booking.pk)
    return row


def _refuse(action: str, booking: Booking, allowed_from) -> None:
    raise InvalidTransition(
        f"Cannot {action.replace('_', '-')} a booking that is {booking.status}.",
        details={"status": booking.status, "allowed_from": sorted(allowed_from)},
    )


def _check_allowed(transition: Transition, booking: Booking, now: datetime) -> bool:
    """True when the action would change the booking; False for a repeat (200, unchanged)."""
    if booking.status in transition.unchanged_on:
        return False
    if booking.status not in transition.allowed_from:
        _refuse(transition.action, booking, transition.allowed_from)
    if transition.requires_started and now < booking.start_time:
        raise BookingNotStarted(
            f"The booking starts at {utc_iso(booking.start_time)}; "
            f"it cannot be marked {transition.to} before then.",
            details={"start_time": utc_iso(booking.start_time)},
        )
    return True


@transaction.atomic
def booking_transition(
    *,
    booking: Booking,
    action: str,
    actor: Actor,
    cancelled_by: str = Booking.CancelledBy.API,
    reason: str | None = None,
) -> tuple[Booking, bool]:
    """Move the booking as ``TRANSITIONS[action]`` says: confirm, complete, no_show, cancel.

    Returns the booking as it now is and whether it changed. A repeat on the result changes
    nothing and sends nothing; a move the table does not allow raises ``InvalidTransition``.
    ``cancelled_by`` and ``reason`` are for a cancel (the first cancellation's stay).
    """
    transition = TRANSITIONS[action]
    if transition.action == "reschedule":
        raise ValueError("A reschedule makes a new booking: use booking_reschedule().")
    booking = _locked_row(booking)
    now = timezone.now()
    if not _check_allowed(transition, booking, now):
        return booking, False

    from_status = booking.status
    changes: dict[str, list] = {"status": [from_status, transition.to]}
    booking.status = transition.to
    booking.updated_at = now
    fields = ["status", "updated_at"]
    if transition.to == Booking.Status.CANCELLED:
        booking.cancelled_by = cancelled_by
        booking.cancellation_reason = reason
        booking.cancelled_at = now
        fields += ["cancelled_by", "cancellation_reason", "cancelled_at"]
        changes["cancellation.cancelled_by"] = [None, cancelled_by]
        changes["cancellation.reason"] = [None, reason]
    if transition.email:
        booking.ical_sequence += 1  # the calendar keeps the newest of a UID's messages
        fields.append("ical_sequence")
    booking.save(update_fields=fields)
    _history(
        booking,
        action=transition.history_action,
        actor=actor,
        at=now,
        from_status=from_status,
        changes=changes,
    ).save()
    if transition.email:
        email_queue(
            booking=booking,
            kind=_confirmation_kind(booking.status)
            if transition.email == EmailOutbox.Kind.CONFIRMATION
            else transition.email,
            event_key=f"{booking.id}:{transition.history_action}",
            now=now,
        )
    return booking, True


@transaction.atomic
def booking_reschedule(
    *, booking: Booking, start_time: datetime, actor: Actor, reason: str | None = None
) -> Booking:
    """Move a booking to a new time: the original is cancelled, a new booking takes its place.

    In one transaction the original becomes CANCELLED (``cancelled_by`` api, pointing at the
    new booking) and the new booking, pointing back, is RESCHEDULED (PENDING_CONFIRMATION if
    the original was pending). It keeps the original's host when that host is still an active
    host of the event type and free at the new time; otherwise it is routed like a create.
    It keeps the calendar UID with a SEQUENCE one higher, so the attendee's calendar moves the
    event. Any failure (a refused move, a bad time, no free host) leaves the original as it was.
    Returns the new booking.
    """
    transition = TRANSITIONS["reschedule"]
    original = _locked(booking)
    now = timezone.now()
    _check_allowed(transition, original, now)  # no repeat: a reschedule is never "unchanged"
    event_type = original.event_type
    _check_bookable(event_type=event_type, start_time=start_time, now=now)
    end_time, blocked_start, blocked_end = _slot(event_type, start_time)
    from_status = original.status

    new = Booking(
        team_id=original.team_id,
        event_type=event_type,
        status=rescheduled_status(from_status),
        start_time=start_time,
        end_time=end_time,
        blocked_start=blocked_start,
        blocked_end=blocked_end,
        attendee_name=original.attendee_name,
        attendee_email=original.attendee_email,
        attendee_phone=original.attendee_phone,
        attendee_timezone=original.attendee_timezone,
        custom_fields=original.custom_fields,
        metadata=original.metadata,
        rescheduled_from=original,
        ical_uid=original.ical_uid,
        ical_sequence=original.ical_sequence + 1,
        created_at=now,
        updated_at=now,
    )
    # Cancel the original first: its own slot no longer blocks its host, so a move by a few
    # minutes can keep the host. The foreign key to the new row is checked at commit.
    original.status = transition.to
    original.cancelled_by = Booking.CancelledBy.API
    original.cancellation_reason = reason
    original.cancelled_at = now
    original.rescheduled_to_id = new.id
    original.updated_at = now
    original.save(
        update_fields=[
            "status",
            "cancelled_by",
            "cancellation_reason",
            "cancelled_at",
            "rescheduled_to",
            "updated_at",
        ]
    )
    hosts = hosts_to_try(
        event_type=event_type, blocked_start=blocked_start, blocked_end=blocked_end
    )
    # The original's host first, when free; then the others in routing order.
    hosts.sort(key=lambda host: host.id != original.assigned_to_id)
    insert_with_first_free_host(new, hosts)

    moved = {
        "start_time": [utc_iso(original.start_time), utc_iso(start_time)],
        "end_time": [utc_iso(original.end_time), utc_iso(end_time)],
        "reason": [None, reason],
    }
    BookingHistory.objects.bulk_create(
        [
            _history(
                original,
                action=transition.history_action,
                actor=actor,
                at=now,
                from_status=from_status,
                changes={
                    "status": [from_status, original.status],
                    "cancellation.cancelled_by": [None, original.cancelled_by],
                    "cancellation.reason": [None, reason],
                    "rescheduled_to_id": [None, new.id],
                    **moved,
                },
            ),
            _history(
                new,
                action=transition.history_action,
                actor=actor,
                at=now,
                changes={
                    "rescheduled_from_id": [None, original.id],
                    "assigned_to_id": [None, new.assigned_to_id],  # as a create's routing
                    **moved,
                },
            ),
        ]
    )
    # The new time's confirmation replaces the original's cancellation notice, and any of the
    # original's emails still unsent.
    email_supersede(booking_id=original.id)
    email_queue(
        booking=new,
        kind=_confirmation_kind(new.status),
        event_key=f"{new.id}:{transition.history_action}",
        now=now,
        supersede=False,
    )
    return new


_ATTENDEE_FIELDS = {
    "name": "attendee_name",
    "email": "attendee_email",
    "phone": "attendee_phone",
    "timezone": "attendee_timezone",
}


@transaction.atomic
def booking_attendee_update(
    *, booking: Booking, actor: Actor, seen_updated_at: datetime | None = None, **attendee: str
) -> Booking:
    """Change the attendee's details (name, email, phone, timezone; "" clears phone or zone).

    Allowed while the booking is SCHEDULED, RESCHEDULED or PENDING_CONFIRMATION. Nothing
    changed: no history, no email. A new email address (ignoring case) gets a fresh
    confirmation, sent after the change commits; the old address's unsent emails are dropped.

    ``seen_updated_at``: the booking's ``updated_at`` when the editor read it (the admin's
    page). If the row has changed since, ``BookingChanged``: compared under the row's lock, so
    of two edits made from one version, the second is refused, never applied over the first.
    """
    unknown = sorted(set(attendee) - set(_ATTENDEE_FIELDS))
    if unknown:
        raise ValidationFailed({f"attendee.{name}": "Unknown field." for name in unknown})
    booking = _locked_row(booking)
    if booking.status not in ATTENDEE_EDITABLE:
        _refuse("update", booking, ATTENDEE_EDITABLE)
    if seen_updated_at is not None and booking.updated_at != seen_updated_at:
        raise BookingChanged()
    changes = {
        # As the API shows them: a blank phone or time zone is null.
        f"attendee.{name}": [getattr(booking, column) or None, attendee[name] or None]
        for name, column in _ATTENDEE_FIELDS.items()
        if name in attendee and getattr(booking, column) != attendee[name]
    }
    if not changes:
        return booking
    now = timezone.now()
    email_change = changes.get("attendee.email")
    readdressed = email_change is not None and email_change[0].lower() != email_change[1].lower()
    for name, column in _ATTENDEE_FIELDS.items():
        if name in attendee:
            setattr(booking, column, attendee[name])
    booking.updated_at = now
    fields = [_ATTENDEE_FIELDS[key.split(".")[1]] for key in changes] + ["updated_at"]
    if readdressed:
        booking.ical_sequence += 1
        fields.append("ical_sequence")
    booking.save(update_fields=fields)
    entry = _history(
        booking,
        action=BookingHistory.Action.ATTENDEE_UPDATED,
        actor=actor,
        at=now,
        from_status=booking.status,
        changes=changes,
    )
    entry.save()
    if readdressed:
        email_queue(
            booking=booking,
            kind=_confirmation_kind(booking.status),
            event_key=f"{booking.id}:{BookingHistory.Action.ATTENDEE_UPDATED}:{entry.pk}",
            now=now,
        )
    return booking
