"""Routing: which host takes a new booking.

A host is busy over ``[start - buffer_before, end + buffer_after)`` of each active booking.
ROUND_ROBIN picks, among the event type's active hosts who are free, the one assigned least
recently for this event type (never assigned first, ties by id). SOLO has one host. A pinned
host skips the choice, not the busy check.

The busy check here is the fast path and the source of a clear 409; it is not what keeps two
bookings of a host apart. On PostgreSQL the exclusion constraint ``booking_no_overlap_per_host``
refuses an overlapping insert whatever this code saw (a concurrent request may have committed
in between): we then try the next host. On SQLite, write transactions begin IMMEDIATE and so
run one at a time, which makes the check itself exact.

On PostgreSQL the insert is ``INSERT … ON CONFLICT ON CONSTRAINT booking_no_overlap_per_host
DO NOTHING``. A plain INSERT checks the exclusion constraint after placing its row, so two
requests inserting for the same host at once each wait for the other's uncommitted row:
"deadlock detected". Speculative insertion (what ON CONFLICT does) checks first, waits only
for a conflicting transaction that is still running, and withdraws its own row instead of
waiting on a peer that waits on it; then a conflict with a committed booking inserts nothing,
and we move on to the next host.
"""

import contextlib
import itertools
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from django.db import IntegrityError, OperationalError, connections, router, transaction
from django.db.models import Exists, Model, OuterRef, Subquery, Value

from .compiled import CompiledQuery
from .db import insert_with_rows, is_lock_timeout
from .errors import SlotUnavailable, ValidationFailed
from .models import MAX_BLOCKED_SPAN, Booking, EventType, TeamMember, blocked_range

OVERLAP_CONSTRAINT = "booking_no_overlap_per_host"
_NEVER = datetime.min.replace(tzinfo=UTC)


def hosts_to_try(
    *, event_type: EventType, blocked_start, blocked_end, pinned_host_id: str | None = None
) -> list[tuple]:
    """The free hosts eligible for this slot, best first. One query (compiled once); each
    host a record of its ``id``, ``is_active``, ``is_busy`` and ``last_assigned_at``."""
    slot = {"blocked_start": blocked_start, "blocked_end": blocked_end}
    if connections[router.db_for_read(Booking)].vendor != "postgresql":
        # Compared column by column (see _candidate_hosts_queryset). The lower bound is implied
        # by the other two (no booking blocks more than MAX_BLOCKED_SPAN) and turns a scan of
        # the host's whole past into a short index range.
        slot["earliest_start"] = blocked_start - MAX_BLOCKED_SPAN
    hosts = _candidate_hosts(event_type_id=event_type.pk, team_id=event_type.team_id, **slot)
    if event_type.scheduling_type == EventType.SchedulingType.SOLO:
        hosts = hosts[:1]  # the one host, even if inactive: then nobody takes the booking
    hosts = [host for host in hosts if host.is_active]

    if pinned_host_id is not None:
        hosts = [host for host in hosts if host.id == pinned_host_id]
        if not hosts:
            raise ValidationFailed({"assigned_to_id": "Not an active host of this event type."})
    free = [host for host in hosts if not host.is_busy]
    if not free:
        raise SlotUnavailable(
            "The pinned host is busy at that time."
            if pinned_host_id
            else "No eligible host is free at that time."
        )
    # Never assigned sorts first; then least recently assigned; then by id.
    free.sort(key=lambda host: (host.last_assigned_at or _NEVER, host.id))
    return free


def _candidate_hosts_queryset(
    *, event_type_id, team_id, blocked_start, blocked_end, earliest_start=None
):
    """The event type's hosts in the order they were added, each with whether an active
    booking of theirs overlaps the slot and when this event type last went to them. Without
    ``earliest_start`` the overlap is asked as ranges (PostgreSQL); with it, column by column
    (SQLite, which has no ranges)."""
    overlapping = Booking.objects.filter(
        assigned_to=OuterRef("pk"), status__in=sorted(Booking.Status.ACTIVE)
    )
    if earliest_start is None:
        # The exclusion constraint's own question, in its terms, so that its GiST index
        # answers it: the host's active bookings whose [blocked_start, blocked_end) overlaps
        # the slot's, and no other row. Asked with the columns (blocked_start < end, blocked_end
        # > start), a generic plan read that index by host alone or a btree over the host's
        # last days and filtered every row: a create slowed with each booking of a busy host,
        # 2 → 7 ms of PostgreSQL's CPU within a minute at 10,000 bookings (bench/README.md).
        slot = blocked_range(Value(blocked_start), Value(blocked_end))
        overlapping = overlapping.alias(blocked=blocked_range()).filter(blocked__overlap=slot)
    else:
        overlapping = overlapping.filter(
            blocked_start__gt=earliest_start,
            blocked_start__lt=blocked_end,
            blocked_end__gt=blocked_start,
        )
    last_assigned = (
        Booking.objects.filter(event_type_id=event_type_id, assigned_to=OuterRef("pk"))
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    return (
        TeamMember.objects.filter(host_links__event_type_id=event_type_id, team_id=team_id)
        .only("id", "is_active")
        .annotate(is_busy=Exists(overlapping), last_assigned_at=Subquery(last_assigned))
        .order_by("host_links__id")
    )


# Records, not models: routing reads four values of each host (a create used to build some ten
# TeamMember instances to assign one).
_candidate_hosts = CompiledQuery(_candidate_hosts_queryset, records=True)


def routing_transaction(using: str | None = None):
    """What a check for free hosts and the insert after it run in. PostgreSQL: nothing of its
    own (the insert is one statement, and the exclusion constraint refuses an overlap whatever
    the check saw); a caller's transaction is joined. SQLite: one transaction, which begins
    IMMEDIATE and so runs alone, making the check exact."""
    using = using or router.db_for_write(Booking)
    if connections[using].vendor == "postgresql":
        return contextlib.nullcontext()
    return transaction.atomic(using=using)


def insert_with_first_free_host(booking: Booking, hosts: Iterable) -> Booking:
    """Insert ``booking`` with the first host the database accepts, or raise 409."""
    insert_routed(booking, hosts, lambda _booking: [])
    return booking


def insert_routed(
    booking: Booking,
    hosts: Iterable,
    dependents: Callable[[Booking], list[Model]],
) -> list[Model]:
    """Insert ``booking`` with the first host the database accepts (or raise 409), together
    with the rows ``dependents`` makes for it once its host is set (its history, its email),
    which it returns saved.

    On PostgreSQL the booking and its rows are one statement (``db.insert_with_rows``).
    Outside a transaction that statement is atomic by itself: a create without an
    Idempotency-Key costs one round trip where BEGIN, a savepoint, three inserts, the release
    and COMMIT took seven. Inside one (a keyed create, a reschedule) each try runs under a
    savepoint, so that a host refused on a lock timeout leaves the transaction usable.
    """
    using = router.db_for_write(Booking)
    connection = connections[using]
    for host in hosts:  # each with an ``id``: a host's record, or a TeamMember
        booking.assigned_to_id = host.id
        rows = dependents(booking)
        try:
            if connection.vendor == "postgresql" and not connection.in_atomic_block:
                inserted = _insert_unless_overlapping(booking, rows, using)
            else:
                with transaction.atomic(using=using):
                    inserted = _insert_unless_overlapping(booking, rows, using)
        except IntegrityError as exc:
            if not is_overlap_violation(exc):
                raise
            inserted = False
        except OperationalError as exc:
            if not _waited_on_a_booking(exc):
                raise
            # Another transaction still holds an overlapping booking of this host and has
            # not finished within the lock timeout: as good as busy.
            inserted = False
        if inserted:
            return rows
        # A concurrent booking took this host first: try the next one.
    booking.assigned_to_id = None
    raise SlotUnavailable()


def _insert_unless_overlapping(booking: Booking, rows: list[Model], using: str) -> bool:
    """Insert the booking and its rows; False (nothing written) when it would overlap one of
    its host's active bookings."""
    if connections[using].vendor != "postgresql":
        booking.save(force_insert=True, using=using)  # an overlap raises IntegrityError
        for model, same in itertools.groupby(rows, key=type):
            model.objects.using(using).bulk_create(list(same))
        return True
    return insert_with_rows(booking, rows, using=using, on_conflict=OVERLAP_CONSTRAINT)


# The table's name as a word: not the start of another relation's (bookings_bookinghistory,
# bookings_booking_pkey).
_BOOKING_TABLE = re.compile(rf"\b{re.escape(Booking._meta.db_table)}\b")


def _waited_on_a_booking(exc: OperationalError) -> bool:
    """A lock timeout waiting on another transaction's booking: its host counts as busy.
    Not one that waited on another relation's row or index, which PostgreSQL names in the
    error's context (a row of ``rows``: an Idempotency-Key claimed by a concurrent request,
    which the caller answers): that one is raised. SQLite's busy timeout names nothing."""
    if not is_lock_timeout(exc):
        return False
    context = getattr(getattr(exc.__cause__, "diag", None), "context", None)
    return not context or _BOOKING_TABLE.search(context) is not None


def is_overlap_violation(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == OVERLAP_CONSTRAINT
