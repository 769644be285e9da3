"""Fewer indexes on the tables every booking writes: each is one more insertion (and its WAL,
and at a million rows its full-page images after a checkpoint) per booking, history row or key.

Dropped on PostgreSQL, concurrently, so the tables keep taking writes:

- the ``varchar_pattern_ops`` copies Django adds beside every indexed ``CharField`` (ids, foreign
  keys to ids) for ``LIKE 'prefix%'``: no query of ours matches an id by prefix;
- the foreign-key indexes of ``booking.team``, ``booking.event_type``, ``history.booking`` and
  ``idempotencykey.team``: each is the first column of another index (``booking_team_start``,
  ``booking_evt_host_created``, ``history_booking_at``, ``idempotency_key_unique_per_team``),
  which serves the same lookups (a team's or event type's deletion, a booking's history).

tests/bookings/test_indexes.py keeps it so.
"""

from django.db import migrations, models

from bookings.db import drop_indexes_concurrently_on_postgres

# index name → its definition (to build it again when migrating backwards)
_DROPPED = {
    "bookings_booking_id_b4749f83_like": "bookings_booking (id varchar_pattern_ops)",
    "bookings_booking_team_id_e36d3a9e": "bookings_booking (team_id)",
    "bookings_booking_team_id_e36d3a9e_like": "bookings_booking (team_id varchar_pattern_ops)",
    "bookings_booking_event_type_id_e322da7b": "bookings_booking (event_type_id)",
    "bookings_booking_event_type_id_e322da7b_like": (
        "bookings_booking (event_type_id varchar_pattern_ops)"
    ),
    "bookings_booking_assigned_to_id_3f58f36b_like": (
        "bookings_booking (assigned_to_id varchar_pattern_ops)"
    ),
    "bookings_booking_rescheduled_from_id_0049bad7_like": (
        "bookings_booking (rescheduled_from_id varchar_pattern_ops)"
    ),
    "bookings_booking_rescheduled_to_id_f099e037_like": (
        "bookings_booking (rescheduled_to_id varchar_pattern_ops)"
    ),
    "bookings_bookinghistory_booking_id_3d73917f": "bookings_bookinghistory (booking_id)",
    "bookings_bookinghistory_booking_id_3d73917f_like": (
        "bookings_bookinghistory (booking_id varchar_pattern_ops)"
    ),
    "bookings_idempotencykey_team_id_4c065c70": "bookings_idempotencykey (team_id)",
    "bookings_idempotencykey_team_id_4c065c70_like": (
        "bookings_idempotencykey (team_id varchar_pattern_ops)"
    ),
    "bookings_idempotencykey_booking_id_8d17f290_like": (
        "bookings_idempotencykey (booking_id varchar_pattern_ops)"
    ),
}


def _unindexed(model_name: str, name: str, to: str, on_delete, **options) -> migrations.AlterField:
    return migrations.AlterField(
        model_name=model_name,
        name=name,
        field=models.ForeignKey(db_index=False, on_delete=on_delete, to=to, **options),
    )


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("bookings", "0009_admin_list_and_search_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                _unindexed(
                    "booking",
                    "team",
                    "bookings.team",
                    models.deletion.CASCADE,
                    related_name="bookings",
                ),
                _unindexed(
                    "booking",
                    "event_type",
                    "bookings.eventtype",
                    models.deletion.PROTECT,
                    related_name="bookings",
                ),
                _unindexed(
                    "bookinghistory",
                    "booking",
                    "bookings.booking",
                    models.deletion.CASCADE,
                    related_name="history",
                ),
                _unindexed(
                    "idempotencykey",
                    "team",
                    "bookings.team",
                    models.deletion.CASCADE,
                    related_name="+",
                ),
            ],
            database_operations=drop_indexes_concurrently_on_postgres(_DROPPED),
        ),
    ]
