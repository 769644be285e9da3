from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property


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
