"""The admin's outbox status filter ("failed", newest first) by an index, not a scan.
Built concurrently on PostgreSQL: every booking change writes to this table."""

from django.db import migrations, models

from bookings.db import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("notifications", "0003_outbox_to_email_index"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="emailoutbox",
            index=models.Index(fields=["status", "id"], name="outbox_status_id"),
        ),
    ]
