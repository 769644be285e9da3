from django.core.management.base import BaseCommand, CommandError

from bookings.auth import ALL_SCOPES
from bookings.errors import ValidationFailed
from bookings.models import Team
from bookings.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a team and print it once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("team_id")
        parser.add_argument(
            "--scopes",
            default=None,
            help=f"Comma-separated, from: {','.join(ALL_SCOPES)}. Default: all.",
        )
        parser.add_argument("--test", action="store_true", help="Create an sk_test_ key.")
        parser.add_argument("--name", default="", help="A label shown in the admin.")

    def handle(self, *args, team_id, scopes, test, name, **options):
        try:
            team = Team.objects.get(pk=team_id)
        except Team.DoesNotExist:
            raise CommandError(f"No team with id {team_id!r}.") from None
        scope_list = None
        if scopes is not None:
            scope_list = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        try:
            key, secret = api_key_create(team=team, name=name, scopes=scope_list, test=test)
        except ValidationFailed as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Created key {key.prefix}… for {team.name} ({team.id})")
        self.stdout.write(f"Scopes: {', '.join(key.scopes)}")
        self.stdout.write("Store it now; it is not shown again:")
        self.stdout.write(secret)
