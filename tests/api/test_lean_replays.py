"""A retried keyed POST (create, reschedule) is answered from the cache: its stored response is
fetched in the request's admission round trip (``bookings.access``), after the first replay
read it from the database; the lean path (``LeanReadMixin.lean_replays``) answers it without
DRF's machinery, exactly as the full path would — status, headers and bytes, errors included —
counting each request once and sending no query."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings import access, idempotency
from bookings.access import REPLAY_CACHE_SECONDS, replay_name
from bookings.auth import hash_key
from bookings.models import ApiKey, Booking, IdempotencyKey
from bookings.viewsets import BookingViewSet

from ..bookings.create_helpers import create_body, in_days

pytestmark = pytest.mark.django_db

_PER_REQUEST = {"X-RateLimit-Remaining", "X-RateLimit-Reset"}


def _post(client, path: str, body, key: str | None, **extra):
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    extra.setdefault("content_type", "application/json")
    return client.generic("POST", path, raw, HTTP_X_REQUEST_ID="replay-test", **extra)


def _answer(response) -> tuple[int, dict, bytes]:
    headers = {name: value for name, value in response.items() if name not in _PER_REQUEST}
    return response.status_code, headers, response.content


def _both(monkeypatch, client, path, body, key, **extra):
    lean = _answer(_post(client, path, body, key, **extra))
    with monkeypatch.context() as patched:
        patched.setattr(BookingViewSet, "lean_replays", frozenset())
        full = _answer(_post(client, path, body, key, **extra))
    return lean, full


def _queries(call):
    with CaptureQueriesContext(connection) as captured:
        response = call()
    return response, len(captured.captured_queries)


@pytest.fixture
def created(api, event_type):
    """A create with a key, replayed once: the stored response is now cached."""
    body = create_body(event_type, in_days(3))
    first = _post(api, "/v1/bookings", body, "retry-me")
    assert first.status_code == 201
    replay, queries = _queries(lambda: _post(api, "/v1/bookings", body, "retry-me"))
    assert (replay.status_code, queries) == (200, 1)  # read from the database, then cached
    return body, first


def test_a_cached_replay_sends_no_query_and_the_first_bytes(api, created):
    body, first = created
    for _ in range(3):
        replay, queries = _queries(lambda: _post(api, "/v1/bookings", body, "retry-me"))
        assert queries == 0
        assert replay.status_code == 200
        assert replay.content == first.content[:-1] + b',"idempotent_replay":true}'
        assert replay["Location"] == first["Location"]
        assert replay["Idempotent-Replayed"] == "true"
    assert Booking.objects.count() == 1


def test_lean_and_full_paths_answer_replays_the_same(api, created, monkeypatch):
    body, _first = created
    other = {**body, "attendee": {"name": "Someone Else", "email": "else@example.com"}}
    cases = [
        (body, {}),  # the replay
        (other, {}),  # another body with the key: 422
        (b'{"event_type_id": ', {}),  # not JSON: 400 from the parser
        (b'{"a": "\\u0000"}', {}),  # NUL: 400 from the parser
        (b"", {}),  # no body: DRF's empty data, not the stored body: 422
        (body, {"QUERY_STRING": "x=1"}),  # a query string: 400
        (body, {"content_type": "application/json; charset=utf-8"}),  # the full path's case
        (body, {"HTTP_ACCEPT": "application/json"}),
        (body, {"HTTP_ACCEPT": "text/html"}),  # 406
    ]
    statuses = []
    for raw, extra in cases:
        lean, full = _both(monkeypatch, api, "/v1/bookings", raw, "retry-me", **extra)
        assert lean == full, (raw, extra)
        statuses.append(lean[0])
    assert statuses == [200, 422, 400, 400, 422, 400, 200, 200, 406]
    assert Booking.objects.count() == 1


def test_a_new_key_and_a_keyless_create_answer_as_the_full_path(
    mid_minute, api, event_type, monkeypatch
):
    # Not retries: the lean path hands them to the full path, authenticated and counted once.
    for key, day in (("fresh-1", 4), (None, 5)):
        response = _post(api, "/v1/bookings", create_body(event_type, in_days(day)), key)
        assert response.status_code == 201
    assert Booking.objects.count() == 2
    remaining = [
        int(_post(api, "/v1/bookings", b"{", key)["X-RateLimit-Remaining"])
        for key in ("fresh-2", "fresh-3", None)
    ]
    assert remaining == list(range(remaining[0], remaining[0] - 3, -1))


def test_refused_keys_answer_replays_as_the_full_path(created, monkeypatch, refused_clients):
    body, _first = created
    statuses = []
    for client in refused_clients:
        lean, full = _both(monkeypatch, client, "/v1/bookings", body, "retry-me")
        assert lean == full
        statuses.append(lean[0])
    assert statuses == [403, 401, 401, 401]


def test_over_the_rate_limit_a_replay_is_refused(mid_minute, api, created, settings, monkeypatch):
    body, _first = created
    settings.API_RATE_LIMIT = 2  # the fixture's two requests have used it up
    lean, full = _both(monkeypatch, api, "/v1/bookings", body, "retry-me")
    assert lean == full
    assert lean[0] == 429
    assert lean[1]["Retry-After"] == "30"


def test_each_replay_is_counted_once(mid_minute, api, created):
    body, _first = created
    bodies = [body, {"other": 1}, b"{", body]  # 200, 422, 400 (the full path's), 200
    remaining = [
        int(_post(api, "/v1/bookings", sent, "retry-me")["X-RateLimit-Remaining"])
        for sent in bodies
    ]
    assert remaining == list(range(remaining[0], remaining[0] - len(bodies), -1))


def test_a_cached_replay_builds_no_drf_request(api, created, drf_requests_built):
    body, _first = created
    built = drf_requests_built
    assert _post(api, "/v1/bookings", body, "retry-me").status_code == 200
    assert built == []
    assert _post(api, "/v1/bookings", {"other": 1}, "retry-me").status_code == 422
    assert built == [1]  # an error is answered by the full path


def test_another_team_with_the_same_key_gets_its_own_booking(api, other_api, created):
    body, _first = created
    # The other team's key, the same Idempotency-Key and body: its own create (the event type
    # is not its own: 400), never our team's cached response.
    response = _post(other_api, "/v1/bookings", body, "retry-me")
    assert response.status_code == 400
    assert "Idempotent-Replayed" not in response
    assert response.json()["error"]["code"] == "validation_error"
    assert Booking.objects.count() == 1


def test_a_reschedule_replay_is_cached_too(api, event_type, monkeypatch):
    booking = _post(api, "/v1/bookings", create_body(event_type, in_days(6)), None).json()
    path = f"/v1/bookings/{booking['booking']['id']}/reschedule"
    body = {"requested_time": create_body(event_type, in_days(7))["requested_time"]}
    first = _post(api, path, body, "move-it")
    assert first.status_code == 201
    assert _queries(lambda: _post(api, path, body, "move-it"))[1] == 1
    replay, queries = _queries(lambda: _post(api, path, body, "move-it"))
    assert (replay.status_code, queries) == (200, 0)
    assert replay.content == first.content[:-1] + b',"idempotent_replay":true}'
    lean, full = _both(monkeypatch, api, path, body, "move-it")
    assert lean == full
    # A create's key, cached, on the reschedule (another endpoint): 422 from the cache.
    created = _post(api, "/v1/bookings", create_body(event_type, in_days(8)), "create-key")
    assert created.status_code == 201
    assert (
        _post(api, "/v1/bookings", create_body(event_type, in_days(8)), "create-key").status_code
        == 200
    )
    reused, queries = _queries(lambda: _post(api, path, body, "create-key"))
    assert (reused.status_code, queries) == (422, 0)
    lean, full = _both(monkeypatch, api, path, body, "create-key")
    assert lean == full


def test_the_cached_replay_never_outlives_its_row(api, event_type, monkeypatch):
    remembered = []
    monkeypatch.setattr(
        idempotency, "replay_remember", lambda *args: remembered.append(args) or None
    )
    body = create_body(event_type, in_days(3))
    assert _post(api, "/v1/bookings", body, "short").status_code == 201
    row = IdempotencyKey.objects.get(key="short")
    assert _post(api, "/v1/bookings", body, "short").status_code == 200
    IdempotencyKey.objects.filter(pk=row.pk).update(
        expires_at=timezone.now() + timedelta(seconds=30)
    )
    assert _post(api, "/v1/bookings", body, "short").status_code == 200
    IdempotencyKey.objects.filter(pk=row.pk).update(
        expires_at=timezone.now() + timedelta(milliseconds=500)
    )
    assert _post(api, "/v1/bookings", body, "short").status_code == 200
    (team, key, _, long), (_, _, _, short) = remembered  # the last: under a second, not cached
    assert (team, key) == (row.team_id, "short")
    assert long == REPLAY_CACHE_SECONDS
    assert 28 < short <= 29


@pytest.mark.redis
def test_on_redis_a_replay_is_one_round_trip(api, created, private_redis, team):
    url, server = private_redis
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    body, first = created
    access._redis_script.cache_clear()
    try:
        with override_settings(CACHES=caches):
            key = ApiKey.objects.get(key_hash=hash_key(api.secret))
            access.api_keys_recache([key.key_hash])
            assert _queries(lambda: _post(api, "/v1/bookings", body, "retry-me"))[1] == 1
            name = replay_name(team.id, "retry-me")
            assert 0 < server.pttl(name) <= REPLAY_CACHE_SECONDS * 1000
            server.config_resetstat()

            answers = [_queries(lambda: _post(api, "/v1/bookings", body, "retry-me"))]
            answers.append(_queries(lambda: _post(api, "/v1/bookings", {"x": 1}, "retry-me")))
            stats = server.info("commandstats")
    finally:
        access._redis_script.cache_clear()
    (replay, queries), (reused, reused_queries) = answers
    assert (replay.status_code, queries, reused.status_code, reused_queries) == (200, 0, 422, 0)
    assert replay.content == first.content[:-1] + b',"idempotent_replay":true}'
    calls = {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
    calls.pop("config|resetstat", None)
    # One EVALSHA each: the counter, the touch mark, the key's entry and the replay's.
    assert calls == {"evalsha": 2, "incr": 2, "set": 2, "get": 4}
