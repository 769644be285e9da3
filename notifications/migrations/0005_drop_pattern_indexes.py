"""The outbox's ``varchar_pattern_ops`` index copies (for ``LIKE 'prefix%'``, which no query of
ours uses) go: two fewer insertions per email queued. See bookings' migration 0010."""

from django.db import migrations

from bookings.db import drop_indexes_concurrently_on_postgres

_DROPPED = {
    "notifications_emailoutbox_event_key_5826981f_like": (
        "notifications_emailoutbox (event_key varchar_pattern_ops)"
    ),
    "notifications_emailoutbox_booking_id_7443ff4e_like": (
        "notifications_emailoutbox (booking_id varchar_pattern_ops)"
    ),
}


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("notifications", "0004_outbox_status_index"),
    ]

    operations = drop_indexes_concurrently_on_postgres(_DROPPED)
