from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper


# Module level, so Meta's constraints can be built from it; EmailOutbox.Status is the name to use.
class EmailOutboxStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after MAX_ATTEMPTS
    # Never sent: a later email of the same booking replaced it before it went out (a
    # confirmation still unsent when the booking is cancelled, rescheduled or re-addressed).
    SUPERSEDED = "superseded"


class EmailOutbox(models.Model):
    """One email to send, written in the same transaction as the change that causes it.

    A task is enqueued after commit; a periodic relay re-enqueues rows whose task was lost.
    ``event_key`` is unique: one event is never queued, so never sent, twice.
    """

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation"
        AWAITING_CONFIRMATION = "awaiting_confirmation"
        CANCELLATION = "cancellation"

    Status = EmailOutboxStatus

    booking = models.ForeignKey("bookings.Booking", on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    event_key = models.CharField(max_length=120, unique=True)
    to_email = models.EmailField()
    # The booking's calendar SEQUENCE when this email was queued: the .ics describes the
    # booking as of that event, even if a later change has moved the booking on.
    ical_sequence = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "email (outbox)"
        verbose_name_plural = "email outbox"
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status=EmailOutboxStatus.PENDING),
                name="outbox_pending_due",
            ),
            # The admin's search by address: an exact, case-insensitive match, which Django
            # writes as UPPER(to_email) = UPPER(%s) on PostgreSQL.
            models.Index(Upper("to_email"), name="outbox_to_email_upper"),
            # The admin's status filter, newest first (the list orders by -id): "failed" is
            # rare, and without it both the page and its capped count would read every row.
            models.Index(fields=["status", "id"], name="outbox_status_id"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=EmailOutboxStatus.values), name="outbox_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=EmailOutboxStatus.SENT, sent_at__isnull=False)
                | ~Q(status=EmailOutboxStatus.SENT),
                name="outbox_sent_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.to_email} ({self.status})"
