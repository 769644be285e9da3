"""manage.py create_api_key TEAM_ID [--scopes …] [--test] [--name …]."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from bookings.auth import ALL_SCOPES, hash_key
from bookings.models import ApiKey

pytestmark = pytest.mark.django_db


def run(*args) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().splitlines()


def test_prints_a_live_key_alone_on_the_last_line(team):
    lines = run(team.id)

    secret = lines[-1]
    assert secret.startswith("sk_live_")
    assert secret == secret.strip()
    assert " " not in secret
    # Shown once: nowhere else in the output.
    assert all(secret not in line for line in lines[:-1])
    key = ApiKey.objects.get()
    assert key.team == team
    assert key.key_hash == hash_key(secret)
    assert key.is_test is False
    assert sorted(key.scopes) == sorted(ALL_SCOPES)


def test_the_printed_key_authenticates(team):
    secret = run(team.id)[-1]

    response = APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/v1/bookings")

    assert response.status_code == 200


def test_test_flag_makes_an_sk_test_key(team):
    secret = run(team.id, "--test")[-1]

    assert secret.startswith("sk_test_")
    assert ApiKey.objects.get().is_test is True


def test_scopes_are_honoured(team, hosts):
    secret = run(team.id, "--scopes", "bookings:read,team:read")[-1]
    client = APIClient(HTTP_X_API_KEY=secret)

    assert sorted(ApiKey.objects.get().scopes) == ["bookings:read", "team:read"]
    assert client.get("/v1/bookings").status_code == 200
    assert client.get("/v1/team/members").status_code == 200
    assert client.get("/v1/event-types").status_code == 403


def test_scopes_tolerate_spaces_and_repeats(team):
    run(team.id, "--scopes", " event-types:read , event-types:read,")

    assert ApiKey.objects.get().scopes == ["event-types:read"]


def test_name_is_stored(team):
    run(team.id, "--name", "CI runner")

    assert ApiKey.objects.get().name == "CI runner"


@pytest.mark.parametrize(
    "scopes", ["bookings:delete", "bookings:read,admin", "BOOKINGS:READ", "", ","]
)
def test_unknown_or_no_scope_is_a_command_error(team, scopes):
    with pytest.raises(CommandError, match="scope"):
        run(team.id, "--scopes", scopes)

    assert not ApiKey.objects.exists()


def test_unknown_scope_is_named_in_the_error(team):
    with pytest.raises(CommandError, match="bookings:delete"):
        run(team.id, "--scopes", "bookings:read,bookings:delete")


def test_unknown_team_is_a_command_error(db):
    with pytest.raises(CommandError, match="team_nope"):
        run("team_nope")

    assert not ApiKey.objects.exists()


def test_each_run_makes_a_new_key(team):
    first, second = run(team.id)[-1], run(team.id)[-1]

    assert first != second
    assert ApiKey.objects.filter(team=team).count() == 2
