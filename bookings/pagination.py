"""Keyset pagination on (start_time, id) with signed, opaque cursors.

A cursor names the last row of a page, not an offset: the next page seeks the index to just
after that row, so a page costs the same at any depth, and rows inserted or cancelled between
pages neither repeat nor skip the rows that existed throughout.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core import signing
from django.db.models import Q, QuerySet
from rest_framework.pagination import BasePagination

from bookings_project.api.views import Payload

from .errors import InvalidCursor

_SALT = "bookings.list-cursor.v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def cursor_encode(start_time: datetime, pk: str) -> str:
    micros = (start_time - _EPOCH) // _MICROSECOND  # exact, unlike float timestamps
    return signing.dumps([micros, pk], salt=_SALT, compress=False)


def cursor_decode(token: str) -> tuple[datetime, str]:
    try:
        micros, pk = signing.loads(token, salt=_SALT)
        if type(micros) is not int or not isinstance(pk, str):
            raise TypeError("malformed cursor payload")
        position = _EPOCH + micros * _MICROSECOND
    except (signing.BadSignature, ValueError, TypeError, OverflowError):
        raise InvalidCursor() from None
    return position, pk


class KeysetCursorPagination(BasePagination):
    """The list's pagination: ``limit`` (1..100, default 50) and a signed keyset ``cursor``.

    Unlike DRF's ``CursorPagination`` (first ordering field only, offsets for ties, 404 on a
    bad cursor), the cursor is the exact (start_time, id) of the page's last row, and a
    cursor we did not issue is 400 ``invalid_cursor``. The view validates the query string
    first (``query_errors``), so every bad parameter is reported in one 400.
    """

    limit_query_param = "limit"
    cursor_query_param = "cursor"
    query_parameters = frozenset({limit_query_param, cursor_query_param})
    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT
    #: The success envelope's key for the page's items.
    resource = "items"

    def query_errors(self, params: Mapping[str, str]) -> dict[str, list[str]]:
        """Messages for a bad ``limit`` or an empty ``cursor``; nothing is decoded yet."""
        errors = {}
        limit = params.get(self.limit_query_param)
        if limit is not None and (
            not limit.isascii() or not limit.isdigit() or not 1 <= int(limit) <= self.max_limit
        ):
            errors[self.limit_query_param] = [f"Must be a whole number from 1 to {self.max_limit}."]
        cursor = params.get(self.cursor_query_param)
        if cursor is not None and cursor.strip() == "":
            errors[self.cursor_query_param] = ["Must not be empty."]
        return errors

    def page_arguments(self, request) -> dict:
        """``cursor`` and ``limit`` from the (validated) query string."""
        params = request.GET
        return {
            "cursor": params.get(self.cursor_query_param),
            "limit": int(params.get(self.limit_query_param) or self.default_limit),
        }

    def paginate_page(self, page: "Page", view=None) -> list:
        """Keep a page read elsewhere (``selectors.booking_page``) for the response."""
        if view is not None:
            self.resource = getattr(view, "envelope_plural", self.resource)
        self.page = page
        return page.items

    def get_paginated_response(self, data) -> Payload:
        return Payload(
            {
                "success": True,
                self.resource: data,
                "pagination": {
                    "next_cursor": self.page.next_cursor,
                    "has_more": self.page.has_more,
                },
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["success", self.resource, "pagination"],
            "properties": {
                "success": {"type": "boolean"},
                self.resource: schema,
                "pagination": {
                    "type": "object",
                    "required": ["next_cursor", "has_more"],
                    "properties": {
                        "next_cursor": {"type": "string", "nullable": True},
                        "has_more": {"type": "boolean"},
                    },
                },
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.limit_query_param,
                "in": "query",
                "required": False,
                "description": "Page size.",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_limit,
                    "default": self.default_limit,
                },
            },
            {
                "name": self.cursor_query_param,
                "in": "query",
                "required": False,
                "description": "pagination.next_cursor of the previous page.",
                "schema": {"type": "string", "minLength": 1},
            },
        ]


@dataclass(frozen=True)
class Page:
    items: list
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def keyset_after(queryset: QuerySet, start_time: datetime | None, pk: str | None) -> QuerySet:
    """``queryset`` in (start_time, id) order, after that row when one is given."""
    if start_time is not None:
        # The plain ">=" lets the database seek the (…, start_time, id) index; the OR then
        # skips the rows of equal start_time up to and including the cursor's row.
        queryset = queryset.filter(start_time__gte=start_time).filter(
            Q(start_time__gt=start_time) | Q(id__gt=pk)
        )
    return queryset.order_by("start_time", "id")


def keyset_paginate(
    rows_after: Callable[[tuple[datetime, str] | None, int], list],
    *,
    cursor: str | None,
    limit: int,
) -> Page:
    """One page after ``cursor``: ``rows_after(position, n)`` reads up to n rows (ordered by
    start_time, id) after that position (None: from the start); one more than the page tells
    whether there is a next one."""
    after = None if cursor is None else cursor_decode(cursor)
    rows = rows_after(after, limit + 1)
    if len(rows) <= limit:
        return Page(items=rows, next_cursor=None)
    last = rows[limit - 1]
    return Page(items=rows[:limit], next_cursor=cursor_encode(last.start_time, last.id))
