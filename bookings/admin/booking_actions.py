"""Bulk moves on the booking list: each booking on its own, one summary message.

Each selected booking goes through ``booking_transition`` in its own transaction, exactly as
if staff had pressed its button: one refused (a CANCELLED booking cannot be confirmed, a
future one cannot be completed) stops nothing else, and the summary says what was done, what
already was, and what was refused and why.
"""

from collections import defaultdict

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from ..errors import BookingNotStarted, BookingsError
from ..models import Booking, BookingHistory
from ..services import Actor, booking_transition
from ..transitions import TRANSITIONS, Transition
from .booking_forms import BookingCancelForm, error_text

#: The most bookings one bulk action handles: each is its own transaction and maybe an email.
BULK_LIMIT = 500
_SHOWN_IDS = 5
NOT_STARTED = "Not started yet: a booking is completed or marked no-show once it has started."


def staff_actor(request) -> Actor:
    """The history's actor for a change made in the admin: the staff user, by id."""
    return Actor(BookingHistory.ActorType.STAFF, str(request.user.pk))


def _summary(action: str, done: list, unchanged: list, refused: dict[str, list]) -> str:
    verb = {"confirm": "Confirmed", "complete": "Completed", "cancel": "Cancelled"}.get(
        action, "Marked no-show"
    )
    parts = [f"{verb} {len(done)} booking{'s' if len(done) != 1 else ''}."]
    if unchanged:
        parts.append(f"{len(unchanged)} already had that status (unchanged).")
    for reason, ids in refused.items():
        shown = ", ".join(ids[:_SHOWN_IDS]) + (" …" if len(ids) > _SHOWN_IDS else "")
        parts.append(f"Refused {len(ids)}: {reason} ({shown})")
    return " ".join(parts)


class BookingBulkActionsMixin:
    """The list's actions for ``BookingAdmin``: confirm, cancel (asks why), complete, no-show."""

    actions = ["confirm_selected", "cancel_selected", "complete_selected", "no_show_selected"]

    def may(self, request, transition: Transition) -> bool:
        """Whether the user holds the permission the table names for this move."""
        return request.user.has_perm(f"{self.opts.app_label}.{transition.permission}")

    def _may_action(self, request, action: str) -> bool:
        return self.may(request, TRANSITIONS[action])

    def has_confirm_permission(self, request) -> bool:
        return self._may_action(request, "confirm")

    def has_cancel_permission(self, request) -> bool:
        return self._may_action(request, "cancel")

    def has_complete_permission(self, request) -> bool:
        return self._may_action(request, "complete")

    def has_no_show_permission(self, request) -> bool:
        return self._may_action(request, "no_show")

    def bulk_transition(self, request, queryset, action: str, **kwargs) -> None:
        ids = list(queryset.order_by().values_list("pk", flat=True)[: BULK_LIMIT + 1])
        if len(ids) > BULK_LIMIT:
            self.message_user(
                request,
                f"Select at most {BULK_LIMIT} bookings at a time; nothing was changed.",
                messages.ERROR,
            )
            return
        done, unchanged, refused = [], [], defaultdict(list)
        for booking_id in sorted(ids):
            try:
                _, changed = booking_transition(
                    booking=Booking(pk=booking_id),
                    action=action,
                    actor=staff_actor(request),
                    **kwargs,
                )
            except BookingNotStarted:
                # Its message names the start time: one group for all, not one per booking.
                refused[NOT_STARTED].append(booking_id)
                continue
            except BookingsError as exc:
                refused[error_text(exc)].append(booking_id)
                continue
            (done if changed else unchanged).append(booking_id)
        level = messages.SUCCESS
        if refused:
            level = messages.WARNING if done or unchanged else messages.ERROR
        self.message_user(request, _summary(action, done, unchanged, refused), level)

    @admin.action(description="Confirm selected bookings", permissions=["confirm"])
    def confirm_selected(self, request, queryset):
        self.bulk_transition(request, queryset, "confirm")

    @admin.action(description="Mark selected bookings completed", permissions=["complete"])
    def complete_selected(self, request, queryset):
        self.bulk_transition(request, queryset, "complete")

    @admin.action(description="Mark selected bookings no-show", permissions=["no_show"])
    def no_show_selected(self, request, queryset):
        self.bulk_transition(request, queryset, "no_show")

    @admin.action(description="Cancel selected bookings…", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        """First a page asking who cancelled and why; its answer applies to each booking."""
        form = BookingCancelForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            self.bulk_transition(request, queryset, "cancel", **form.service_kwargs())
            return None
        selected = list(queryset.order_by("start_time", "id")[: BULK_LIMIT + 1])
        context = {
            **self.admin_site.each_context(request),
            "title": "Cancel bookings",
            "opts": self.opts,
            "form": form,
            "bookings": selected[:BULK_LIMIT],
            "too_many": len(selected) > BULK_LIMIT,
            "bulk_limit": BULK_LIMIT,
            "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/bookings/booking/cancel_selected.html", context)
