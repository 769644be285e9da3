"""``ApiKey.last_used_at``: written by authentication at most once a minute, by one UPDATE."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from bookings.auth import LAST_USED_RESOLUTION, api_key_touch
from bookings.models import ApiKey
from bookings.services import api_key_create

pytestmark = pytest.mark.django_db

URL = "/v1/team/members"  # two queries in the steady state: the key, the page


def _client(team, last_used_at=None) -> tuple[ApiKey, APIClient]:
    key, secret = api_key_create(team=team)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=last_used_at)
    return key, APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}")


def _get(client) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(URL)
    return response.status_code, [q["sql"] for q in captured.captured_queries]


def _key_updates(queries: list[str]) -> list[str]:
    return [sql for sql in queries if sql.startswith('UPDATE "bookings_apikey"')]


@pytest.mark.parametrize("age", [None, LAST_USED_RESOLUTION + timedelta(seconds=1)])
def test_a_never_used_or_stale_key_costs_one_update(team, age):
    before = timezone.now()
    key, client = _client(team, None if age is None else before - age)

    status, queries = _get(client)

    assert status == 200
    assert len(queries) == 3, queries
    assert len(_key_updates(queries)) == 1, queries
    key.refresh_from_db()
    assert before <= key.last_used_at <= timezone.now()


def test_a_key_used_under_a_minute_ago_is_not_written(team):
    recently = timezone.now() - LAST_USED_RESOLUTION + timedelta(seconds=5)
    key, client = _client(team, recently)

    status, queries = _get(client)

    assert status == 200
    assert len(queries) == 2, queries
    assert _key_updates(queries) == []
    key.refresh_from_db()
    assert key.last_used_at == recently


def test_the_second_request_of_a_minute_writes_nothing(team):
    key, client = _client(team)
    _get(client)
    key.refresh_from_db()
    first = key.last_used_at

    status, queries = _get(client)

    assert status == 200
    assert _key_updates(queries) == []
    key.refresh_from_db()
    assert key.last_used_at == first


def test_a_revoked_key_is_401_and_not_touched(team):
    key, client = _client(team)
    revoked_at = timezone.now() - timedelta(days=1)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=revoked_at)

    status, queries = _get(client)

    assert status == 401
    assert _key_updates(queries) == []
    key.refresh_from_db()
    assert key.last_used_at is None
    assert key.revoked_at == revoked_at


def test_the_update_rechecks_the_row_so_concurrent_requests_write_once(team):
    """Two requests read the stale key together; the second's UPDATE finds it fresh."""
    key, _ = api_key_create(team=team)
    read_by_the_other_request = ApiKey.objects.get(pk=key.pk)
    api_key_touch(key)
    key.refresh_from_db()
    written = key.last_used_at

    api_key_touch(read_by_the_other_request)  # its copy still says NULL

    key.refresh_from_db()
    assert key.last_used_at == written


def test_a_key_revoked_after_it_was_read_is_not_touched(team):
    key, _ = api_key_create(team=team)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())

    api_key_touch(key)  # the copy read before the revocation

    key.refresh_from_db()
    assert key.last_used_at is None
