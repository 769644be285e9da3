"""Staff users for the admin tests: a superuser, the Support group, view-only, one permission."""

from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse

from bookings.models import Booking

CHANGELIST = reverse("admin:bookings_booking_changelist")


def staff_client(*, username: str, group: str | None = None, perms: tuple[str, ...] = ()):
    """A logged-in client for a staff user with the group and the permissions named
    ("bookings.view_booking", …). Returns (client, user)."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    for label in perms:
        app_label, codename = label.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client, user


def change_url(booking: Booking) -> str:
    return reverse("admin:bookings_booking_change", args=[booking.pk])


def act_url(booking: Booking, action: str) -> str:
    return reverse("admin:bookings_booking_act", args=[booking.pk, action])


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def attendee_post(booking: Booking, **changes) -> dict:
    """The change form's POST as the page sends it: every attendee field, the version seen,
    and the inlines' management forms; ``changes`` override fields."""
    from bookings.validators import utc_iso

    data = {
        "attendee_name": booking.attendee_name,
        "attendee_email": booking.attendee_email,
        "attendee_phone": booking.attendee_phone,
        "attendee_timezone": booking.attendee_timezone,
        "seen_version": utc_iso(booking.updated_at),
        "_continue": "Save and continue editing",
    }
    for prefix in ("history", "emails"):
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": "0",
                f"{prefix}-INITIAL_FORMS": "0",
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "0",
            }
        )
    data.update(changes)
    return data
