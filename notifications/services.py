"""The email outbox: queue in the caller's transaction, send from a task, relay what was lost."""

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from bookings_project.outage import Outage

from .emails import booking_email_build
from .models import EmailOutbox

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
LEASE = timedelta(minutes=5)  # how long a worker owns a row it is sending
# After a publish fails, how long a process leaves the broker alone (its rows wait for the
# relay): 1 s, doubling while it stays down, at most 30 s. A broker that hangs rather than
# refuses costs the one request that tries it two 2 s socket timeouts.
BROKER_RETRY_SECONDS = 1.0
BROKER_MAX_RETRY_SECONDS = 30.0


def relay_grace() -> timedelta:
    """How long the after-commit task gets before the relay steps in (default a minute)."""
    return timedelta(seconds=settings.EMAIL_RELAY_GRACE_SECONDS)


def email_queue(
    *,
    booking,
    kind: str,
    event_key: str,
    to_email: str | None = None,
    now: datetime | None = None,
    supersede: bool = True,
) -> EmailOutbox:
    """Write the email row in the current transaction; enqueue its task once that commits.

    ``now`` is the caller's clock reading for the change that causes the email: due at once.
    An email describes the booking as of the event that queued it, so it supersedes the
    booking's emails still unsent: a confirmation that has not gone out by the time the
    booking is cancelled, rescheduled or re-addressed is dropped, never sent late over the
    newer news (see ``email_supersede``). A new booking has none: ``supersede=False``.
    """
    if supersede:
        email_supersede(booking_id=booking.pk)
    row = EmailOutbox.objects.create(
        booking=booking,
        kind=kind,
        event_key=event_key,
        to_email=to_email or booking.attendee_email,
        ical_sequence=booking.ical_sequence,
        next_attempt_at=timezone.now() if now is None else now,
    )
    transaction.on_commit(lambda: email_dispatch(outbox_id=row.pk))
    return row


def email_supersede(*, booking_id: str) -> int:
    """Drop the booking's unsent emails: a newer event has made them wrong.

    Only rows still pending are touched. A row a worker is handing to the mail server right
    now is pending too, and still goes out (its final update records it as sent); so the
    calendar part of every later email carries a higher SEQUENCE, and a calendar keeps the
    newer one whatever order they arrive in.
    """
    return EmailOutbox.objects.filter(
        booking_id=booking_id, status=EmailOutbox.Status.PENDING
    ).update(status=EmailOutbox.Status.SUPERSEDED)


@functools.cache
def _broker_outage(broker_url: str) -> Outage:
    # One per broker URL: a test's unreachable broker says nothing about the real one.
    return Outage(
        logger,
        "Broker",
        consequence="emails stay pending in the outbox until the relay enqueues them",
        retry_seconds=BROKER_RETRY_SECONDS,
        max_retry_seconds=BROKER_MAX_RETRY_SECONDS,
    )


def email_dispatch(*, outbox_id: int) -> None:
    """Hand the row to a worker. A broker that is down loses nothing: the row stays pending
    and the relay enqueues it once the broker is back. After a failed publish, this process
    leaves the broker alone for a pause (``BROKER_RETRY_SECONDS``, doubling): a request then
    pays nothing for a broker that is down, not even a connect timeout."""
    from .tasks import send_email_task

    outage = _broker_outage(settings.CELERY_BROKER_URL)
    if not outage.skip():
        try:
            send_email_task.delay(outbox_id=outbox_id)
        except Exception as exc:
            outage.failed(exc)
        else:
            outage.succeeded()
            return
    outage.missed()
    logger.info("Email %s left pending for the relay (broker unreachable)", outbox_id)


def email_send(*, outbox_id: int) -> bool:
    """Send one queued email, at most once. Returns True when this call sent it.

    One clock reading: the claim's time is also the failure's back-off base and ``sent_at``.
    """
    now = timezone.now()
    # Claim the row: only one worker gets it, and only while it is pending and due.
    claimed = EmailOutbox.objects.filter(
        pk=outbox_id, status=EmailOutbox.Status.PENDING, next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
    if not claimed:
        return False
    row = EmailOutbox.objects.select_related("booking", "booking__event_type").get(pk=outbox_id)
    try:
        booking_email_build(row).send()
    except Exception as exc:
        failed = row.attempts >= MAX_ATTEMPTS
        # Only while still pending: a row superseded meanwhile stays superseded.
        EmailOutbox.objects.filter(pk=row.pk, status=EmailOutbox.Status.PENDING).update(
            status=EmailOutbox.Status.FAILED if failed else EmailOutbox.Status.PENDING,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=now + timedelta(seconds=30 * 2 ** (row.attempts - 1)),
        )
        logger.warning("Email %s failed (attempt %s)", row.pk, row.attempts, exc_info=True)
        return False
    EmailOutbox.objects.filter(pk=row.pk).update(
        status=EmailOutbox.Status.SENT, sent_at=now, last_error=""
    )
    logger.info("Sent email %s (%s) to booking %s", row.pk, row.kind, row.booking_id)
    return True


def email_relay(*, limit: int = 500) -> int:
    """Re-enqueue pending rows whose task never ran (broker down, worker killed)."""
    due = timezone.now() - relay_grace()
    ids = list(
        EmailOutbox.objects.filter(status=EmailOutbox.Status.PENDING, next_attempt_at__lte=due)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for outbox_id in ids:
        email_dispatch(outbox_id=outbox_id)
    return len(ids)


@dataclass(frozen=True)
class EmailResendResult:
    queued: int  # failed rows set back to pending, each dispatched after commit
    not_failed: int  # pending, sent or superseded: left alone
    outdated: int  # failed, but their booking has changed since: resending would tell old news


def email_resend(*, outbox_ids: Iterable[int]) -> EmailResendResult:
    """Give failed emails a fresh round of attempts, through the outbox (never a direct send).

    Only FAILED rows move, by an UPDATE conditional on that status, on rows locked first:
    two staff resending at once queue each row once. ``last_error`` stays until the next
    attempt replaces it.

    A failed email that is no longer its booking's latest news is not resent: every change
    that emails the attendee raises the booking's calendar SEQUENCE (and a reschedule moves
    on to a new booking), so a row whose SEQUENCE is behind its booking's, or whose booking
    was rescheduled, would tell the attendee something already overtaken ("confirmed" after
    "cancelled") — what ``email_supersede`` prevents for pending rows. The booking rows are
    locked too (as the booking services lock them), so a change racing the resend is either
    seen here or supersedes the row this set back to pending.
    """
    ids = set(outbox_ids)
    now = timezone.now()
    with transaction.atomic():
        failed = list(
            EmailOutbox.objects.select_for_update()
            .select_related("booking")
            .filter(pk__in=ids, status=EmailOutbox.Status.FAILED)
            .order_by("booking_id", "pk")
            .only("pk", "ical_sequence", "booking__ical_sequence", "booking__rescheduled_to")
        )
        current = [
            row.pk
            for row in failed
            if row.ical_sequence == row.booking.ical_sequence
            and row.booking.rescheduled_to_id is None
        ]
        queued = EmailOutbox.objects.filter(
            pk__in=current, status=EmailOutbox.Status.FAILED
        ).update(status=EmailOutbox.Status.PENDING, attempts=0, next_attempt_at=now)
        for outbox_id in current:
            transaction.on_commit(lambda outbox_id=outbox_id: email_dispatch(outbox_id=outbox_id))
    logger.info("Resending %s failed email(s)", queued)
    return EmailResendResult(
        queued=queued, not_failed=len(ids) - len(failed), outdated=len(failed) - len(current)
    )
