from datetime import timedelta

import factory
from django.utils import timezone

from bookings.ids import new_id
from bookings.models import Booking, EventType, EventTypeHost, Team, TeamMember


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class TeamMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TeamMember

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Member {n}")
    email = factory.Sequence(lambda n: f"member{n}@example.com")
    timezone = "Europe/London"
    is_active = True


class EventTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EventType
        skip_postgeneration_save = True

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Event {n}")
    slug = factory.Sequence(lambda n: f"event-{n}")
    duration = 30
    scheduling_type = EventType.SchedulingType.ROUND_ROBIN

    @factory.post_generation
    def hosts(self, create, extracted, **kwargs):
        for member in extracted or []:
            EventTypeHost.objects.create(event_type=self, member=member)


class BookingFactory(factory.django.DjangoModelFactory):
    """A booking written straight to the table (no routing): for read-side tests."""

    class Meta:
        model = Booking

    event_type = factory.SubFactory(EventTypeFactory)
    team = factory.SelfAttribute("event_type.team")
    assigned_to = factory.SubFactory(TeamMemberFactory, team=factory.SelfAttribute("..team"))
    status = Booking.Status.SCHEDULED
    start_time = factory.LazyFunction(
        lambda: timezone.now().replace(microsecond=0) + timedelta(days=1)
    )
    end_time = factory.LazyAttribute(lambda o: o.start_time + timedelta(minutes=30))
    blocked_start = factory.SelfAttribute("start_time")
    blocked_end = factory.SelfAttribute("end_time")
    attendee_name = factory.Sequence(lambda n: f"Attendee {n}")
    attendee_email = factory.Sequence(lambda n: f"attendee{n}@example.com")
    ical_uid = factory.Sequence(lambda n: f"uid-{n}@bookings")


def booking_build(*, event_type, assigned_to=None, start_time, status=None, **fields) -> Booking:
    """An unsaved booking for ``Booking.objects.bulk_create``, with its own id and ical_uid.

    A CANCELLED booking gets the cancellation fields its check constraint requires.
    """
    status = status or Booking.Status.SCHEDULED
    end_time = fields.pop("end_time", start_time + timedelta(minutes=event_type.duration))
    booking_id = fields.pop("id", None) or new_id("bkg")
    if status == Booking.Status.CANCELLED:
        fields.setdefault("cancelled_at", start_time - timedelta(days=1))
        fields.setdefault("cancelled_by", Booking.CancelledBy.API)
    defaults = {
        "attendee_name": f"Attendee {booking_id[-6:]}",
        "attendee_email": f"{booking_id[-8:].lower()}@example.com",
        "blocked_start": start_time,
        "blocked_end": end_time,
    }
    return Booking(
        id=booking_id,
        team_id=event_type.team_id,
        event_type=event_type,
        assigned_to=assigned_to,
        status=status,
        start_time=start_time,
        end_time=end_time,
        ical_uid=f"{booking_id}@bookings",
        **{**defaults, **fields},
    )
