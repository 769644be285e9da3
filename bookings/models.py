from datetime import timedelta

from django.contrib.postgres.fields import RangeBoundary, RangeOperators
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.functional import classproperty

from .db import PostgresExclusionConstraint, TsTzRange
from .ids import IdFactory

ID_LENGTH = 40
MAX_MINUTES = 24 * 60  # the longest duration, and the longest buffer on either side
MAX_BLOCKED_SPAN = timedelta(minutes=3 * MAX_MINUTES)  # the most one booking can block


def blocked_range(start="blocked_start", end="blocked_end") -> TsTzRange:
    """A booking's blocked time as PostgreSQL's half-open range: what the exclusion constraint
    compares and its GiST index holds, so a query asking with this expression (of the columns,
    or of a slot's bounds) can read that index."""
    return TsTzRange(start, end, RangeBoundary())


class Team(models.Model):
    id = models.CharField(
        primary_key=True, max_length=ID_LENGTH, default=IdFactory("team"), editable=False
    )
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        BOOKINGS_READ = "bookings:read"
        BOOKINGS_CREATE = "bookings:create"
        BOOKINGS_UPDATE = "bookings:update"
        BOOKINGS_CANCEL = "bookings:cancel"
        BOOKINGS_RESCHEDULE = "bookings:reschedule"
        BOOKINGS_TRANSITION = "bookings:transition"
        EVENT_TYPES_READ = "event-types:read"
        TEAM_READ = "team:read"

    id = models.CharField(
        primary_key=True, max_length=ID_LENGTH, default=IdFactory("key"), editable=False
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True)
    # The first characters of the secret, to tell keys apart in the admin; never enough to use.
    prefix = models.CharField(max_length=20, editable=False)
    # SHA-256 of the whole secret. Keys carry 256 random bits, so a fast hash is safe here.
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    is_test = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # When a request last authenticated with the key; written at most once a minute per key.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or self.team_id})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def clean(self):
        if not isinstance(self.scopes, list) or not set(self.scopes) <= set(self.Scope.values):
            raise ValidationError({"scopes": f"A list drawn from: {', '.join(self.Scope.values)}."})


class TeamMember(models.Model):
    id = models.CharField(
        primary_key=True, max_length=ID_LENGTH, default=IdFactory("mem"), editable=False
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="members")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    timezone = models.CharField(max_length=64, default="UTC")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                "team",
                Lower("email"),
                name="member_unique_email_per_team",
                violation_error_message="A member of this team already has this email address.",
            ),
            # The target of the (assigned_to, team) foreign key of Booking: same team only.
            models.UniqueConstraint(fields=["id", "team"], name="member_id_team_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def clean(self):
        from .validators import validate_timezone

        validate_timezone(self.timezone)


# The choices a model's Meta constraints are built from live at module level (a nested class
# is out of Meta's reach) and are aliased inside the model: EventType.SchedulingType, ...
class EventTypeSchedulingType(models.TextChoices):
    SOLO = "SOLO"
    ROUND_ROBIN = "ROUND_ROBIN"


class EventType(models.Model):
    SchedulingType = EventTypeSchedulingType

    id = models.CharField(
        primary_key=True, max_length=ID_LENGTH, default=IdFactory("evt"), editable=False
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="event_types")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    duration = models.PositiveIntegerField(
        help_text="Minutes.", validators=[MinValueValidator(1), MaxValueValidator(MAX_MINUTES)]
    )
    buffer_before = models.PositiveIntegerField(
        default=0, help_text="Minutes.", validators=[MaxValueValidator(MAX_MINUTES)]
    )
    buffer_after = models.PositiveIntegerField(
        default=0, help_text="Minutes.", validators=[MaxValueValidator(MAX_MINUTES)]
    )
    minimum_booking_notice = models.PositiveIntegerField(default=0, help_text="Minutes.")
    scheduling_type = models.CharField(max_length=20, choices=SchedulingType.choices)
    requires_confirmation = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    hosts = models.ManyToManyField(TeamMember, through="EventTypeHost", related_name="event_types")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "slug"], name="event_type_unique_slug_per_team"
            ),
            # The target of the (event_type, team) foreign key of Booking: same team only.
            models.UniqueConstraint(fields=["id", "team"], name="event_type_id_team_unique"),
            models.CheckConstraint(
                condition=Q(duration__gt=0, duration__lte=MAX_MINUTES),
                name="event_type_duration_range",
            ),
            models.CheckConstraint(
                condition=Q(buffer_before__lte=MAX_MINUTES, buffer_after__lte=MAX_MINUTES),
                name="event_type_buffers_range",
            ),
            models.CheckConstraint(
                condition=Q(scheduling_type__in=EventTypeSchedulingType.values),
                name="event_type_scheduling_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EventTypeHost(models.Model):
    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="host_links")
    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="host_links")

    class Meta:
        ordering = ["id"]  # the order hosts were added: a SOLO event type's host is the first
        constraints = [
            models.UniqueConstraint(fields=["event_type", "member"], name="event_type_host_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.member} hosts {self.event_type}"

    def clean(self):
        if self.event_type_id and self.member_id and self.event_type.team_id != self.member.team_id:
            raise ValidationError("A host must belong to the event type's team.")


class BookingStatus(models.TextChoices):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    PENDING_CONFIRMATION = "PENDING_CONFIRMATION"
    RESCHEDULED = "RESCHEDULED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"

    # Named groups. ACTIVE bookings occupy their host's calendar; TERMINAL ones never change
    # again. Descriptors (so not members) rather than enum.nonmember(frozenset({DRAFT, ...})):
    # in the class body DRAFT is still the bare string "DRAFT", and the groups hold members.
    @classproperty
    def ACTIVE(cls) -> frozenset["BookingStatus"]:
        return frozenset({cls.DRAFT, cls.SCHEDULED, cls.PENDING_CONFIRMATION, cls.RESCHEDULED})

    @classproperty
    def TERMINAL(cls) -> frozenset["BookingStatus"]:
        return frozenset({cls.COMPLETED, cls.CANCELLED, cls.NO_SHOW})


# Sorted: the order migration 0001 wrote for the partial index and the exclusion constraint.
_ACTIVE_VALUES = sorted(str(status) for status in BookingStatus.ACTIVE)


class BookingCancelledBy(models.TextChoices):
    HOST = "host"
    ATTENDEE = "attendee"
    API = "api"


class Booking(models.Model):
    Status = BookingStatus
    CancelledBy = BookingCancelledBy

    id = models.CharField(
        primary_key=True, max_length=ID_LENGTH, default=IdFactory("bkg"), editable=False
    )
    # No index of their own: the indexes below that lead with them serve their lookups
    # (migration 0010), and each index is one more insertion per booking.
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, related_name="bookings", db_index=False
    )
    event_type = models.ForeignKey(
        EventType, on_delete=models.PROTECT, related_name="bookings", db_index=False
    )
    assigned_to = models.ForeignKey(
        TeamMember, on_delete=models.PROTECT, related_name="bookings", null=True, blank=True
    )
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.DRAFT)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    # The stretch of the host's calendar this booking occupies: the slot widened by the event
    # type's buffers, copied at booking time so a later change of buffers moves nothing.
    blocked_start = models.DateTimeField(editable=False)
    blocked_end = models.DateTimeField(editable=False)

    attendee_name = models.CharField(max_length=200)
    attendee_email = models.EmailField()
    attendee_phone = models.CharField(max_length=16, blank=True)
    attendee_timezone = models.CharField(max_length=64, blank=True)

    custom_fields = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    rescheduled_from = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    rescheduled_to = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    cancelled_by = models.CharField(max_length=16, choices=CancelledBy.choices, blank=True)
    # null = no reason given, which the API distinguishes from an empty one.
    cancellation_reason = models.TextField(null=True, blank=True)  # noqa: DJ001
    cancelled_at = models.DateTimeField(null=True, blank=True)

    # Kept across reschedules so the attendee's calendar moves the event instead of adding one.
    ical_uid = models.CharField(max_length=100, editable=False)
    ical_sequence = models.PositiveIntegerField(default=0, editable=False)

    # Set by the services (one clock reading per change), so a new booking's two are equal.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["start_time", "id"]
        # The lifecycle's moves, one permission each, for staff in the admin (the API checks
        # scopes instead). ``transitions.Transition.permission`` names one per action.
        permissions = [
            ("confirm_booking", "Can confirm a booking"),
            ("cancel_booking", "Can cancel a booking"),
            ("reschedule_booking", "Can reschedule a booking"),
            ("complete_booking", "Can complete a booking or mark it no-show"),
        ]
        indexes = [
            # The list's keyset order, and one per equality filter in front of it.
            models.Index(fields=["team", "start_time", "id"], name="booking_team_start"),
            models.Index(
                fields=["team", "assigned_to", "start_time", "id"], name="booking_team_host_start"
            ),
            models.Index(
                fields=["team", "event_type", "start_time", "id"], name="booking_team_evt_start"
            ),
            models.Index(
                F("team"),
                Lower("attendee_email"),
                F("start_time"),
                F("id"),
                name="booking_team_email_start",
            ),
            # The admin: its list across teams (newest first, by status), its exact searches.
            models.Index(fields=["start_time", "id"], name="booking_start"),
            models.Index(fields=["status", "start_time", "id"], name="booking_status_start"),
            models.Index(Lower("attendee_email"), name="booking_email_lower"),
            models.Index(Lower("attendee_name"), name="booking_name_lower"),
            # Routing: a host's active bookings near a time; least recently assigned host.
            models.Index(
                fields=["assigned_to", "blocked_start"],
                condition=Q(status__in=_ACTIVE_VALUES),
                name="booking_host_active_blocked",
            ),
            models.Index(
                fields=["event_type", "assigned_to", "created_at"], name="booking_evt_host_created"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gt=F("start_time")), name="booking_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(blocked_start__lte=F("start_time"), blocked_end__gte=F("end_time")),
                name="booking_blocked_covers_slot",
            ),
            models.CheckConstraint(
                condition=Q(status__in=BookingStatus.values), name="booking_status_valid"
            ),
            # A host from routing on; a DRAFT cancelled before it was routed never had one.
            models.CheckConstraint(
                condition=Q(status__in=[BookingStatus.DRAFT, BookingStatus.CANCELLED])
                | Q(assigned_to__isnull=False),
                name="booking_assigned_unless_draft",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status=BookingStatus.CANCELLED, cancelled_at__isnull=False)
                    & Q(cancelled_by__in=BookingCancelledBy.values)
                )
                | (
                    ~Q(status=BookingStatus.CANCELLED)
                    & Q(cancelled_at__isnull=True, cancelled_by="")
                ),
                name="booking_cancellation_iff_cancelled",
            ),
            PostgresExclusionConstraint(
                name="booking_no_overlap_per_host",
                expressions=[
                    ("assigned_to", RangeOperators.EQUAL),
                    (blocked_range(), RangeOperators.OVERLAPS),
                ],
                condition=Q(status__in=_ACTIVE_VALUES),
            ),
        ]

    def __str__(self) -> str:
        return self.id


class BookingHistoryAction(models.TextChoices):
    CREATED = "created"
    ROUTED = "routed"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"
    ATTENDEE_UPDATED = "attendee_updated"


class BookingHistoryActorType(models.TextChoices):
    API_KEY = "api_key"
    STAFF = "staff"
    SYSTEM = "system"


class BookingHistory(models.Model):
    Action = BookingHistoryAction
    ActorType = BookingHistoryActorType

    # Served by ``history_booking_at`` (migration 0010).
    booking = models.ForeignKey(
        Booking, on_delete=models.CASCADE, related_name="history", db_index=False
    )
    # Set by the services, from the one clock reading of the change it records.
    at = models.DateTimeField(default=timezone.now, editable=False)
    action = models.CharField(max_length=32, choices=Action.choices)
    from_status = models.CharField(max_length=32, choices=BookingStatus.choices, blank=True)
    to_status = models.CharField(max_length=32, choices=BookingStatus.choices)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=ID_LENGTH, blank=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "booking history"
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["booking", "at", "id"], name="history_booking_at")]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=BookingHistoryAction.values), name="history_action_valid"
            ),
            models.CheckConstraint(
                condition=Q(from_status__in=["", *BookingStatus.values]),
                name="history_from_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(to_status__in=BookingStatus.values), name="history_to_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(actor_type__in=BookingHistoryActorType.values),
                name="history_actor_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.booking_id} {self.action}"


class IdempotencyKey(models.Model):
    """A client's ``Idempotency-Key``, per team, holding the first successful response.

    The row is inserted in the same transaction as the booking it produced, so either both
    commit or neither does: a failed request leaves the key free, and a concurrent duplicate
    waits on the unique index until the first commits, then replays it.
    """

    # Served by the unique (team, key) index (migration 0010).
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    response_location = models.CharField(max_length=200, blank=True)
    booking = models.ForeignKey(
        Booking, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "key"], name="idempotency_key_unique_per_team"),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="idempotency_key_expires_later"
            ),
        ]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_key_expires")]

    def __str__(self) -> str:
        return f"{self.team_id}:{self.key}"
