"""The email outbox: staff see what was sent, what failed and why, and resend what failed."""

from django.contrib import admin, messages
from django.utils.text import Truncator

from bookings.admin import (
    EstimatedCountPaginator,
    SelectionCheckedAdmin,
    admin_change_link,
    choice_filter_parameters,
)
from bookings.models import Booking

from .models import EmailOutbox
from .services import email_resend

_FILTER_PARAMETERS = choice_filter_parameters("status", "kind")


@admin.register(EmailOutbox)
class EmailOutboxAdmin(SelectionCheckedAdmin):
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice reads the whole table
    list_display = [
        "id",
        "booking_link",
        "kind",
        "to_email",
        "status",
        "attempts",
        "short_error",
        "created_at",
        "sent_at",
    ]
    list_filter = ["status", "kind"]
    # Exact matches only, each on an index: the address case-insensitively (UPPER(to_email),
    # index outbox_to_email_upper), the booking id on the foreign key's index. No icontains
    # scan of a table that grows with every email.
    search_fields = ["=to_email", "booking__id__exact"]
    search_help_text = "An exact attendee email address or booking id."
    # The booking column is a link built from booking_id: no join (list_select_related
    # stays off on purpose, and nothing in list_display is a relation).
    ordering = ["-id"]  # the primary key's index; ids grow with created_at
    sortable_by = ["id"]  # any other column would sort the whole table
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = [
        "id",
        "booking_link",
        "kind",
        "event_key",
        "to_email",
        "ical_sequence",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "next_attempt_at",
        "sent_at",
    ]
    readonly_fields = fields
    actions = ["resend"]

    def lookup_allowed(self, lookup, value, request=None):
        # Only the filters' own parameters: no ?to_email__regex=… scanning every email.
        return lookup in _FILTER_PARAMETERS

    @admin.display(description="booking", ordering="booking_id")
    def booking_link(self, obj):
        return admin_change_link(Booking, obj.booking_id)

    @admin.display(description="last error")
    def short_error(self, obj):
        return Truncator(obj.last_error).chars(80)

    def has_add_permission(self, request):
        return False  # rows are written by the changes that cause them

    def has_change_permission(self, request, obj=None):
        # The list asks without a row: change_emailoutbox there is what the resend action
        # needs. A row's page is never a form: a save would write back every column as read,
        # over a worker's concurrent claim or send. Changes go through the services.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # the record of what was sent stays

    @admin.action(description="Resend selected failed emails", permissions=["change"])
    def resend(self, request, queryset):
        result = email_resend(outbox_ids=queryset.values_list("pk", flat=True))
        text = f"Queued {result.queued} for resending; skipped {result.not_failed} (not failed)"
        if result.outdated:
            text += f"; skipped {result.outdated} (outdated: their booking has changed since)"
        level = messages.SUCCESS if result.queued else messages.WARNING
        self.message_user(request, f"{text}.", level)
