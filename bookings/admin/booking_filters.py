"""The booking list's filters, each answered by an index at a million bookings.

Django's related-field filters list every team, event type or member in the sidebar: at
hundreds of teams that is a page of links, and one query each over a big table. Here a team
is typed (its id or slug); once a team is chosen, its event types and hosts are offered as
links. Each filter narrows by the team too, so the list reads an index that leads with the team.
"""

from datetime import UTC, datetime, time, timedelta

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from ..ids import is_valid_id
from ..models import Booking, EventType, Team, TeamMember
from ..validators import parse_iso_date


class InputFilter(admin.ListFilter):
    """A filter the sidebar shows as a small form: one text box per parameter.

    ``links()`` may offer choices as links as well. A value that names nothing is reported
    as a message, and the list is then empty rather than silently unfiltered.
    """

    template = "admin/bookings/input_filter.html"
    parameters: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    input_type = "text"
    placeholder = ""

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in self.parameters:
            if name in params:
                value = params.pop(name)[-1].strip()
                if value:
                    self.used_parameters[name] = value

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return list(self.parameters)

    def links(self, changelist) -> list[dict]:
        return []

    def choices(self, changelist):
        # The template reads the form's parts from the first "choice".
        kept = [
            (name, value)
            for name, value in changelist.params.items()
            if name not in self.parameters
        ]
        yield {
            "kept": kept,
            "inputs": [
                {"name": name, "label": label, "value": self.used_parameters.get(name, "")}
                for name, label in zip(self.parameters, self.labels, strict=True)
            ],
            "input_type": self.input_type,
            "placeholder": self.placeholder,
            "clear": changelist.get_query_string(remove=list(self.parameters))
            if self.used_parameters
            else None,
            "links": self.links(changelist),
        }

    def refuse(self, request, message: str):
        messages.error(request, message)


def _team_of(request, value: str) -> Team | None:
    """The team a filter value names (its id or its slug), once per request."""
    cache = request.__dict__.setdefault("_booking_filter_teams", {})
    if value not in cache:
        lookup = Q(pk=value) if is_valid_id(value, "team") else Q(slug=value)
        cache[value] = Team.objects.filter(lookup).first()
    return cache[value]


def _chosen_team(request) -> Team | None:
    value = request.GET.get(TeamFilter.parameter_name, "").strip()
    return _team_of(request, value) if value else None


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return Booking.Status.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value not in Booking.Status.values:
            messages.error(request, f"Unknown status {value!r}.")
            return queryset.none()
        return queryset.filter(status=value)


class TeamFilter(InputFilter):
    title = "team"
    parameter_name = "team"
    parameters = ("team",)
    labels = ("Team id or slug",)
    placeholder = "team_… or slug"

    def queryset(self, request, queryset):
        value = self.used_parameters.get(self.parameter_name)
        if value is None:
            return queryset
        team = _team_of(request, value)
        if team is None:
            self.refuse(request, f"No team has the id or slug {value!r}.")
            return queryset.none()
        return queryset.filter(team=team)


class _TeamScopedFilter(InputFilter):
    """An event type or a host: typed as an id, or picked from the chosen team's."""

    model: type
    prefix: str
    column: str

    def options(self, team: Team):
        raise NotImplementedError

    def links(self, changelist) -> list[dict]:
        team = _chosen_team(self.request)
        if team is None:
            return []
        chosen = self.used_parameters.get(self.parameter_name)
        return [
            {
                "display": str(option),
                "selected": option.pk == chosen,
                "query_string": changelist.get_query_string({self.parameter_name: option.pk}),
            }
            for option in self.options(team)
        ]

    def queryset(self, request, queryset):
        value = self.used_parameters.get(self.parameter_name)
        if value is None:
            return queryset
        target = (
            self.model.objects.filter(pk=value).only("pk", "team_id").first()
            if is_valid_id(value, self.prefix)
            else None
        )
        if target is None:
            self.refuse(request, f"No {self.title} has the id {value!r}.")
            return queryset.none()
        # The team as well: the list then reads the index (team, <column>, start_time, id).
        return queryset.filter(team_id=target.team_id, **{self.column: target.pk})


class EventTypeFilter(_TeamScopedFilter):
    title = "event type"
    parameter_name = "event_type"
    parameters = ("event_type",)
    labels = ("Event type id",)
    placeholder = "evt_…"
    model = EventType
    prefix = "evt"
    column = "event_type_id"

    def options(self, team):
        return EventType.objects.filter(team=team).order_by("name")[:50]


class HostFilter(_TeamScopedFilter):
    title = "host"
    parameter_name = "host"
    parameters = ("host",)
    labels = ("Host (member) id",)
    placeholder = "mem_…"
    model = TeamMember
    prefix = "mem"
    column = "assigned_to_id"

    def options(self, team):
        return TeamMember.objects.filter(team=team).order_by("name")[:50]


class StartDateFilter(InputFilter):
    """Start dates, from and to, both inclusive, in UTC; with a few ready-made ranges."""

    title = "start date (UTC)"
    parameters = ("start_from", "start_to")
    labels = ("From", "To")
    input_type = "date"

    def links(self, changelist) -> list[dict]:
        today = timezone.now().astimezone(UTC).date()
        ranges = [
            ("Today", today, today),
            ("Next 7 days", today, today + timedelta(days=6)),
            ("Past 7 days", today - timedelta(days=6), today),
            ("Next 30 days", today, today + timedelta(days=29)),
        ]
        return [
            {
                "display": label,
                "selected": self.used_parameters
                == {"start_from": first.isoformat(), "start_to": last.isoformat()},
                "query_string": changelist.get_query_string(
                    {"start_from": first.isoformat(), "start_to": last.isoformat()}
                ),
            }
            for label, first, last in ranges
        ]

    def queryset(self, request, queryset):
        try:
            bounds = {name: parse_iso_date(value) for name, value in self.used_parameters.items()}
        except ValidationError:
            self.refuse(request, "Start dates are written 2026-12-01.")
            return queryset.none()
        if "start_from" in bounds:
            queryset = queryset.filter(
                start_time__gte=datetime.combine(bounds["start_from"], time.min, UTC)
            )
        if "start_to" in bounds:
            try:
                day_after = bounds["start_to"] + timedelta(days=1)
            except OverflowError:
                return queryset
            queryset = queryset.filter(start_time__lt=datetime.combine(day_after, time.min, UTC))
        return queryset
