"""The team's set-up: teams, API keys, members and event types (with their hosts)."""

from django import forms
from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from ..auth import ALL_SCOPES
from ..models import ApiKey, EventType, EventTypeHost, Team, TeamMember
from ..services import api_key_create, api_key_revoke
from .selection import SelectionCheckedAdmin


@admin.register(Team)
class TeamAdmin(SelectionCheckedAdmin):
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


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(SelectionCheckedAdmin):
    list_display = [
        "prefix",
        "name",
        "team",
        "scope_summary",
        "is_test",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = [ApiKeyStatusFilter, "is_test"]
    list_select_related = ["team"]
    search_fields = ["name", "prefix", "team__name", "team__id"]
    autocomplete_fields = ["team"]
    fields = [
        "id",
        "team",
        "name",
        "prefix",
        "scope_list",
        "is_test",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = [field for field in fields if field != "name"]
    actions = ["revoke"]

    @admin.display(description="scopes")
    def scope_summary(self, obj):
        return "all" if set(obj.scopes) == set(ALL_SCOPES) else ", ".join(obj.scopes)

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return format_html_join(mark_safe("<br>"), "{}", ((scope,) for scope in obj.scopes))

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

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        keys = list(queryset)
        revoked = api_key_revoke(api_keys=keys)
        self.message_user(
            request,
            f"Revoked {revoked} key(s); skipped {len(keys) - revoked} already revoked.",
            messages.SUCCESS if revoked else messages.WARNING,
        )


class TeamKeptForm(forms.ModelForm):
    """The change form of something that never leaves its team (a member, an event type).
    There the team is read-only, so not a field of the form, and Django leaves it out of the
    model's validation, and with it every constraint that names it: an email or a slug
    already taken in the team passed the form and was a 500 (an IntegrityError) at save. The
    team is the instance's own, so it is validated: the clash is a form error, as when adding."""

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        if self.instance.team_id is not None:
            exclude.discard("team")
        return exclude


@admin.register(TeamMember)
class TeamMemberAdmin(SelectionCheckedAdmin):
    form = TeamKeptForm
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
    # Searches every team's members; the formset refuses any outside the event type's team.
    autocomplete_fields = ["member"]


@admin.register(EventType)
class EventTypeAdmin(SelectionCheckedAdmin):
    form = TeamKeptForm
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
