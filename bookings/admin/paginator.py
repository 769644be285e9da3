from math import ceil

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Pages a big table without counting it: at most ``count_limit`` rows are ever counted.

    ``show_full_result_count = False`` only drops the admin's second count; the paginator
    still counts the list to draw page links, which reads every matching row: at a million
    bookings, a whole-table or half-table scan. Here a list is counted only up to
    ``count_limit`` (``SELECT COUNT(*) FROM (… LIMIT n)``). An unfiltered table is sized by
    PostgreSQL's estimate (``reltuples``, kept by autovacuum), close enough for a heading.
    No page past ``count_limit`` rows is offered, so no page costs a deep ``OFFSET``: past
    that, staff narrow the list with a filter or a search.
    """

    count_limit = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        estimate = self._estimate(queryset) if not queryset.query.where else None
        if estimate is not None and estimate > self.count_limit:
            return estimate
        return queryset.order_by()[: self.count_limit + 1].count()

    @property
    def is_capped(self) -> bool:
        """True when the count is an estimate or a floor, not the exact number of rows."""
        return self.count > self.count_limit

    @cached_property
    def num_pages(self) -> int:
        return min(super().num_pages, ceil(self.count_limit / self.per_page))

    @staticmethod
    def _estimate(queryset: QuerySet) -> int | None:
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [connection.ops.quote_name(queryset.model._meta.db_table)],
            )
            row = cursor.fetchone()
        return row[0] if row is not None else None
