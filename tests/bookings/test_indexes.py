"""The tables every booking writes carry no index that serves nothing: each one is another
insertion per row (migrations bookings 0010, notifications 0005)."""

import pytest
from django.db import connection

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

HOT_TABLES = (
    "bookings_booking",
    "bookings_bookinghistory",
    "bookings_idempotencykey",
    "notifications_emailoutbox",
)


def _indexes() -> dict[str, list[tuple[str, tuple[str, ...], str, bool]]]:
    """table → (name, key columns or expressions, predicate, unique) of each index."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, i.relname,
                   ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                         FROM generate_series(1, x.indnkeyatts) AS k),
                   coalesce(pg_get_expr(x.indpred, x.indrelid), ''), x.indisunique,
                   pg_get_indexdef(x.indexrelid)
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relname = ANY(%s)
            """,
            [list(HOT_TABLES)],
        )
        rows = cursor.fetchall()
    found: dict[str, list] = {table: [] for table in HOT_TABLES}
    for table, name, columns, predicate, unique, definition in rows:
        assert "pattern_ops" not in definition, definition
        found[table].append((name, tuple(columns), predicate, unique))
    return found


def test_no_index_on_the_hot_tables_is_a_prefix_of_another():
    for table, indexes in _indexes().items():
        for name, columns, predicate, unique in indexes:
            if unique:
                continue  # a constraint, not only a path
            covering = [
                other
                for other, other_columns, other_predicate, _ in indexes
                if other != name
                and other_predicate == predicate == ""
                and other_columns[: len(columns)] == columns
            ]
            assert not covering, f"{table}.{name} {columns} is served by {covering}"


def test_the_indexes_the_api_and_admin_use_are_there():
    names = {name for indexes in _indexes().values() for name, *_ in indexes}
    assert {
        "bookings_booking_pkey",
        "booking_team_start",
        "booking_evt_host_created",
        "booking_no_overlap_per_host",
        "history_booking_at",
        "idempotency_key_unique_per_team",
        "notifications_emailoutbox_event_key_key",
    } <= names
