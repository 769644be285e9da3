"""A list action posted with a selection that names no possible row: a message, never a 500.

Django's admin filters ``pk__in=<the posted _selected_action values>`` as they come: a value
that is not a valid primary key ("abc" for an integer id) raises while the query is built, a
NUL character is refused by PostgreSQL and a number past 64 bits by SQLite when it runs; each
was a 500. Only a forged POST
sends such a value (the checkboxes hold real ids), so it gets the admin's own answer to a bad
selection: a message on the list, and nothing changed.
"""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError

from .listing import SortableOnlyChangeList

NOT_IDS = "The selection names no valid rows. No items have been changed."


class SelectionCheckedAdmin(admin.ModelAdmin):
    """Every admin of the project derives from this (tests/test_admin_selection.py walks them).
    Its lists also sort only by the columns in ``sortable_by`` (``listing``)."""

    def get_changelist(self, request, **kwargs):
        return SortableOnlyChangeList

    def response_action(self, request, queryset):
        pk = self.opts.pk
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                if "\x00" in value:
                    raise ValidationError("NUL")
                number = pk.to_python(value)
                # Past a 64-bit integer SQLite raises OverflowError (PostgreSQL finds no row).
                if isinstance(number, int) and not -(2**63) <= number < 2**63:
                    raise ValidationError("out of range")
        except ValidationError:
            self.message_user(request, NOT_IDS, messages.ERROR)
            return None  # the admin then redirects back to the list, which shows the message
        return super().response_action(request, queryset)


# Django's own users and groups, with the same check (their delete action took any value too).
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class CheckedUserAdmin(SelectionCheckedAdmin, UserAdmin):
    pass


@admin.register(Group)
class CheckedGroupAdmin(SelectionCheckedAdmin, GroupAdmin):
    pass
