"""Bookings: support staff find, fix and act on them through the lifecycle services.

Every write here is a service call with the staff user as the history's actor: the attendee's
details through ``booking_attendee_update`` (as the API's PATCH), the moves through
``booking_transition`` and ``booking_reschedule``. The buttons a page offers are read from
``transitions.TRANSITIONS`` and the user's permissions, and each view checks both again.
"""

from datetime import UTC

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models.functions import Lower
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from notifications.models import EmailOutbox

from ..errors import BookingsError
from ..ids import is_valid_id
from ..models import Booking, BookingHistory
from ..services import booking_attendee_update, booking_reschedule, booking_transition
from ..transitions import ATTENDEE_EDITABLE, TRANSITIONS, Transition
from .booking_actions import BookingBulkActionsMixin, staff_actor
from .booking_filters import EventTypeFilter, HostFilter, StartDateFilter, StatusFilter, TeamFilter
from .booking_forms import (
    ATTENDEE_FIELDS,
    BookingAttendeeForm,
    BookingCancelForm,
    BookingRescheduleForm,
    error_text,
    form_errors,
)
from .links import admin_change_link
from .paginator import EstimatedCountPaginator
from .selection import SelectionCheckedAdmin

FILTER_PARAMETERS = frozenset(
    {
        StatusFilter.parameter_name,
        *TeamFilter.parameters,
        *EventTypeFilter.parameters,
        *HostFilter.parameters,
        *StartDateFilter.parameters,
    }
)
ACTION_LABELS = {
    "confirm": "Confirm",
    "complete": "Mark completed",
    "no_show": "Mark no-show",
    "cancel": "Cancel booking",
    "reschedule": "Reschedule",
}


def utc_minute(value) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def status_badge(status: str):
    return format_html(
        '<span class="booking-status booking-status--{}">{}</span>', status.lower(), status
    )


class _ServiceRefused(Exception):
    """A service refused a save the form had accepted (the booking moved meanwhile)."""


class _FollowsBookingPermission:
    """A read-only inline shown to whoever may see the booking it belongs to."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("bookings.view_booking") or request.user.has_perm(
            "bookings.change_booking"
        )

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BookingHistoryInline(_FollowsBookingPermission, admin.TabularInline):
    model = BookingHistory
    verbose_name_plural = "history"
    fields = ["at", "action", "from_status", "to_status", "actor", "changes"]
    readonly_fields = fields

    @admin.display(description="by")
    def actor(self, entry: BookingHistory) -> str:
        if entry.actor_type == BookingHistory.ActorType.STAFF:
            names = self.__dict__.setdefault("_staff_names", {})
            if entry.actor_id not in names:
                user = get_user_model().objects.filter(pk=entry.actor_id).first()
                names[entry.actor_id] = user.get_username() if user else "(deleted user)"
            return f"staff: {names[entry.actor_id]}"
        return f"{entry.actor_type}: {entry.actor_id}" if entry.actor_id else entry.actor_type


class BookingEmailInline(_FollowsBookingPermission, admin.TabularInline):
    model = EmailOutbox
    verbose_name_plural = "emails"
    fields = ["created_at", "kind", "to_email", "status", "attempts", "last_error", "sent_at"]
    readonly_fields = fields
    ordering = ["created_at", "id"]


@admin.register(Booking)
class BookingAdmin(BookingBulkActionsMixin, SelectionCheckedAdmin):
    form = BookingAttendeeForm
    list_display = ["id", "status_badge", "start_utc", "attendee", "event_type", "host", "team"]
    list_filter = [StatusFilter, TeamFilter, EventTypeFilter, HostFilter, StartDateFilter]
    list_select_related = ["assigned_to", "event_type", "team"]
    list_per_page = 50
    # Only the start sorts: any other order would sort the whole table.
    sortable_by = ["start_utc"]
    ordering = ["-start_time", "-id"]
    # The search is get_search_results' own (exact, indexed); this only shows the box.
    search_fields = ["=id"]
    search_help_text = "An exact booking id, attendee email or attendee name (any case)."
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice reads the whole table
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    inlines = [BookingHistoryInline, BookingEmailInline]

    # -- the list ---------------------------------------------------------------------------

    def lookup_allowed(self, lookup, value, request=None):
        # Only the filters' own parameters, each served by an index: not any field by URL
        # (?attendee_name__regex=…), which would scan the table. Django answers 400.
        return lookup in FILTER_PARAMETERS

    @admin.display(description="status", ordering="status")
    def status_badge(self, booking: Booking):
        return status_badge(booking.status)

    @admin.display(description="start (UTC)", ordering="start_time")
    def start_utc(self, booking: Booking) -> str:
        return utc_minute(booking.start_time)

    @admin.display(description="end (UTC)")
    def end_utc(self, booking: Booking) -> str:
        return utc_minute(booking.end_time)

    @admin.display(description="attendee")
    def attendee(self, booking: Booking):
        return format_html("{}<br><small>{}</small>", booking.attendee_name, booking.attendee_email)

    @admin.display(description="host")
    def host(self, booking: Booking) -> str:
        return booking.assigned_to.name if booking.assigned_to else "—"

    @admin.display(description="rescheduled from")
    def rescheduled_from_link(self, booking: Booking):
        return admin_change_link(Booking, booking.rescheduled_from_id)

    @admin.display(description="rescheduled to")
    def rescheduled_to_link(self, booking: Booking):
        return admin_change_link(Booking, booking.rescheduled_to_id)

    def get_search_results(self, request, queryset, search_term):
        """One exact match, each served by an index: an id, an email or a whole name."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if is_valid_id(term, "bkg"):
            return queryset.filter(pk=term), False
        column = "attendee_email" if "@" in term else "attendee_name"
        return queryset.alias(_lowered=Lower(column)).filter(_lowered=term.lower()), False

    # -- the page ---------------------------------------------------------------------------

    def get_object(self, request, object_id, from_field=None):
        # The page shows the team, the event type and the host: one query, not four.
        if not is_valid_id(object_id, "bkg"):
            return None
        return (
            self.get_queryset(request)
            .select_related("team", "event_type", "assigned_to")
            .filter(pk=object_id)
            .first()
        )

    def attendee_editable(self, request, booking: Booking | None) -> bool:
        return (
            booking is not None
            and booking.status in ATTENDEE_EDITABLE
            and self.has_change_permission(request, booking)
        )

    def get_fieldsets(self, request, obj=None):
        attendee = [*ATTENDEE_FIELDS]
        if self.attendee_editable(request, obj):
            attendee.append("seen_version")
        return [
            ("Attendee", {"fields": attendee}),
            (
                "Booking",
                {
                    "fields": [
                        "id",
                        "status_badge",
                        "start_utc",
                        "end_utc",
                        "event_type",
                        "host",
                        "team",
                    ]
                },
            ),
            ("Rescheduling", {"fields": ["rescheduled_from_link", "rescheduled_to_link"]}),
            ("Cancellation", {"fields": ["cancelled_by", "cancellation_reason", "cancelled_at"]}),
            (
                "Details",
                {
                    "classes": ["collapse"],
                    "fields": [
                        "custom_fields",
                        "metadata",
                        "ical_uid",
                        "ical_sequence",
                        "created_at",
                        "updated_at",
                    ],
                },
            ),
        ]

    def get_readonly_fields(self, request, obj=None):
        fields = [
            name
            for _, options in self.get_fieldsets(request, obj)
            for name in options["fields"]
            if name not in ATTENDEE_FIELDS and name != "seen_version"
        ]
        if not self.attendee_editable(request, obj):
            fields += ATTENDEE_FIELDS
        return fields

    def has_add_permission(self, request):
        # Bookings are created through the API, which routes them and checks the host is free.
        return False

    def has_delete_permission(self, request, obj=None):
        # A booking is cancelled, never deleted: its history must survive.
        return False

    def save_model(self, request, obj, form, change):
        changes = form.attendee_changes()
        if not changes:
            posted = any(name in request.POST for name in ATTENDEE_FIELDS)
            if posted and not self.attendee_editable(request, obj):
                # The booking moved on while the page was open: its fields are read-only now.
                raise _ServiceRefused(
                    f"This booking is {obj.status} now: its attendee's details can no longer "
                    "be changed, and were not."
                )
            return
        # The form's initial values are the row as read for this POST: the stored address.
        before = form.initial["attendee_email"]
        try:
            booking_attendee_update(
                booking=obj,
                actor=staff_actor(request),
                seen_updated_at=form.cleaned_data["seen_version"],
                **changes,
            )
        except BookingsError as exc:
            raise _ServiceRefused(error_text(exc)) from exc
        new_email = changes.get("email")
        if new_email and new_email.lower() != before.lower():
            self.message_user(
                request,
                f"A confirmation to {new_email} is queued; it goes out once, now that the "
                "change is saved.",
                messages.INFO,
            )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _ServiceRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
            return HttpResponseRedirect(request.path)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["booking_actions"] = self.booking_actions(request, obj)
            context["booking_status"] = status_badge(obj.status)
            context["cancel_form"] = BookingCancelForm(auto_id="id_cancel_%s")
            context["reschedule_form"] = BookingRescheduleForm(auto_id="id_reschedule_%s")
        return super().render_change_form(request, context, add, change, form_url, obj)

    # -- the lifecycle ----------------------------------------------------------------------

    def booking_actions(self, request, booking: Booking) -> list[dict]:
        """The moves the table allows from the booking's status that this user may make."""
        actions = []
        for transition in TRANSITIONS.values():
            if booking.status not in transition.allowed_from or not self.may(request, transition):
                continue
            waiting = transition.requires_started and booking.start_time > timezone.now()
            actions.append(
                {
                    "action": transition.action,
                    "label": ACTION_LABELS[transition.action],
                    "url": reverse(
                        "admin:bookings_booking_act", args=[booking.pk, transition.action]
                    ),
                    "waiting": f"Possible once the booking has started, at "
                    f"{utc_minute(booking.start_time)}."
                    if waiting
                    else "",
                }
            )
        return actions

    def get_urls(self):
        act = self.admin_site.admin_view(self.act_view)
        return [
            path("<path:object_id>/act/<str:action>/", act, name="bookings_booking_act"),
            *super().get_urls(),
        ]

    def act_view(self, request, object_id, action):
        """POST: one move of one booking, by the staff user, through the services."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        transition = TRANSITIONS.get(action)
        if transition is None:
            raise Http404("No such action.")
        if not self.may(request, transition):
            raise PermissionDenied
        booking = self.get_object(request, unquote(object_id))
        if booking is None or not self.has_view_or_change_permission(request, booking):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        page = reverse("admin:bookings_booking_change", args=[booking.pk])
        try:
            if action == "reschedule":
                return self._reschedule(request, booking) or HttpResponseRedirect(page)
            self._transition(request, booking, transition)
        except BookingsError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        return HttpResponseRedirect(page)

    def _transition(self, request, booking: Booking, transition: Transition) -> None:
        kwargs = {}
        if transition.action == "cancel":
            form = BookingCancelForm(request.POST)
            if not form.is_valid():
                self.message_user(request, form_errors(form), messages.ERROR)
                return
            kwargs = form.service_kwargs()
        booking, changed = booking_transition(
            booking=booking, action=transition.action, actor=staff_actor(request), **kwargs
        )
        if changed:
            self.message_user(
                request, f"Booking {booking.pk} is now {booking.status}.", messages.SUCCESS
            )
        else:
            self.message_user(
                request, f"Booking {booking.pk} was already {booking.status}: nothing changed."
            )

    def _reschedule(self, request, booking: Booking):
        form = BookingRescheduleForm(request.POST)
        if not form.is_valid():
            self.message_user(request, form_errors(form), messages.ERROR)
            return None
        new = booking_reschedule(
            booking=booking, actor=staff_actor(request), **form.service_kwargs()
        )
        self.message_user(
            request,
            format_html(
                "Rescheduled to {} (the new booking {}, {}); {} is now CANCELLED.",
                utc_minute(new.start_time),
                new.pk,
                new.status,
                booking.pk,
            ),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:bookings_booking_change", args=[new.pk]))
