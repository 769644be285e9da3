"""Sample bookings for trying the admin: every status, a rescheduled pair, some history.

Opt-in (``seed_demo`` itself makes no bookings, so black-box clients start from empty
calendars). Run after ``seed_demo``; a second run adds nothing. Future bookings are made by
the services, as the API would; two bookings that started an hour ago (so complete and
no-show can be tried) are written directly, since no client can book in the past.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from bookings.ids import ulid
from bookings.models import Booking, BookingHistory, EventType, Team
from bookings.services import (
    Actor,
    Attendee,
    booking_create,
    booking_reschedule,
    booking_transition,
)
from notifications.models import EmailOutbox

DEMO_TAG = {"demo": True}
ATTENDEES = [
    ("Marie Curie", "marie@example.com"),
    ("Rosalind Franklin", "rosalind@example.com"),
    ("Niels Bohr", "niels@example.com"),
    ("Lise Meitner", "lise@example.com"),
    ("Enrico Fermi", "enrico@example.com"),
    ("Dorothy Hodgkin", "dorothy@example.com"),
    ("Paul Dirac", "paul@example.com"),
]


class Command(BaseCommand):
    help = "Add sample bookings in every status to the demo teams (once), for the admin."

    @transaction.atomic
    def handle(self, *args, **options):
        teams = list(Team.objects.filter(slug__in=["acme-sales", "globex-support"]))
        if not teams:
            raise CommandError("Run `manage.py seed_demo` first: there are no demo teams.")
        made = 0
        for offset, team in enumerate(sorted(teams, key=lambda t: t.slug)):
            if Booking.objects.filter(team=team, metadata__demo=True).exists():
                continue
            made += self._team(team, day=14 + offset)
        self.stdout.write(f"Added {made} sample bookings." if made else "Already there.")

    def _team(self, team: Team, day: int) -> int:
        intro = EventType.objects.get(team=team, slug="intro-call")
        deep = EventType.objects.get(team=team, slug="deep-dive")
        actor = Actor.system()
        base = (timezone.now() + timedelta(days=day)).replace(
            hour=9, minute=0, second=0, microsecond=0
        )

        def create(event_type, hours, who):
            name, email = ATTENDEES[who]
            return booking_create(
                team=team,
                event_type=event_type,
                start_time=base + timedelta(hours=hours),
                attendee=Attendee(name=name, email=email, timezone="Europe/Paris"),
                actor=actor,
                metadata=DEMO_TAG,
            )

        create(intro, 0, 0)  # SCHEDULED
        create(deep, 1, 1)  # PENDING_CONFIRMATION
        confirmed = create(deep, 3, 2)
        booking_transition(booking=confirmed, action="confirm", actor=actor)
        cancelled = create(intro, 5, 3)
        booking_transition(
            booking=cancelled,
            action="cancel",
            actor=actor,
            cancelled_by="attendee",
            reason="Double-booked on my side.",
        )
        moved = create(intro, 6, 4)
        booking_reschedule(
            booking=moved,
            start_time=base + timedelta(days=1, hours=2),
            actor=actor,
            reason="The attendee asked for the next day.",
        )
        self._started(intro, 5, host_index=1)  # deep-dive's host is the first
        self._started(deep, 6, host_index=0)
        return 8  # the reschedule made one more

    def _started(self, event_type: EventType, who: int, host_index: int) -> None:
        """A SCHEDULED booking that began an hour ago, as if booked last week."""
        now = timezone.now()
        start = now.replace(second=0, microsecond=0) - timedelta(hours=1)
        host = list(event_type.hosts.order_by("host_links__id"))[host_index]
        name, email = ATTENDEES[who]
        booking = Booking.objects.create(
            team_id=event_type.team_id,
            event_type=event_type,
            assigned_to=host,
            status=Booking.Status.SCHEDULED,
            start_time=start,
            end_time=start + timedelta(minutes=event_type.duration),
            blocked_start=start - timedelta(minutes=event_type.buffer_before),
            blocked_end=start + timedelta(minutes=event_type.duration + event_type.buffer_after),
            attendee_name=name,
            attendee_email=email,
            metadata=DEMO_TAG,
            ical_uid=f"{ulid()}@bookings",
            created_at=now - timedelta(days=7),
            updated_at=now - timedelta(days=7),
        )
        # What a create a week ago would have written (bookings.services.booking_create), so
        # that the demo data passes `manage.py check_consistency`: born DRAFT, routed to the
        # host, and its confirmation email (sent then).
        created_at = booking.created_at
        BookingHistory.objects.bulk_create(
            [
                BookingHistory(
                    booking=booking,
                    at=created_at,
                    action=BookingHistory.Action.CREATED,
                    from_status="",
                    to_status=Booking.Status.DRAFT,
                    actor_type=BookingHistory.ActorType.SYSTEM,
                    changes={},
                ),
                BookingHistory(
                    booking=booking,
                    at=created_at,
                    action=BookingHistory.Action.ROUTED,
                    from_status=Booking.Status.DRAFT,
                    to_status=booking.status,
                    actor_type=BookingHistory.ActorType.SYSTEM,
                    changes={"assigned_to_id": [None, host.pk]},
                ),
            ]
        )
        EmailOutbox.objects.create(
            booking=booking,
            kind=EmailOutbox.Kind.CONFIRMATION,
            event_key=f"{booking.id}:created",
            to_email=booking.attendee_email,
            ical_sequence=booking.ical_sequence,
            status=EmailOutbox.Status.SENT,
            attempts=1,
            created_at=created_at,
            next_attempt_at=created_at,
            sent_at=created_at,
        )
