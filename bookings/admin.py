"""Staff browse and manage teams, keys, members, event types and bookings here."""

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.utils.functional import cached_property

from .auth import ALL_SCOPES
from .models import ApiKey, Booking, BookingHistory, EventType, EventTypeHost, Team, TeamMember
from .services import api_key_create, api_key_revoke


class EstimatedCountPaginator(Paginator):
    """Counts a filtered list exactly, and an unfiltered big table by PostgreSQL's estimate.

    ``show_full_result_count = False`` only drops the second count; the paginator still runs
    ``COUNT(*)`` over the whole table to draw page links, which reads every row. The
    planner's ``reltuples`` (kept by autovacuum) is close enough for page links.
    """

    estimate_above = 100_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and not queryset.query.where:
            connection = connections[queryset.db]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                        [connection.ops.quote_name(queryset.model._meta.db_table)],
                    )
                    row = cursor.fetchone()
                if row is not None and row[0] > self.estimate_above:
                    return row[0]
        return super().count


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "id", "created_at"]
    search_fields = ["name", "slug", "id"]
    readonly_fields = ["id", "created_at"]


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        initial=list(ALL_SCOPES),
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = ApiKey
        fields = ["team", "name", "scopes", "is_test"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "team", "is_test", "created_at", "revoked_at"]
    list_filter = ["is_test", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["team"]
    search_fields = ["name", "prefix", "team__name", "team__id"]
    autocomplete_fields = ["team"]
    readonly_fields = ["id", "team", "prefix", "scopes", "is_test", "created_at", "revoked_at"]
    fields = ["id", "team", "name", "prefix", "scopes", "is_test", "created_at", "revoked_at"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        return ApiKeyCreateForm.Meta.fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, secret = api_key_create(
            team=form.cleaned_data["team"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            test=form.cleaned_data["is_test"],
        )
        # The admin goes on to log and redirect to ``obj``: make it the saved key.
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(key, field.attname))
        obj._state.adding = False
        messages.warning(request, f"The new key, shown this once — copy it now: {secret}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        count = api_key_revoke(api_keys=queryset)
        self.message_user(request, f"Revoked {count} key(s).")


@admin.register(TeamMember)
class TeamMemberAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "team", "timezone", "is_active", "id"]
    list_filter = ["is_active"]
    list_select_related = ["team"]
    search_fields = ["name", "email", "id"]
    autocomplete_fields = ["team"]
    readonly_fields = ["id", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # A member's bookings and host links belong to its team: it never moves.
        return [*self.readonly_fields, "team"] if obj else self.readonly_fields


class EventTypeHostFormSet(BaseInlineFormSet):
    """Hosts come from the event type's team, and a SOLO event type has exactly one."""

    def clean(self):
        super().clean()
        event_type = self.instance
        members = [
            form.cleaned_data["member"]
            for form in self.forms
            if form.cleaned_data.get("member") and not form.cleaned_data.get("DELETE")
        ]
        foreign = [member for member in members if member.team_id != event_type.team_id]
        if foreign:
            names = ", ".join(str(member) for member in foreign)
            raise forms.ValidationError(f"Not members of this event type's team: {names}.")
        if event_type.scheduling_type == EventType.SchedulingType.SOLO and len(members) != 1:
            raise forms.ValidationError("A SOLO event type has exactly one host.")


class EventTypeHostInline(admin.TabularInline):
    model = EventTypeHost
    formset = EventTypeHostFormSet
    extra = 0
    raw_id_fields = ["member"]


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "team", "duration", "scheduling_type", "is_active", "id"]
    list_filter = ["scheduling_type", "is_active", "requires_confirmation"]
    list_select_related = ["team"]
    search_fields = ["name", "slug", "id"]
    autocomplete_fields = ["team"]
    readonly_fields = ["id", "created_at"]
    inlines = [EventTypeHostInline]

    def get_readonly_fields(self, request, obj=None):
        # Its hosts and bookings belong to its team: an event type never moves.
        return [*self.readonly_fields, "team"] if obj else self.readonly_fields


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
