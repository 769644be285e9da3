"""Per-key rate limit: headers on every response to a key, 429 with Retry-After over it."""

import os
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import override_settings
from rest_framework.test import APIClient

from bookings import access
from bookings.access import REDIS_TIMEOUT
from bookings.ids import new_id
from tests.assertions import assert_error
from tests.conftest import make_client

pytestmark = pytest.mark.django_db

# 15 seconds into a minute: the window resets 45 seconds later.
NOW = datetime(2026, 12, 1, 10, 0, 15, tzinfo=UTC)
RESET = int(datetime(2026, 12, 1, 10, 1, tzinfo=UTC).timestamp())
BROKEN_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
    }
}


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _limit_headers(response) -> tuple[int, int, int]:
    return (
        int(response["X-RateLimit-Limit"]),
        int(response["X-RateLimit-Remaining"]),
        int(response["X-RateLimit-Reset"]),
    )


@override_settings(API_RATE_LIMIT=3)
def test_over_the_limit_is_429_with_retry_after(api, frozen):
    seen = [api.get("/v1/bookings") for _ in range(3)]

    assert [r.status_code for r in seen] == [200, 200, 200]
    assert [_limit_headers(r) for r in seen] == [(3, 2, RESET), (3, 1, RESET), (3, 0, RESET)]

    response = api.get("/v1/bookings")

    error = assert_error(response, 429, "rate_limited", details=set())
    assert "3" in error["message"]
    assert response["Retry-After"] == "45"
    assert _limit_headers(response) == (3, 0, RESET)
    assert response["X-Request-Id"]


@override_settings(API_RATE_LIMIT=3)
def test_the_limit_resets_with_the_next_window(api, frozen):
    for _ in range(4):
        api.get("/v1/bookings")
    assert api.get("/v1/bookings").status_code == 429

    frozen.move_to(NOW + timedelta(seconds=45))
    response = api.get("/v1/bookings")

    assert response.status_code == 200
    assert _limit_headers(response) == (3, 2, RESET + 60)


@override_settings(API_RATE_LIMIT=3)
def test_retry_after_is_at_least_one_second(api, frozen):
    frozen.move_to(datetime(2026, 12, 1, 10, 0, 59, 900_000, tzinfo=UTC))
    for _ in range(3):
        api.get("/v1/bookings")

    response = api.get("/v1/bookings")

    assert response.status_code == 429
    assert response["Retry-After"] == "1"


@override_settings(API_RATE_LIMIT=3)
def test_the_limit_is_per_key(api, team, other_api, frozen):
    for _ in range(3):
        api.get("/v1/bookings")
    assert api.get("/v1/bookings").status_code == 429

    second_key_same_team = make_client(team)

    assert second_key_same_team.get("/v1/bookings").status_code == 200
    assert other_api.get("/v1/bookings").status_code == 200
    assert _limit_headers(second_key_same_team.get("/v1/bookings"))[1] == 1


@override_settings(API_RATE_LIMIT=3)
def test_a_limited_key_cannot_read_anything(api, frozen, event_type):
    for _ in range(3):
        api.get("/v1/team/members")

    for path in ("/v1/bookings", "/v1/event-types", f"/v1/event-types/{event_type.id}"):
        assert_error(api.get(path), 429, "rate_limited")


@override_settings(API_RATE_LIMIT=3)
def test_errors_count_and_carry_the_headers(api, team, frozen):
    no_scope = make_client(team, scopes=["team:read"])
    responses = [
        no_scope.get("/v1/bookings"),  # 403
        no_scope.get(f"/v1/team/members/{new_id('mem')}"),  # 404
        no_scope.delete("/v1/team/members"),  # 405
    ]

    assert [r.status_code for r in responses] == [403, 404, 405]
    assert [_limit_headers(r)[1] for r in responses] == [2, 1, 0]
    assert no_scope.get("/v1/team/members").status_code == 429


# Answered before any view reads the key: by the URL resolver, the body-size check, or DRF's
# content negotiation (which comes before authentication).
ANSWERED_BEFORE_THE_VIEW = {
    "unknown path": (404, lambda c: c.get("/v1/no-such-thing")),
    "unknown booking path": (404, lambda c: c.post("/v1/bookings/x/y/z")),
    "no acceptable type": (406, lambda c: c.get("/v1/bookings", HTTP_ACCEPT="text/html")),
    "body too large": (
        413,
        lambda c: c.generic(
            "POST", "/v1/bookings", b"{}", content_type="application/json", CONTENT_LENGTH="300000"
        ),
    ),
    "malformed length": (
        400,
        lambda c: c.generic(
            "POST", "/v1/bookings", b"{}", content_type="application/json", CONTENT_LENGTH="-1"
        ),
    ),
}


@pytest.mark.parametrize("case", ANSWERED_BEFORE_THE_VIEW)
@override_settings(API_RATE_LIMIT=3)
def test_an_answer_given_before_the_view_counts_and_carries_the_headers(api, frozen, case):
    status, send = ANSWERED_BEFORE_THE_VIEW[case]

    answers = [send(api) for _ in range(3)]

    assert [r.status_code for r in answers] == [status] * 3
    assert [_limit_headers(r) for r in answers] == [(3, 2, RESET), (3, 1, RESET), (3, 0, RESET)]
    response = send(api)  # over the limit: refused like any other request
    assert_error(response, 429, "rate_limited", details=set())
    assert response["Retry-After"] == "45"
    assert _limit_headers(response) == (3, 0, RESET)
    assert response["X-Request-Id"]
    assert api.get("/v1/bookings").status_code == 429  # counted in the key's one window


@pytest.mark.parametrize("case", ANSWERED_BEFORE_THE_VIEW)
def test_without_a_valid_key_an_answer_before_the_view_is_unchanged(api, frozen, case):
    status, send = ANSWERED_BEFORE_THE_VIEW[case]
    wrong = APIClient(HTTP_AUTHORIZATION="Bearer sk_live_" + "0" * 43)
    malformed = APIClient(HTTP_AUTHORIZATION="Basic abc")

    for client in (APIClient(), wrong, malformed):
        response = send(client)
        assert response.status_code == status
        assert "X-RateLimit-Limit" not in response

    assert _limit_headers(api.get("/v1/bookings"))[1] == 999  # the real key: untouched


def test_default_limit_is_1000_a_minute(api):
    assert _limit_headers(api.get("/v1/bookings"))[:2] == (1000, 999)


@pytest.mark.parametrize(
    "path", ["/v1/bookings", "/v1/event-types", "/v1/team/members", "/v1/bookings?limit=0"]
)
def test_every_response_to_a_key_carries_the_headers(api, path):
    before = datetime.now(UTC).timestamp()
    response = api.get(path)
    after = datetime.now(UTC).timestamp()

    limit, remaining, reset = _limit_headers(response)
    assert limit == 1000
    assert remaining == 999
    # The Unix time the current one-minute window ends.
    assert before < reset <= after + 60
    assert reset % 60 == 0


def test_unauthenticated_requests_do_not_touch_a_counter(api):
    for _ in range(3):
        APIClient().get("/v1/bookings")

    assert _limit_headers(api.get("/v1/bookings"))[1] == 999


@override_settings(API_RATE_LIMIT=3, CACHES=BROKEN_CACHE)
def test_the_api_keeps_answering_when_the_cache_is_down(api, caplog):
    responses = [api.get("/v1/bookings") for _ in range(5)]

    # Not enforced rather than refusing everyone; the headers still say the limit.
    assert [r.status_code for r in responses] == [200] * 5
    assert all(_limit_headers(r)[:2] == (3, 3) for r in responses)
    # Logged once (more only a minute later, or when it is back), one line, no traceback.
    [line] = [r for r in caplog.records if r.name == "bookings.access"]
    assert line.levelname == "WARNING"
    assert line.getMessage().startswith("Cache unreachable (ConnectionError: ")
    assert "rate limit not enforced" in line.getMessage()
    assert line.exc_info is None


@pytest.fixture
def hung_port():
    """A port that accepts connections (the kernel's backlog) and never answers: a Redis
    that hangs, or a host gone quiet."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def test_a_hung_cache_costs_one_timeout_a_second_not_one_per_request(api, hung_port, monkeypatch):
    # The pause between tries made long, so that a slow machine's five requests all fall
    # inside it (this location's outage is new: it takes the value when first asked).
    monkeypatch.setattr(access, "CACHE_RETRY_SECONDS", 10.0)
    hung = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{hung_port}/0",
        }
    }
    timings = []
    with override_settings(API_RATE_LIMIT=3, CACHES=hung):
        for _ in range(5):
            started = time.monotonic()
            response = api.get("/v1/bookings")
            timings.append(time.monotonic() - started)
            assert response.status_code == 200

    # The first request waits out the socket timeout (0.5 s, once: a timeout is not retried);
    # the next ones, within CACHE_RETRY_SECONDS of it, do not try the cache at all.
    assert REDIS_TIMEOUT - 0.1 < timings[0] < 3 * REDIS_TIMEOUT, timings
    assert max(timings[1:]) < REDIS_TIMEOUT - 0.1, timings


@pytest.mark.redis
def test_counters_live_in_redis(api, frozen):
    import redis

    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/12")
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    server = redis.Redis.from_url(url)
    key_hash = api.get("/v1/bookings").wsgi_request.auth.key_hash
    pattern = f"ratelimit:{key_hash}:*"
    try:
        with override_settings(API_RATE_LIMIT=3, CACHES=caches):
            statuses = [api.get("/v1/bookings").status_code for _ in range(4)]
            [counter] = server.keys(pattern)
            # Shared by every process: what this one counted, Redis holds.
            assert int(server.get(counter)) == 4
            assert 0 < server.ttl(counter) <= 65
            server.set(counter, 0, keepttl=True)  # another process's view resets with it
            after_reset = api.get("/v1/bookings")
    finally:
        for counter in server.keys(pattern):
            server.delete(counter)

    assert statuses == [200, 200, 200, 429]
    assert after_reset.status_code == 200
    assert _limit_headers(after_reset)[:2] == (3, 2)
