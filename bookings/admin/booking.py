"""Bookings: support staff find, fix and act on them through the lifecycle services."""

from django.contrib import admin

from ..models import Booking, BookingHistory
from .paginator import EstimatedCountPaginator


class BookingHistoryInline(admin.TabularInline):
    model = BookingHistory
    extra = 0
    can_delete = False
    fields = ["at", "action", "from_status", "to_status", "actor_type", "actor_id", "changes"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "status",
        "start_time",
        "attendee_name",
        "attendee_email",
        "assigned_to",
        "event_type",
        "team",
    ]
    list_filter = ["status"]
    list_select_related = ["assigned_to", "event_type", "team"]
    search_fields = ["=id", "attendee_email", "attendee_name"]
    raw_id_fields = ["team", "event_type", "assigned_to", "rescheduled_from", "rescheduled_to"]
    show_full_result_count = False  # never COUNT(*) a huge table to draw a page…
    paginator = EstimatedCountPaginator  # …not even for the page links
    ordering = ["-start_time", "-id"]
    inlines = [BookingHistoryInline]
    readonly_fields = [
        "id",
        "team",
        "event_type",
        "assigned_to",
        "status",
        "start_time",
        "end_time",
        "blocked_start",
        "blocked_end",
        "rescheduled_from",
        "rescheduled_to",
        "cancelled_by",
        "cancellation_reason",
        "cancelled_at",
        "ical_uid",
        "ical_sequence",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request):
        # Bookings are created through the API, which routes them and checks the host is free.
        return False

    def has_change_permission(self, request, obj=None):
        # Read-only until staff actions go through the booking services (no rule bypassed).
        return False

    def has_delete_permission(self, request, obj=None):
        # A booking is cancelled, never deleted: its history must survive.
        return False
