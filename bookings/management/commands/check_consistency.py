from django.core.management.base import BaseCommand, CommandError

from bookings.consistency import consistency_check


class Command(BaseCommand):
    help = (
        "Check the data's invariants (no overlap per host, histories that follow the lifecycle "
        "table, one outbox row per emailing event and every row sent or superseded, no "
        "Idempotency-Key without its booking). Exit 1 and list the violations if any."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--live",
            action="store_true",
            help="The service is running: pending emails are on their way, not a violation.",
        )

    def handle(self, *args, live: bool = False, **options):
        report = consistency_check(drained=not live)
        for name, count in report.counted.items():
            self.stdout.write(f"{name}: {count}")
        if report.ok:
            self.stdout.write("OK: no violation.")
            return
        for violation in report.violations:
            self.stderr.write(str(violation))
        raise CommandError(f"{len(report.violations)} violation(s).", returncode=1)
