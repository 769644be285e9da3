"""The data's invariants, checked after the fact: what a soak (or an operator) asks of the whole
database once the traffic has stopped.

    report = consistency_check(delivered=[...])   # the messages an SMTP sink received, if known
    report.ok, report.violations, report.counted

Each rule names one promise of the service (README, "Faults and hostile input"):

- ``overlap``: no host has two active bookings whose blocked stretches overlap (on PostgreSQL
  the exclusion constraint holds this; the check sees it on any database, and after any SQL);
- ``history``: every booking's history is a chain of moves the lifecycle table
  (``bookings.transitions``) allows, starting at its birth (a create or a reschedule), each
  entry starting where the previous one ended, the last ending at the booking's status;
- ``email_event``: every history entry that emails the attendee has its one outbox row, and
  every outbox row has its entry;
- ``email_unsent``: every outbox row is SENT, or SUPERSEDED by a later email of its booking (or
  by the reschedule that replaced it) — unless ``drained=False``, when PENDING is fine too;
- ``email_delivery``: the messages received are the SENT rows, one each (matched one to one by
  their ``Message-ID``, which is made from the row's event, ``emails.outbox_message_id``;
  messages without one are counted per booking and kind);
- ``idempotency``: every stored ``Idempotency-Key`` response has its booking.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage

from django.db.models import Exists, OuterRef, Q

from notifications.emails import SUBJECTS, outbox_message_id
from notifications.models import EmailOutbox

from .models import Booking, BookingHistory, IdempotencyKey
from .transitions import ATTENDEE_EDITABLE, TRANSITIONS, rescheduled_status

Status = Booking.Status
Action = BookingHistory.Action
RULES = ("overlap", "history", "email_event", "email_unsent", "email_delivery", "idempotency")


@dataclass(frozen=True)
class Violation:
    rule: str  # one of RULES
    subject: str  # the booking, host, outbox row or key concerned
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject}: {self.detail}"


@dataclass(frozen=True)
class DeliveredEmail:
    """One message as a mail server received it."""

    booking_id: str
    kind: str  # an EmailOutbox.Kind, from the Subject
    message_id: str | None = None  # its Message-ID header, when it carries one

    @classmethod
    def from_message(cls, message: EmailMessage) -> "DeliveredEmail":
        subject = str(message["Subject"] or "")
        kind = next(
            (kind for kind, text in SUBJECTS.items() if subject.startswith(text.split("{")[0])),
            "",
        )
        return cls(
            booking_id=str(message["X-Booking-Id"] or ""),
            kind=str(kind),
            message_id=str(message["Message-ID"] or "").strip() or None,
        )


@dataclass
class ConsistencyReport:
    violations: list[Violation] = field(default_factory=list)
    counted: dict[str, int] = field(default_factory=dict)  # what was checked, for the report

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, rule: str, subject, detail: str) -> None:
        self.violations.append(Violation(rule, str(subject), detail))


def _allowed_moves() -> set[tuple[str, str, str]]:
    """Every (action, from_status, to_status) a history entry may record; "" = no status yet."""
    moves = {(Action.CREATED, "", Status.DRAFT)}
    moves |= {
        (Action.ROUTED, Status.DRAFT, to) for to in (Status.SCHEDULED, Status.PENDING_CONFIRMATION)
    }
    for transition in TRANSITIONS.values():
        moves |= {
            (transition.history_action, old, transition.to) for old in transition.allowed_from
        }
    # A reschedule's new booking is born in its status: its first entry has no from_status.
    moves |= {
        (Action.RESCHEDULED, "", rescheduled_status(old))
        for old in TRANSITIONS["reschedule"].allowed_from
    }
    moves |= {(Action.ATTENDEE_UPDATED, status, status) for status in ATTENDEE_EDITABLE}
    return {(str(a), str(f), str(t)) for a, f, t in moves}


_BIRTHS = {Action.CREATED, Action.RESCHEDULED}
_EMAILING = {t.history_action for t in TRANSITIONS.values() if t.email and t.action != "reschedule"}


def _emailing_event_key(booking_id: str, entry) -> str | None:
    """The outbox ``event_key`` the history entry's email was queued under (None: no email);
    as the services in bookings/services.py write them."""
    pk, action, from_status, changes = entry
    if action == Action.CREATED:
        return f"{booking_id}:created"
    if action == Action.RESCHEDULED and not from_status:
        return f"{booking_id}:{Action.RESCHEDULED}"
    if action in _EMAILING:
        return f"{booking_id}:{action}"
    if action == Action.ATTENDEE_UPDATED:
        old, new = (changes or {}).get("attendee.email", [None, None])
        if old and new and old.lower() != new.lower():
            return f"{booking_id}:{Action.ATTENDEE_UPDATED}:{pk}"
    return None


def _check_overlaps(report: ConsistencyReport) -> None:
    active = Q(status__in=Status.ACTIVE)
    clash = Booking.objects.filter(
        active,
        assigned_to=OuterRef("assigned_to"),
        blocked_start__lt=OuterRef("blocked_end"),
        blocked_end__gt=OuterRef("blocked_start"),
    ).exclude(pk=OuterRef("pk"))
    for booking_id, host_id in (
        Booking.objects.filter(active, assigned_to__isnull=False)
        .filter(Exists(clash))
        .order_by("assigned_to", "blocked_start")
        .values_list("id", "assigned_to_id")
    ):
        report.add("overlap", booking_id, f"overlaps another active booking of host {host_id}")


def _check_history(report: ConsistencyReport, statuses: dict[str, str]) -> set[str]:
    """Check each booking's chain; return the event keys its entries emailed under."""
    allowed = _allowed_moves()
    entries: dict[str, list] = defaultdict(list)
    rows = BookingHistory.objects.order_by("booking_id", "at", "id").values_list(
        "booking_id", "id", "action", "from_status", "to_status", "changes"
    )
    for booking_id, pk, action, from_status, to_status, changes in rows.iterator(2000):
        entries[booking_id].append((pk, action, from_status, to_status, changes))
    expected_keys: set[str] = set()
    for booking_id, status in statuses.items():
        chain = entries.pop(booking_id, [])
        if not chain:
            report.add("history", booking_id, "has no history")
            continue
        if chain[0][1] not in _BIRTHS:
            report.add("history", booking_id, f"starts with {chain[0][1]}, not a create")
        previous = None
        for pk, action, from_status, to_status, changes in chain:
            if (action, from_status, to_status) not in allowed:
                report.add(
                    "history",
                    booking_id,
                    f"entry {pk}: {action} {from_status or '-'} -> "
                    f"{to_status} is not in the lifecycle table",
                )
            if previous is not None and from_status != previous:
                report.add(
                    "history",
                    booking_id,
                    f"entry {pk} starts at {from_status or '-'}, "
                    f"the previous one ended at {previous}",
                )
            previous = to_status
            key = _emailing_event_key(booking_id, (pk, action, from_status, changes))
            if key:
                expected_keys.add(key)
        if previous != status:
            report.add("history", booking_id, f"ends at {previous}, the booking is {status}")
    report.counted["history entries"] = rows.count()
    return expected_keys


def _check_emails(
    report: ConsistencyReport,
    expected_keys: set[str],
    rescheduled: set[str],
    drained: bool,
    delivered: list[DeliveredEmail] | None,
) -> None:
    rows = list(
        EmailOutbox.objects.order_by("booking_id", "id").values_list(
            "id", "booking_id", "kind", "event_key", "status"
        )
    )
    by_status = Counter(status for *_, status in rows)
    report.counted.update(
        {f"emails {status}": count for status, count in sorted(by_status.items())}
    )
    keys = {event_key for _, _, _, event_key, _ in rows}
    for key in sorted(expected_keys - keys):
        report.add("email_event", key, "an event that emails has no outbox row")
    for key in sorted(keys - expected_keys):
        report.add("email_event", key, "an outbox row with no event in its booking's history")

    last_of_booking = {booking_id: pk for pk, booking_id, *_ in rows}  # ordered by id
    for pk, booking_id, _, event_key, status in rows:
        if status == EmailOutbox.Status.SENT:
            continue
        if status == EmailOutbox.Status.SUPERSEDED:
            if last_of_booking[booking_id] == pk and booking_id not in rescheduled:
                report.add("email_unsent", pk, f"{event_key} superseded by nothing")
        elif status != EmailOutbox.Status.PENDING or drained:
            report.add("email_unsent", pk, f"{event_key} is {status}")

    if delivered is None:
        return
    sent = [
        (pk, booking_id, kind, event_key)
        for pk, booking_id, kind, event_key, status in rows
        if status == EmailOutbox.Status.SENT
    ]
    report.counted["messages received"] = len(delivered)
    if len(delivered) != len(sent):
        report.add("email_delivery", "all", f"{len(delivered)} messages for {len(sent)} SENT rows")
    if delivered and all(message.message_id is not None for message in delivered):
        received = Counter(message.message_id for message in delivered)
        for pk, _, _, event_key in sent:
            if received.pop(outbox_message_id(EmailOutbox(event_key=event_key)), 0) != 1:
                report.add("email_delivery", pk, "a SENT row not received exactly once")
        for message_id, count in sorted(received.items()):
            report.add("email_delivery", message_id, f"{count} message(s) for no SENT row")
        return
    expected = Counter((booking_id, kind) for _, booking_id, kind, _ in sent)
    received = Counter((message.booking_id, message.kind) for message in delivered)
    for booking_id, kind in sorted(expected.keys() | received.keys()):
        if expected[booking_id, kind] != received[booking_id, kind]:
            report.add(
                "email_delivery",
                booking_id,
                f"{received[booking_id, kind]} {kind} message(s) for "
                f"{expected[booking_id, kind]} SENT row(s)",
            )


def _check_idempotency_keys(report: ConsistencyReport) -> None:
    keys = IdempotencyKey.objects.all()
    report.counted["idempotency keys"] = keys.count()
    for pk, key, status in keys.filter(
        Q(booking__isnull=True) | Q(response_status__isnull=True)
    ).values_list("pk", "key", "response_status"):
        what = "no stored response" if status is None else "no booking"
        report.add("idempotency", pk, f"key {key!r} has {what}")


def consistency_check(
    *, drained: bool = True, delivered: Iterable[DeliveredEmail] | None = None
) -> ConsistencyReport:
    """Check every rule over the whole database (reads only; run it with the traffic stopped:
    rows committed during the check may be reported half-written).

    ``drained``: the email queue is expected empty (a soak after its drain); False for a live
    service, whose pending rows are on their way. ``delivered``: the messages a mail server
    received, to hold against the SENT rows (None: not checked).
    """
    report = ConsistencyReport()
    bookings = dict(Booking.objects.values_list("id", "status"))
    rescheduled = set(
        Booking.objects.filter(rescheduled_to__isnull=False).values_list("id", flat=True)
    )
    report.counted["bookings"] = len(bookings)
    _check_overlaps(report)
    expected_keys = _check_history(report, bookings)
    _check_emails(
        report,
        expected_keys,
        rescheduled,
        drained,
        None if delivered is None else list(delivered),
    )
    _check_idempotency_keys(report)
    return report
