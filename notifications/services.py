"""The email outbox: queue in the caller's transaction, send from a task, relay what was lost."""

import contextlib
import functools
import logging
import random
import smtplib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from bookings_project import broker
from bookings_project.outage import Outage, is_database_unreachable

from .emails import booking_email_build
from .models import EmailOutbox

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
# How long a worker owns a row it is sending; a worker killed mid-send leaves the row to the
# relay once this has passed (EMAIL_SEND_LEASE_SECONDS, 5 minutes by default).
LEASE = timedelta(seconds=settings.EMAIL_SEND_LEASE_SECONDS)
RETRY_BASE_SECONDS = 30  # the back-off after the first failure; it doubles after each one
# The jitter's source: a module attribute, so a test can put a predictable one in its place.
retry_random = random.Random()  # spreads retries; not a secret
# A sent email whose record the database could not take (a restart under load) is recorded
# again every this many seconds, while the lease keeps the row ours (see _email_sent_record).
SENT_RECORD_RETRY_SECONDS = 1


def email_retry_delay(attempt: int, *, rng: random.Random | None = None) -> timedelta:
    """The wait after failed attempt ``attempt`` (1, 2, …): exponential, with "equal jitter".

    The step is 30 s · 2^(attempt - 1); the wait is half of it plus a random part of the other
    half, so within [step / 2, step]. Rows that failed together (the mail server was down for
    everyone) spread out instead of coming back in one burst, and a wait is never shorter than
    the previous attempt's longest: the back-off still grows.
    """
    step = RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    return timedelta(seconds=step / 2 + (rng or retry_random).uniform(0, step / 2))


def smtp_refusal_is_permanent(exc: BaseException) -> bool:
    """Whether the mail server refused this message for good: a 5xx to MAIL, RCPT or DATA.

    Retrying a 550 "no such user" five more times over a quarter of an hour only delays the
    moment staff see it. A 4xx (greylisting, a full queue), a refused or dropped connection,
    a timeout or a 5xx outside the message's own commands (the greeting, authentication: the
    server or our settings, not this message) may pass, and are retried.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        return 500 <= exc.smtp_code < 600
    return False


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
    row = email_row(booking=booking, kind=kind, event_key=event_key, to_email=to_email, now=now)
    row.save(force_insert=True)
    email_dispatch_on_commit(row)
    return row


def email_row(
    *, booking, kind: str, event_key: str, to_email: str | None = None, now=None
) -> EmailOutbox:
    """The row ``email_queue`` writes, unsaved: for a caller that writes it with the booking
    in one statement (``booking_create``), then calls ``email_dispatch_on_commit``."""
    return EmailOutbox(
        booking=booking,
        kind=kind,
        event_key=event_key,
        to_email=to_email or booking.attendee_email,
        ical_sequence=booking.ical_sequence,
        next_attempt_at=timezone.now() if now is None else now,
    )


def email_dispatch_on_commit(row: EmailOutbox) -> None:
    """Enqueue the saved row's task once its transaction commits (at once in autocommit)."""
    transaction.on_commit(lambda: email_dispatch(outbox_id=row.pk))


def email_supersede(*, booking_id: str) -> int:
    """Drop the booking's unsent emails: a newer event has made them wrong.

    Rows still pending, and rows that failed: a failed row is news overtaken too (resending
    it is refused, see ``email_resend``), and left failed it would stay in staff's failed list
    and in the consistency check's violations forever. Its ``last_error`` is kept. A row a
    worker is handing to the mail server right now is pending too, and still goes out (its
    final update records it as sent); so the calendar part of every later email carries a
    higher SEQUENCE, and a calendar keeps the newer one whatever order they arrive in.
    """
    return EmailOutbox.objects.filter(
        booking_id=booking_id,
        status__in=[EmailOutbox.Status.PENDING, EmailOutbox.Status.FAILED],
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


def email_dispatch(*, outbox_id: int) -> bool:
    """Hand the row to a worker; True when the broker took it. A broker that is down loses
    nothing: the row stays pending and the relay enqueues it once the broker is back. After a
    failed publish, this process leaves the broker alone for a pause
    (``BROKER_RETRY_SECONDS``, doubling): a request then pays nothing for a broker that is
    down, not even a connect timeout."""
    from .tasks import send_email_task

    outage = _broker_outage(settings.CELERY_BROKER_URL)
    if not outage.skip():
        try:
            broker.publish(send_email_task, outbox_id=outbox_id)  # one LPUSH
        except Exception as exc:
            outage.failed(exc)
        else:
            outage.succeeded()
            return True
    outage.missed()
    logger.info("Email %s left pending for the relay (broker unreachable)", outbox_id)
    return False


def email_send(*, outbox_id: int) -> bool:
    """Send one queued email. Returns True when this call sent it.

    At least once, never twice on purpose: one worker at a time owns the row (the claim and
    its lease), and the row is recorded sent as soon as the server has taken the message (its
    250 to the end of DATA), before the connection is even closed. Only a worker killed, or
    a connection lost, between the server taking the message and that record sends it again,
    with the same Message-ID (``emails.outbox_message_id``).

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
    mail = get_connection()  # the SMTP connection (the module's `connection` is the database's)
    try:
        message = booking_email_build(row)
        mail.open()
        # The connection is ours (opened above): send_messages leaves it open, so the record
        # below comes straight after the server's reply, not after QUIT.
        if mail.send_messages([message]) != 1:
            raise smtplib.SMTPException("the email backend sent nothing")
    except Exception as exc:
        with contextlib.suppress(Exception):
            mail.close()
        return _email_send_failed(row, exc, now)
    _email_sent_record(row, now)
    with contextlib.suppress(Exception):  # the message is the server's now: QUIT is courtesy
        mail.close()
    logger.info("Sent email %s (%s) to booking %s", row.pk, row.kind, row.booking_id)
    return True


def _email_sent_record(row: EmailOutbox, now: datetime) -> None:
    """Record a message the server has taken as sent, retrying while the database is
    unreachable. Until the first half of the lease is over no other worker can claim the row,
    so a record that lands by then costs no second copy; without the retry, every send in
    flight when PostgreSQL restarted went out again after its lease (or its row, pending,
    was superseded by the booking's next change although its message had gone out). Past
    that, the error propagates and the row is sent again after its lease: the duplicate the
    README documents.
    """
    give_up_at = now + LEASE / 2
    while True:
        try:
            EmailOutbox.objects.filter(pk=row.pk).update(
                status=EmailOutbox.Status.SENT, sent_at=now, last_error=""
            )
            return
        except (OperationalError, InterfaceError) as exc:
            if not is_database_unreachable(exc) or timezone.now() >= give_up_at:
                raise
            logger.warning(
                "Email %s was sent but the database is unreachable (%s): recording it again",
                row.pk,
                type(exc).__name__,
            )
            with contextlib.suppress(Exception):
                connection.close()  # the next query connects afresh
            time.sleep(SENT_RECORD_RETRY_SECONDS)


def _email_send_failed(row: EmailOutbox, exc: Exception, now: datetime) -> bool:
    """Record a failed attempt: retry after the back-off, or give up (FAILED, for staff)."""
    permanent = smtp_refusal_is_permanent(exc)
    failed = permanent or row.attempts >= MAX_ATTEMPTS
    # Only while still pending: a row superseded meanwhile stays superseded.
    EmailOutbox.objects.filter(pk=row.pk, status=EmailOutbox.Status.PENDING).update(
        status=EmailOutbox.Status.FAILED if failed else EmailOutbox.Status.PENDING,
        last_error=f"{type(exc).__name__}: {exc}"[:2000],
        next_attempt_at=now + email_retry_delay(row.attempts),
    )
    logger.warning(
        "Email %s failed (attempt %s%s)",
        row.pk,
        row.attempts,
        ", refused for good" if permanent else ", giving up" if failed else "",
        exc_info=True,
    )
    return False


# The relay hands rows to the broker in batches of this many (one query each), until none is
# left or its time is up: beat runs it every minute, and a backlog of thousands after an
# outage goes out in one run, not 500 a minute.
RELAY_BATCH = 500
RELAY_SECONDS = 45


def email_relay(*, batch: int = RELAY_BATCH, seconds: float = RELAY_SECONDS) -> int:
    """Re-enqueue pending rows whose task never ran (broker down, worker killed): every row
    due, oldest first, batch after batch (walked by ``(next_attempt_at, id)``: a row handed
    over stays pending until its worker claims it), for ``seconds`` at most. Stops at once
    when the broker refuses one: the rest wait for the next run. Returns how many it handed
    to the broker."""
    due = timezone.now() - relay_grace()
    deadline = time.monotonic() + seconds
    pending = EmailOutbox.objects.filter(
        status=EmailOutbox.Status.PENDING, next_attempt_at__lte=due
    ).order_by("next_attempt_at", "pk")
    relayed, after = 0, None
    while True:
        page = pending
        if after is not None:
            at, pk = after
            page = page.filter(Q(next_attempt_at__gt=at) | Q(next_attempt_at=at, pk__gt=pk))
        rows = list(page.values_list("next_attempt_at", "pk")[:batch])
        for _, outbox_id in rows:
            if not email_dispatch(outbox_id=outbox_id):
                return relayed
            relayed += 1
        if len(rows) < batch or time.monotonic() > deadline:
            return relayed
        after = rows[-1]


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
