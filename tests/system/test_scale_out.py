"""Two app instances — two gunicorn masters with the production configuration file, two sync
workers each, on two ports — sharing only PostgreSQL (the test database) and Redis (cache and
broker). Concurrent requests spread over both, released together by a barrier, every outcome
counted: the guarantees the README's "Two instances" states hold across processes."""

import os
import re
import time
from collections import Counter
from datetime import timedelta

import pytest
import redis
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User
from django.utils import timezone

from bench.soak import instance_start, process_stop
from bookings.access import KEY_CACHE_SECONDS
from bookings.consistency import consistency_check
from bookings.models import ApiKey, Booking, IdempotencyKey
from bookings.services import api_key_create
from tests.concurrency import run_together
from tests.factories import EventTypeFactory
from tests.notifications.live import process_environment

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LIMIT = 10  # API_RATE_LIMIT of both instances: small, so a round of requests crosses it
REPLAY_MARKER = b',"idempotent_replay":true'


@pytest.fixture(scope="module")
def instances(django_db_setup, tmp_path_factory):
    """(A, B): the base URLs of two gunicorn masters on the test database."""
    redis_url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/13")
    redis.Redis.from_url(redis_url).flushdb()  # our own database number
    env = process_environment("memorymail://")
    env.update(
        CACHE_URL=redis_url,
        CELERY_BROKER_URL=redis_url,  # the emails are queued there; no worker sends them
        API_RATE_LIMIT=str(LIMIT),
    )
    logs = tmp_path_factory.mktemp("instances")
    started, urls = [], []
    try:
        for name in "AB":
            process, url = instance_start(env, logs / f"gunicorn-{name}.log", workers=2)
            started.append(process)
            urls.append(url)
        yield tuple(urls)
    finally:
        for process in started:
            process_stop(process)


@pytest.fixture
def solo(team, hosts):
    return EventTypeFactory(team=team, hosts=hosts[:1], scheduling_type="SOLO")


@pytest.fixture
def round_robin(team, hosts):
    return EventTypeFactory(team=team, hosts=hosts, buffer_after=10)


def fresh_key(team) -> str:
    """A key of its own per round: each starts with a whole rate-limit window."""
    return api_key_create(team=team)[1]


def spread(instances, count: int) -> list[str]:
    """``count`` base URLs alternating between the two instances."""
    return [instances[i % 2] for i in range(count)]


def together(urls: list[str], send) -> list[requests.Response]:
    """``send(url, i)`` from one thread per URL, released at once; every answer (a request
    that raised is an error the test reports, not a lost outcome)."""
    return run_together(len(urls), lambda i: send(urls[i], i))


def outcome(response: requests.Response) -> str:
    if 400 <= response.status_code < 500:
        return f"{response.status_code} {response.json()['error']['code']}"
    return str(response.status_code)


def slot(days: int, hour: int) -> str:
    moment = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
    return moment.replace(hour=hour).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_one_key_is_rate_limited_once_across_both(instances, team):
    outcomes, windows = Counter(), Counter()
    for _ in range(3):
        secret = fresh_key(team)
        urls = spread(instances, 3 * LIMIT)
        responses = together(
            urls,
            lambda url, i, secret=secret: requests.get(
                f"{url}/v1/event-types", headers={"Authorization": f"Bearer {secret}"}, timeout=60
            ),
        )
        outcomes.update(outcome(r) for r in responses)
        # A round may straddle the minute's boundary: hold each window to the limit alone.
        by_window: dict[str, list[requests.Response]] = {}
        for response in responses:
            assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
            by_window.setdefault(response.headers["X-RateLimit-Reset"], []).append(response)
        for answers in by_window.values():
            windows[len(by_window)] += 1
            ok = [r for r in answers if r.status_code == 200]
            refused = [r for r in answers if r.status_code == 429]
            assert len(ok) + len(refused) == len(answers), [outcome(r) for r in answers]
            assert len(ok) == min(LIMIT, len(answers))
            # Each success took its own place in the one shared count.
            remaining = sorted(int(r.headers["X-RateLimit-Remaining"]) for r in ok)
            assert remaining == list(range(LIMIT - len(ok), LIMIT))
            for response in refused:
                assert response.headers["X-RateLimit-Remaining"] == "0"
                assert 1 <= int(response.headers["Retry-After"]) <= 60
    print(f"rate limit over two instances: {dict(outcomes)}; windows per round: {dict(windows)}")
    assert not [o for o in outcomes if o.startswith("5")]


def test_one_idempotency_key_sent_to_both_makes_one_booking(instances, team, round_robin):
    outcomes = Counter()
    rounds = 12
    for n in range(rounds):
        secret = fresh_key(team)
        email = f"idem{n}@example.com"
        body = {
            "event_type_id": round_robin.id,
            "requested_time": slot(3 + n, 10),
            "attendee": {"name": "Ada", "email": email},
        }
        headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": f"round-{n}"}
        responses = together(
            spread(instances, 4),
            lambda url, i, body=body, headers=headers: requests.post(
                f"{url}/v1/bookings", json=body, headers=headers, timeout=60
            ),
        )
        round_outcomes = Counter(outcome(r) for r in responses)
        outcomes.update(round_outcomes)
        assert Booking.objects.filter(attendee_email=email).count() == 1
        assert IdempotencyKey.objects.filter(key=f"round-{n}").count() == 1
        created = [r for r in responses if r.status_code == 201]
        assert len(created) == 1, round_outcomes
        first = created[0].content
        for response in responses:
            if response.status_code == 200:
                assert response.content == first[:-1] + REPLAY_MARKER + first[-1:]
                assert response.headers["Idempotent-Replayed"] == "true"
            elif response.status_code == 409:
                assert outcome(response) == "409 idempotency_request_in_progress"
                assert response.headers["Retry-After"] == "1"
            else:
                assert response.status_code == 201
    print(f"one Idempotency-Key on two instances, {rounds} rounds of 4: {dict(outcomes)}")
    assert outcomes["201"] == rounds
    assert set(outcomes) <= {"201", "200", "409 idempotency_request_in_progress"}


def test_no_slot_is_double_booked_across_both(instances, team, solo, round_robin):
    outcomes = Counter()
    rounds = 6
    for n in range(rounds):
        event_type = solo if n % 2 == 0 else round_robin
        secret = fresh_key(team)
        body = {
            "event_type_id": event_type.id,
            "requested_time": slot(20 + n, 14),
            "attendee": {"name": "Ada", "email": f"slot{n}@example.com"},
        }
        responses = together(
            spread(instances, 8),
            lambda url, i, body=body, secret=secret: requests.post(
                f"{url}/v1/bookings",
                json=body,
                headers={"Authorization": f"Bearer {secret}"},
                timeout=60,
            ),
        )
        round_outcomes = Counter(outcome(r) for r in responses)
        outcomes.update(round_outcomes)
        free_hosts = 1 if event_type == solo else 3
        assert round_outcomes == {"201": free_hosts, "409 slot_unavailable": 8 - free_hosts}
        made = Booking.objects.filter(attendee_email=f"slot{n}@example.com")
        assert made.count() == free_hosts
        assert made.values("assigned_to").distinct().count() == free_hosts
    print(f"one slot taken from two instances, {rounds} rounds of 8: {dict(outcomes)}")
    # No host has two overlapping active bookings, and the rest of the data is whole too.
    report = consistency_check(drained=False)
    assert report.ok, report.violations


def _csrf(page: requests.Response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def test_a_key_revoked_through_one_is_refused_by_the_other(instances, team):
    a, b = instances
    secret = fresh_key(team)
    key = ApiKey.objects.get(team=team)
    auth = {"Authorization": f"Bearer {secret}"}
    # The key is in use on both: its entry is in the shared cache.
    for url in (a, b):
        assert requests.get(f"{url}/v1/team/members", headers=auth, timeout=60).status_code == 200

    User.objects.create(
        username="staff",
        is_staff=True,
        is_superuser=True,
        # A cheap hash the instances can check (this process's settings hash with MD5).
        password=PBKDF2PasswordHasher().encode("s3cret-pass", "saltsalt", iterations=1000),
    )
    admin = requests.Session()
    login = admin.get(f"{a}/admin/login/", timeout=60)
    done = admin.post(
        f"{a}/admin/login/",
        data={
            "username": "staff",
            "password": "s3cret-pass",
            "csrfmiddlewaretoken": _csrf(login),
            "next": "/admin/",
        },
        timeout=60,
    )
    assert done.status_code == 200
    assert "Log out" in done.text, done.text[:500]
    changelist = admin.get(f"{a}/admin/bookings/apikey/", timeout=60)
    assert changelist.status_code == 200

    # Instance B is polled until it refuses the key, from the moment A's action answers.
    revoked = admin.post(
        f"{a}/admin/bookings/apikey/",
        data={
            "action": "revoke",
            "_selected_action": [key.pk],
            "index": "0",
            "select_across": "0",
            "csrfmiddlewaretoken": _csrf(changelist),
        },
        timeout=60,
    )
    answered = time.monotonic()
    assert revoked.status_code == 200
    assert "Revoked 1 key(s)" in revoked.text
    key.refresh_from_db()
    assert key.revoked_at is not None

    accepted_after = 0
    while True:
        response = requests.get(f"{b}/v1/team/members", headers=auth, timeout=60)
        if response.status_code == 401:
            break
        accepted_after += 1
        assert time.monotonic() - answered < KEY_CACHE_SECONDS + 5, "B still accepts the key"
        time.sleep(0.05)
    refused_after = time.monotonic() - answered
    print(f"revoked on A: B accepted {accepted_after} more, refused {refused_after:.3f} s later")
    assert response.json()["error"]["code"] == "unauthorized"
    # The README's bound for a revocation through the admin: at once after it commits.
    assert accepted_after == 0
    assert requests.get(f"{a}/v1/team/members", headers=auth, timeout=60).status_code == 401
