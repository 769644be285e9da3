from django.core.management.base import BaseCommand

from bookings.idempotency import idempotency_keys_purge


class Command(BaseCommand):
    help = "Delete Idempotency-Key rows older than 24 hours (also run hourly by Celery beat)."

    def handle(self, *args, **options):
        deleted = idempotency_keys_purge()
        self.stdout.write(f"Purged {deleted} expired idempotency key(s).")
