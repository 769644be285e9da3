from datetime import timedelta

import factory
from django.utils import timezone

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
