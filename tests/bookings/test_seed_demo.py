"""manage.py seed_demo [--json]: the demo teams once, a fresh working key per team per run."""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from bookings.models import ApiKey, EventType, EventTypeHost, Team, TeamMember

pytestmark = pytest.mark.django_db

EXPECTED_EVENT_TYPES = {
    # slug: duration, scheduling type, requires confirmation, buffer_after, hosts
    "intro-call": (30, "ROUND_ROBIN", False, 0, "active"),
    "deep-dive": (60, "SOLO", True, 0, "first"),
    "office-hours": (15, "ROUND_ROBIN", False, 10, "active"),
}


@pytest.fixture(autouse=True)
def _random_admin_password(monkeypatch):
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def seed_json() -> dict:
    return json.loads(seed("--json"))


def test_json_has_the_contract_shape():
    result = seed_json()

    assert set(result) == {"teams", "admin"}
    assert set(result["admin"]) == {"username", "password"}
    assert len(result["teams"]) == 2
    for team in result["teams"]:
        assert set(team) == {"id", "name", "api_key", "members", "event_types"}
        assert team["id"].startswith("team_")
        assert team["api_key"].startswith("sk_")
        assert len(team["members"]) == 4
        for member in team["members"]:
            assert set(member) == {"id", "name", "email", "is_active"}
            assert member["id"].startswith("mem_")
        assert len(team["event_types"]) == 3
        for event_type in team["event_types"]:
            assert set(event_type) == {
                "id",
                "slug",
                "duration",
                "scheduling_type",
                "requires_confirmation",
                "host_ids",
            }
            assert event_type["id"].startswith("evt_")


def test_each_team_has_three_active_members_and_one_inactive():
    for team in seed_json()["teams"]:
        flags = [m["is_active"] for m in team["members"]]
        assert sorted(flags) == [False, True, True, True]
        assert TeamMember.objects.filter(team_id=team["id"], is_active=True).count() == 3


def test_event_types_have_the_right_settings_and_hosts():
    for team in seed_json()["teams"]:
        active = [m["id"] for m in team["members"] if m["is_active"]]
        by_slug = {e["slug"]: e for e in team["event_types"]}
        assert set(by_slug) == set(EXPECTED_EVENT_TYPES)
        for slug, (duration, kind, confirm, buffer_after, hosts) in EXPECTED_EVENT_TYPES.items():
            printed = by_slug[slug]
            assert printed["duration"] == duration, slug
            assert printed["scheduling_type"] == kind, slug
            assert printed["requires_confirmation"] is confirm, slug
            expected_hosts = sorted(active) if hosts == "active" else [active[0]]
            assert sorted(printed["host_ids"]) == expected_hosts, slug
            row = EventType.objects.get(pk=printed["id"])
            assert row.team_id == team["id"]
            assert row.duration == duration
            assert row.buffer_before == 0
            assert row.buffer_after == buffer_after, slug
            assert row.minimum_booking_notice == 60
            assert row.is_active is True
            assert sorted(row.hosts.values_list("id", flat=True)) == expected_hosts


def test_the_first_active_member_hosts_deep_dive():
    for team in seed_json()["teams"]:
        first_active = next(m for m in team["members"] if m["is_active"])
        deep_dive = next(e for e in team["event_types"] if e["slug"] == "deep-dive")
        assert deep_dive["host_ids"] == [first_active["id"]]


def test_the_printed_key_authenticates_for_its_own_team():
    result = seed_json()

    for team in result["teams"]:
        client = APIClient(HTTP_AUTHORIZATION=f"Bearer {team['api_key']}")
        event_types = client.get("/v1/event-types").json()["event_types"]
        members = client.get("/v1/team/members").json()["members"]
        assert sorted(e["id"] for e in event_types) == sorted(e["id"] for e in team["event_types"])
        assert sorted(m["id"] for m in members) == sorted(m["id"] for m in team["members"])
        # The key has every scope.
        assert client.get("/v1/bookings").status_code == 200


def test_running_twice_creates_no_duplicates_but_a_fresh_key_per_team():
    first = seed_json()
    counts = (
        Team.objects.count(),
        TeamMember.objects.count(),
        EventType.objects.count(),
        EventTypeHost.objects.count(),
    )

    second = seed_json()

    assert counts == (2, 8, 6, 14)
    assert (
        Team.objects.count(),
        TeamMember.objects.count(),
        EventType.objects.count(),
        EventTypeHost.objects.count(),
    ) == counts
    assert get_user_model().objects.filter(username=first["admin"]["username"]).count() == 1
    for before, after in zip(first["teams"], second["teams"], strict=True):
        assert after["id"] == before["id"]
        assert after["members"] == before["members"]
        assert after["event_types"] == before["event_types"]
        assert after["api_key"] != before["api_key"]
        # Both keys work: a run adds a key, it does not revoke the earlier one.
        for secret in (before["api_key"], after["api_key"]):
            assert APIClient(HTTP_X_API_KEY=secret).get("/v1/bookings").status_code == 200
    assert ApiKey.objects.count() == 4


def test_the_admin_can_log_in_with_the_printed_password():
    admin = seed_json()["admin"]
    user = get_user_model().objects.get(username=admin["username"])

    assert user.is_superuser
    assert user.is_staff
    client = Client()
    assert client.login(username=admin["username"], password=admin["password"])
    assert client.get("/admin/").status_code == 200


def test_the_admin_password_is_refreshed_each_run():
    first = seed_json()["admin"]
    second = seed_json()["admin"]

    assert not Client().login(username=first["username"], password=first["password"])
    assert Client().login(username=second["username"], password=second["password"])


def test_demo_admin_password_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "demo-password-123")

    assert seed_json()["admin"]["password"] == "demo-password-123"


def test_without_json_it_prints_the_same_for_people():
    output = seed()

    keys = list(ApiKey.objects.filter(name="seed_demo"))
    assert len(keys) == 2
    printed = [
        line.split("API key:")[1].strip() for line in output.splitlines() if "API key:" in line
    ]
    assert len(printed) == 2
    for secret in printed:
        assert APIClient(HTTP_X_API_KEY=secret).get("/v1/bookings").status_code == 200
    for team in Team.objects.all():
        assert team.name in output
        assert team.id in output
    for slug in EXPECTED_EVENT_TYPES:
        assert slug in output
    assert "admin" in output
