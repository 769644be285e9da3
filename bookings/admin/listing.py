"""Lists over big tables: only what a list offers sorts it or filters it, whatever the URL says."""

from django.contrib.admin.views.main import ChangeList


class SortableOnlyChangeList(ChangeList):
    """Django draws sort links only for the columns in ``sortable_by``, but orders by any
    column a URL's ``?o=`` names (``?o=5.-7`` sorted every booking by event type and team,
    over a join). Here a column outside ``sortable_by`` is ignored, as if not asked."""

    def get_ordering_field(self, field_name):
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)


def choice_filter_parameters(*fields: str) -> frozenset[str]:
    """The query parameters of Django's list filters on these fields (``status__exact``, …):
    for ``lookup_allowed``, which otherwise lets a URL filter any column by any lookup
    (``?to_email__regex=…``, a scan of the whole table)."""
    return frozenset(f"{field}__{lookup}" for field in fields for lookup in ("exact", "isnull"))
