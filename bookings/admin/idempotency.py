"""Idempotency keys: what a client's retry will be answered with, for support to look up."""

from django.contrib import admin
from django.utils import timezone
from django.utils.text import Truncator

from ..models import Booking, IdempotencyKey
from .links import admin_change_link
from .paginator import EstimatedCountPaginator
from .selection import SelectionCheckedAdmin


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [("live", "Live"), ("expired", "Expired (awaiting the purge)")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "live":
            return queryset.filter(expires_at__gt=now)
        if self.value() == "expired":
            return queryset.filter(expires_at__lte=now)
        return queryset


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(SelectionCheckedAdmin):
    """Read-only: a row is written with the booking it produced and removed by the purge."""

    show_facets = admin.ShowFacets.NEVER  # a count per filter choice reads the whole table
    list_display = [
        "team",
        "key",
        "response_status",
        "booking_link",
        "created_at",
        "expires_at",
    ]
    list_display_links = ["key"]
    list_filter = [ExpiryFilter]
    list_select_related = ["team"]
    # Exact matches only: no icontains scan. The booking id uses the foreign key's index; a
    # key alone is not the leading column of any index (the unique one is (team, key)), so it
    # reads the keys of the last day — all the purge keeps.
    search_fields = ["key__exact", "booking__id__exact"]
    search_help_text = "An exact Idempotency-Key or booking id."
    ordering = ["-id"]  # the primary key's index; ids grow with created_at
    sortable_by = []  # any column would sort the whole table
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = [
        "team",
        "key",
        "fingerprint",
        "response_status",
        "response_location",
        "booking_link",
        "response",
        "created_at",
        "expires_at",
    ]
    readonly_fields = fields

    def lookup_allowed(self, lookup, value, request=None):
        # Only the filter's own parameter: no ?key__regex=… scanning every key.
        return lookup == ExpiryFilter.parameter_name

    @admin.display(description="booking", ordering="booking_id")
    def booking_link(self, obj):
        return admin_change_link(Booking, obj.booking_id)

    @admin.display(description="response body (replayed as is)")
    def response(self, obj):
        if obj.response_body is None:
            return "-"
        return Truncator(bytes(obj.response_body).decode("utf-8", "replace")).chars(4000)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
