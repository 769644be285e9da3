"""Demo data for newcomers and black-box tests; safe to run again (only keys are added)."""

import json
import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from bookings.models import EventType, EventTypeHost, Team, TeamMember
from bookings.services import api_key_create

TEAMS = [
    {
        "slug": "acme-sales",
        "name": "Acme Sales",
        "domain": "acme.example",
        "members": ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Charles Babbage"],
    },
    {
        "slug": "globex-support",
        "name": "Globex Support",
        "domain": "globex.example",
        "members": ["Katherine Johnson", "Edsger Dijkstra", "Barbara Liskov", "John Backus"],
    },
]
EVENT_TYPES = [
    # slug, name, duration, scheduling type, requires confirmation, buffer_after, hosts
    ("intro-call", "Intro call", 30, "ROUND_ROBIN", False, 0, "all"),
    ("deep-dive", "Deep dive", 60, "SOLO", True, 0, "first"),
    ("office-hours", "Office hours", 15, "ROUND_ROBIN", False, 10, "all"),
]
ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Create the demo teams once; every run adds a fresh full-scope API key per team."

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object."
        )

    @transaction.atomic
    def handle(self, *args, as_json: bool = False, **options):
        result = {
            "teams": [self._team(spec) for spec in TEAMS],
            "admin": self._admin(),
        }
        if as_json:
            self.stdout.write(json.dumps(result, indent=2))
        else:
            self._print(result)

    def _team(self, spec: dict) -> dict:
        team, created = Team.objects.get_or_create(
            slug=spec["slug"], defaults={"name": spec["name"]}
        )
        if created:
            members = [
                TeamMember.objects.create(
                    team=team,
                    name=name,
                    email=f"{name.split()[0].lower()}@{spec['domain']}",
                    timezone="Europe/London",
                    is_active=index < 3,
                )
                for index, name in enumerate(spec["members"])
            ]
            active = members[:3]
            for slug, name, duration, kind, confirm, buffer_after, hosts in EVENT_TYPES:
                event_type = EventType.objects.create(
                    team=team,
                    slug=slug,
                    name=name,
                    duration=duration,
                    scheduling_type=kind,
                    requires_confirmation=confirm,
                    buffer_after=buffer_after,
                    minimum_booking_notice=60,
                )
                for member in active if hosts == "all" else active[:1]:
                    EventTypeHost.objects.create(event_type=event_type, member=member)
        _, secret = api_key_create(team=team, name="seed_demo")
        members = TeamMember.objects.filter(team=team)
        event_types = EventType.objects.filter(team=team).prefetch_related("host_links")
        return {
            "id": team.id,
            "name": team.name,
            "api_key": secret,
            "members": [
                {"id": m.id, "name": m.name, "email": m.email, "is_active": m.is_active}
                for m in members.order_by("id")
            ],
            "event_types": [
                {
                    "id": e.id,
                    "slug": e.slug,
                    "duration": e.duration,
                    "scheduling_type": e.scheduling_type,
                    "requires_confirmation": e.requires_confirmation,
                    "host_ids": [link.member_id for link in e.host_links.all()],
                }
                for e in sorted(event_types, key=lambda e: e.id)
            ],
        }

    def _admin(self) -> dict:
        """The demo superuser. Its password is set on every run and printed, never stored."""
        password = os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(
            username=ADMIN_USERNAME, defaults={"email": "admin@example.com"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return {"username": ADMIN_USERNAME, "password": password}

    def _print(self, result: dict) -> None:
        for team in result["teams"]:
            self.stdout.write(self.style.MIGRATE_HEADING(f"{team['name']} ({team['id']})"))
            self.stdout.write(f"  API key: {team['api_key']}")
            for member in team["members"]:
                state = "" if member["is_active"] else " (inactive)"
                self.stdout.write(f"  member  {member['id']}  {member['name']}{state}")
            for event_type in team["event_types"]:
                self.stdout.write(
                    f"  event   {event_type['id']}  {event_type['slug']} "
                    f"({event_type['duration']} min, {event_type['scheduling_type']})"
                )
        admin = result["admin"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin: http://127.0.0.1:8000/admin/  {admin['username']} / {admin['password']}"
            )
        )
        self.stdout.write(
            "Sample bookings to try the admin on: .venv/bin/python manage.py seed_demo_bookings"
        )
