"""API keys: both headers, 401 for missing / unknown / revoked / malformed, 403 for scopes."""

import pytest
from rest_framework.test import APIClient

from bookings.auth import ALL_SCOPES, hash_key
from bookings.errors import ValidationFailed
from bookings.ids import new_id
from bookings.models import ApiKey
from bookings.services import api_key_create, api_key_revoke
from tests.assertions import assert_error, assert_ok
from tests.conftest import make_client
from tests.factories import BookingFactory, TeamMemberFactory

pytestmark = pytest.mark.django_db

# Every read endpoint with the scope it needs; {id} is filled with an object of our team.
ENDPOINTS = [
    ("/v1/bookings", "bookings:read"),
    ("/v1/bookings/{booking}", "bookings:read"),
    ("/v1/event-types", "event-types:read"),
    ("/v1/event-types/{event_type}", "event-types:read"),
    ("/v1/team/members", "team:read"),
    ("/v1/team/members/{member}", "team:read"),
]


@pytest.fixture
def objects(event_type, hosts):
    booking = BookingFactory(event_type=event_type, assigned_to=hosts[0])
    return {"booking": booking.id, "event_type": event_type.id, "member": hosts[0].id}


def _url(template: str, objects: dict) -> str:
    return template.format(**objects)


@pytest.fixture
def key(team):
    return api_key_create(team=team)


@pytest.fixture
def revoke(django_capture_on_commit_callbacks):
    """Revoke as the product does (the service, the admin's action): the key's cached row is
    rewritten once the revocation commits."""

    def revoke(api_key: ApiKey) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            api_key_revoke(api_keys=[api_key])

    return revoke


def test_bearer_header_authenticates(key, objects):
    _, secret = key
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert_ok(client.get(f"/v1/bookings/{objects['booking']}"), "booking")


def test_bearer_scheme_is_case_insensitive(key, objects):
    _, secret = key
    client = APIClient(HTTP_AUTHORIZATION=f"bearer {secret}")

    assert_ok(client.get(f"/v1/bookings/{objects['booking']}"), "booking")


def test_x_api_key_header_authenticates(key, objects):
    _, secret = key
    client = APIClient(HTTP_X_API_KEY=secret)

    assert_ok(client.get(f"/v1/bookings/{objects['booking']}"), "booking")


def test_test_keys_work_like_live_keys(team, objects):
    _, secret = api_key_create(team=team, test=True)
    assert secret.startswith("sk_test_")

    assert_ok(APIClient(HTTP_X_API_KEY=secret).get("/v1/bookings"), "bookings")


@pytest.mark.parametrize(("template", "scope"), ENDPOINTS)
def test_no_key_is_401(objects, template, scope):
    response = APIClient().get(_url(template, objects))

    assert_error(response, 401, "unauthorized", details=set())
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "X-RateLimit-Limit" not in response


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": "Bearer sk_live_not-a-key"},
        {"HTTP_X_API_KEY": "sk_live_not-a-key"},
        {"HTTP_AUTHORIZATION": "Bearer sk_test_"},
        {"HTTP_AUTHORIZATION": "Bearer " + "x" * 5000},
    ],
    ids=["bearer", "x-api-key", "bare-prefix", "huge"],
)
def test_unknown_key_is_401(objects, headers):
    response = APIClient(**headers).get("/v1/bookings")

    error = assert_error(response, 401, "unauthorized", details=set())
    assert "sk_live_not-a-key" not in error["message"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Token {secret}",
        "Basic {secret}",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "{secret}",
        "Bearer: {secret}",
        "   ",
    ],
)
def test_malformed_authorization_header_is_401(key, objects, authorization):
    _, secret = key
    client = APIClient(HTTP_AUTHORIZATION=authorization.format(secret=secret))

    assert_error(client.get("/v1/bookings"), 401, "unauthorized")


def test_malformed_authorization_is_not_rescued_by_a_good_x_api_key(key):
    _, secret = key
    client = APIClient(HTTP_AUTHORIZATION=f"Token {secret}", HTTP_X_API_KEY=secret)

    assert_error(client.get("/v1/bookings"), 401, "unauthorized")


def test_two_different_keys_are_401_and_count_against_neither(team, other_team):
    _, ours = api_key_create(team=team)
    _, theirs = api_key_create(team=other_team)

    for first, second in ((ours, theirs), (ours, ours + "x"), (theirs, ours)):
        client = APIClient(HTTP_AUTHORIZATION=f"Bearer {first}", HTTP_X_API_KEY=second)
        error = assert_error(client.get("/v1/bookings"), 401, "unauthorized")
        assert "different" in error["message"]

    for secret in (ours, theirs):  # neither was counted
        response = APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/v1/bookings")
        assert response["X-RateLimit-Remaining"] == "999"


def test_the_same_key_in_both_headers_is_one_key(key):
    _, secret = key
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_X_API_KEY=f" {secret} ")

    assert_ok(client.get("/v1/bookings"), "bookings")


@pytest.mark.parametrize(("template", "scope"), ENDPOINTS)
def test_revoked_key_is_401_everywhere(key, objects, template, scope, revoke):
    api_key, secret = key
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(_url(template, objects)).status_code == 200  # now cached
    revoke(api_key)

    response = client.get(_url(template, objects))

    error = assert_error(response, 401, "unauthorized", details=set())
    assert "revoked" in error["message"].lower()


def test_revoked_key_via_x_api_key_is_401(key, revoke):
    api_key, secret = key
    revoke(api_key)

    assert_error(APIClient(HTTP_X_API_KEY=secret).get("/v1/bookings"), 401, "unauthorized")


def test_revoking_one_key_leaves_the_teams_other_keys_working(team, key, revoke):
    api_key, _ = key
    other = make_client(team)
    revoke(api_key)

    assert other.get("/v1/bookings").status_code == 200


def test_key_is_stored_only_as_a_hash(key):
    api_key, secret = key
    row = ApiKey.objects.filter(pk=api_key.pk).values().get()

    assert row["key_hash"] == hash_key(secret)
    assert row["key_hash"] != secret
    for column, value in row.items():
        assert secret not in str(value), column
    # The visible prefix identifies the key but is far too short to use.
    assert secret.startswith(row["prefix"])
    assert len(row["prefix"]) <= 12
    assert not ApiKey.objects.filter(key_hash=secret).exists()


def test_secrets_are_long_random_and_prefixed(team):
    secrets_ = [api_key_create(team=team)[1] for _ in range(5)]

    assert all(s.startswith("sk_live_") for s in secrets_)
    assert all(len(s) >= len("sk_live_") + 43 for s in secrets_)  # 256 bits in base64
    assert len(set(secrets_)) == 5


def test_the_hash_of_a_key_is_not_a_key(key):
    api_key, _ = key

    response = APIClient(HTTP_AUTHORIZATION=f"Bearer {api_key.key_hash}").get("/v1/bookings")

    assert_error(response, 401, "unauthorized")


def test_unknown_scope_is_refused_at_creation(team):
    with pytest.raises(ValidationFailed, match="bookings:delete"):
        api_key_create(team=team, scopes=["bookings:read", "bookings:delete"])
    with pytest.raises(ValidationFailed, match="none"):
        api_key_create(team=team, scopes=[])
    assert not ApiKey.objects.exists()


def test_default_scopes_are_all(key):
    api_key, _ = key

    assert sorted(api_key.scopes) == sorted(ALL_SCOPES)
    assert set(ALL_SCOPES) == {
        "bookings:read",
        "bookings:create",
        "bookings:update",
        "bookings:cancel",
        "bookings:reschedule",
        "bookings:transition",
        "event-types:read",
        "team:read",
    }


@pytest.mark.parametrize(("template", "scope"), ENDPOINTS)
def test_missing_scope_is_403(team, objects, template, scope):
    others = [s for s in ALL_SCOPES if s != scope]
    client = make_client(team, scopes=others)

    response = client.get(_url(template, objects))

    error = assert_error(response, 403, "forbidden", details=set())
    assert scope in error["message"]


@pytest.mark.parametrize(("template", "scope"), ENDPOINTS)
def test_the_one_scope_needed_is_enough(team, objects, template, scope):
    client = make_client(team, scopes=[scope])

    assert client.get(_url(template, objects)).status_code == 200


def test_403_is_decided_before_the_object_is_looked_up(team, django_assert_num_queries):
    client = make_client(team, scopes=["team:read"])

    with django_assert_num_queries(0):  # the key is cached; the booking is never read
        response = client.get(f"/v1/bookings/{new_id('bkg')}")

    # 403, not 404: a key without the scope learns nothing about ids.
    assert_error(response, 403, "forbidden")


def test_a_key_sees_only_its_own_team(api, other_api, team, other_team):
    ours = BookingFactory(event_type__team=team)
    theirs = BookingFactory(event_type__team=other_team)

    our_ids = [b["id"] for b in api.get("/v1/bookings").json()["bookings"]]
    their_ids = [b["id"] for b in other_api.get("/v1/bookings").json()["bookings"]]

    assert our_ids == [ours.id]
    assert their_ids == [theirs.id]


def test_members_of_another_team_are_invisible(api, other_team, hosts):
    TeamMemberFactory(team=other_team)

    listed = {m["id"] for m in api.get("/v1/team/members").json()["members"]}

    assert listed == {h.id for h in hosts}
