"""Keyset pagination on (start_time, id) with signed, opaque cursors.

A cursor names the last row of a page, not an offset: the next page seeks the index to just
after that row, so a page costs the same at any depth, and rows inserted or cancelled between
pages neither repeat nor skip the rows that existed throughout.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core import signing
from django.db.models import Q, QuerySet

from .errors import InvalidCursor

_SALT = "bookings.list-cursor.v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
DEFAULT_LIMIT = 50
MAX_LIMIT = 100


@dataclass(frozen=True)
class Page:
    items: list
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


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


def keyset_paginate(queryset: QuerySet, *, cursor: str | None, limit: int) -> Page:
    """One page of ``queryset`` (ordered by start_time, id) after ``cursor``."""
    if cursor is not None:
        start_time, pk = cursor_decode(cursor)
        # The plain ">=" lets the database seek the (…, start_time, id) index; the OR then
        # skips the rows of equal start_time up to and including the cursor's row.
        queryset = queryset.filter(start_time__gte=start_time).filter(
            Q(start_time__gt=start_time) | Q(id__gt=pk)
        )
    rows = list(queryset.order_by("start_time", "id")[: limit + 1])
    if len(rows) <= limit:
        return Page(items=rows, next_cursor=None)
    last = rows[limit - 1]
    return Page(items=rows[:limit], next_cursor=cursor_encode(last.start_time, last.id))
