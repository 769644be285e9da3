from django.core.management.base import BaseCommand, CommandError

from bookings.errors import BookingsError
from bookings.models import Booking
from bookings.services import Actor, booking_transition
from bookings.transitions import TRANSITIONS

ACTIONS = sorted(name for name in TRANSITIONS if name != "reschedule")


class Command(BaseCommand):
    help = (
        "Move a booking along the lifecycle (confirm, complete, no_show, cancel) through the "
        "same service as the API; the history records the system as the actor."
    )

    def add_arguments(self, parser):
        parser.add_argument("booking_id")
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument(
            "--cancelled-by",
            default=Booking.CancelledBy.API,
            choices=Booking.CancelledBy.values,
            help="For cancel: who cancelled (default: api).",
        )
        parser.add_argument("--reason", default=None, help="For cancel: why.")

    def handle(self, *args, booking_id, action, cancelled_by, reason, **options):
        try:
            booking = Booking.objects.get(pk=booking_id)
        except Booking.DoesNotExist:
            raise CommandError(f"No booking with id {booking_id!r}.") from None
        extra = {"cancelled_by": cancelled_by, "reason": reason} if action == "cancel" else {}
        try:
            booking, changed = booking_transition(
                booking=booking, action=action, actor=Actor.system(), **extra
            )
        except BookingsError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        verb = "is now" if changed else "was already"
        self.stdout.write(f"{booking.id} {verb} {booking.status}")
