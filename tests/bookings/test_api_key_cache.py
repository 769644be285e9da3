"""The API key cache (``bookings/access.py``): most requests resolve their key without a query,
a revocation or deletion through the product is refused at once, anything else within
``KEY_CACHE_SECONDS``; on Redis, one round trip per request counts it and fetches the key."""

from datetime import timedelta

import pytest
import redis
import time_machine
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from bookings.access import KEY_CACHE_SECONDS, _entry_name, api_key_cache
from bookings.models import ApiKey
from bookings.services import api_key_create, api_key_revoke
from tests.assertions import assert_error

pytestmark = pytest.mark.django_db
URL = "/v1/team/members"


def _client(team) -> tuple[ApiKey, APIClient]:
    key, secret = api_key_create(team=team)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())  # no touch due
    return key, APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}")


def _key_reads(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(URL)
    reads = [q for q in captured.captured_queries if 'FROM "bookings_apikey"' in q["sql"]]
    return response.status_code, len(reads)


def test_only_a_keys_first_request_reads_it(team):
    _, client = _client(team)

    assert _key_reads(client) == (200, 1)
    assert [_key_reads(client) for _ in range(3)] == [(200, 0)] * 3


def test_a_revocation_through_the_service_is_refused_at_once(
    team, django_capture_on_commit_callbacks
):
    key, client = _client(team)
    assert _key_reads(client) == (200, 1)  # cached now

    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_keys=[key])

    error = assert_error(client.get(URL), 401, "unauthorized")
    assert "revoked" in error["message"]


def test_a_read_racing_a_revocation_cannot_put_the_old_row_back(
    team, django_capture_on_commit_callbacks
):
    key, client = _client(team)
    read_before = ApiKey.objects.select_related("team").get(pk=key.pk)  # a request's miss
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_keys=[key])

    api_key_cache(read_before)  # that request now caches what it read

    assert_error(client.get(URL), 401, "unauthorized")


def test_a_deleted_key_is_refused_at_once(team, django_capture_on_commit_callbacks):
    key, client = _client(team)
    assert client.get(URL).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        key.delete()  # as the admin deletes it, or its team's deletion cascades

    error = assert_error(client.get(URL), 401, "unauthorized")
    assert error["message"] == "Invalid API key."


def test_a_change_behind_the_services_back_holds_at_most_the_cache_lifetime(team):
    key, client = _client(team)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert client.get(URL).status_code == 200
        ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())  # raw SQL, say

        clock.shift(timedelta(seconds=KEY_CACHE_SECONDS - 1))
        assert client.get(URL).status_code == 200  # the documented bound, not yet reached

        clock.shift(timedelta(seconds=2))
        assert_error(client.get(URL), 401, "unauthorized")


def test_an_unknown_key_is_never_cached(team):
    client = APIClient(HTTP_AUTHORIZATION="Bearer sk_live_not-a-key")

    assert [_key_reads(client) for _ in range(2)] == [(401, 1), (401, 1)]


# --- On Redis: one round trip ------------------------------------------------------------------


def _calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
    calls.pop("config|resetstat", None)  # the test's own
    return calls


@pytest.mark.redis
def test_on_redis_each_request_is_one_round_trip(mid_minute, team, private_redis):
    url, server = private_redis
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    key, client = _client(team)
    with override_settings(CACHES=caches):
        assert _key_reads(client) == (200, 1)  # the miss: a query, then the row cached
        server.config_resetstat()

        results = [_key_reads(client) for _ in range(5)]

        calls = _calls(server)
    assert results == [(200, 0)] * 5
    # One EVALSHA a request; the INCR, the touch mark's SET NX and the GET run inside it.
    assert calls == {"evalsha": 5, "incr": 5, "set": 5, "get": 5}
    window = int(timezone.now().timestamp()) // 60
    assert int(server.get(f"ratelimit:{key.key_hash}:{window}")) == 6
    assert server.ttl(_entry_name(key.key_hash)) <= KEY_CACHE_SECONDS


@pytest.mark.redis
def test_on_redis_a_revocation_reaches_the_cached_row(
    team, private_redis, django_capture_on_commit_callbacks
):
    url, _server = private_redis
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    key, client = _client(team)
    with override_settings(CACHES=caches):
        assert _key_reads(client) == (200, 1)
        assert _key_reads(client) == (200, 0)
        with django_capture_on_commit_callbacks(execute=True):
            api_key_revoke(api_keys=[key])

        assert_error(client.get(URL), 401, "unauthorized")
