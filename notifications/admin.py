from django.contrib import admin

from bookings.admin import EstimatedCountPaginator

from .models import EmailOutbox


@admin.register(EmailOutbox)
class EmailOutboxAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "to_email", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "kind"]
    search_fields = ["to_email", "=booking__id", "event_key"]
    raw_id_fields = ["booking"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    readonly_fields = [f.name for f in EmailOutbox._meta.fields]

    def has_add_permission(self, request):
        return False
