"""The team's set-up: teams, API keys, members and event types (with their hosts)."""

from django import forms
from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet

from ..auth import ALL_SCOPES
from ..models import ApiKey, EventType, EventTypeHost, Team, TeamMember
from ..services import api_key_create, api_key_revoke


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
