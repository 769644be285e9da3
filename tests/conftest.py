"""Shared fixtures: "our team" and "another team", API clients with keys, service checks."""

import os
import shutil
import socket
import subprocess
import time

import pytest
import redis
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from bookings.access import api_keys_recache
from bookings.models import ApiKey
from bookings.services import api_key_create
from bookings_project.settings.env import POSTGRESQL_ENGINE

from .factories import EventTypeFactory, TeamFactory, TeamMemberFactory
from .live_postgres import private_postgres  # noqa: F401 (a fixture: a cluster a test may stop)
from .notifications.live import free_port, wait_until

REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/13")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _ensure(name: str, host: str, port: int, start: list[str], how: str) -> None:
    """Start a shared server that is down, or stop the run with how to start it."""
    if _port_open(host, port):
        return
    if shutil.which(start[0]):
        subprocess.run(start, check=False, capture_output=True, timeout=60)  # noqa: S603
        for _ in range(50):
            if _port_open(host, port):
                return
            time.sleep(0.2)
    pytest.exit(
        f"{name} is not running on {host}:{port} and could not be started. Start it: {how}", 3
    )


def pytest_sessionstart(session):
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == POSTGRESQL_ENGINE:
        versions = os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else []
        command = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        _ensure(
            "PostgreSQL",
            "127.0.0.1",
            5432,
            [
                "pg_ctlcluster",
                "--skip-systemctl-redirect",
                *(versions[:1] or ["15"]),
                "main",
                "start",
            ],
            command,
        )
    if os.environ.get("TEST_WITH_REDIS") == "1":
        _ensure(
            "Redis",
            "127.0.0.1",
            6379,
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
        )


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"] == POSTGRESQL_ENGINE
    with_redis = os.environ.get("TEST_WITH_REDIS") == "1"
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL"))
        if "redis" in item.keywords and not with_redis:
            item.add_marker(pytest.mark.skip(reason="needs Redis (TEST_WITH_REDIS=1)"))


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def mid_minute():
    """The clock stopped half-way through the current minute: every request the test makes
    falls in one rate-limit window (a count never resets under it) and a 429's Retry-After is
    30. Ask for it first, before fixtures that make requests."""
    with time_machine.travel(int(time.time()) // 60 * 60 + 30, tick=False) as traveller:
        yield traveller


@pytest.fixture
def team(db):
    return TeamFactory(name="Our Team")


@pytest.fixture
def other_team(db):
    return TeamFactory(name="Another Team")


@pytest.fixture
def hosts(team):
    return [TeamMemberFactory(team=team, name=f"Host {i}") for i in range(3)]


@pytest.fixture
def event_type(team, hosts):
    return EventTypeFactory(team=team, hosts=hosts)


def make_client(team, scopes=None) -> APIClient:
    key, secret = api_key_create(team=team, scopes=scopes)
    # Used just now: the once-a-minute ``last_used_at`` write is not due, so the query counts
    # asserted with these clients are a busy key's steady state (tests/bookings/test_auth.py
    # counts the write itself).
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    # Cached, as a key in use is: its requests resolve it without a query (the key's first
    # request, a miss, is counted in tests/bookings/test_auth.py).
    api_keys_recache([key.key_hash])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    client.secret = secret
    return client


@pytest.fixture
def api(team):
    """An API client with a full-scope key of our team."""
    return make_client(team)


@pytest.fixture
def other_api(other_team):
    return make_client(other_team)


def start_redis_server(port: int, *options: str) -> subprocess.Popen:
    """A redis-server of a test's own on ``port`` (``options`` added to its command line),
    answering PING when this returns."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen(  # noqa: S603
        [*command, "--appendonly", "no", *options], stdout=subprocess.DEVNULL
    )
    password = options[1] if options[:1] == ("--requirepass",) else None
    client = redis.Redis(port=port, password=password)

    def up():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    wait_until(up, 10, "the test's redis-server")
    return process


@pytest.fixture(scope="module")
def private_redis():
    """A redis-server of our own: its command counts are this test's alone."""
    port = free_port()
    process = start_redis_server(port)
    yield f"redis://127.0.0.1:{port}/0", redis.Redis(port=port)
    process.terminate()
    process.wait(timeout=10)


def instances_counted(monkeypatch, cls) -> list:
    """A list that grows by one for each instance of ``cls`` made from now on."""
    built = []
    original = cls.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", counting)
    return built


@pytest.fixture
def drf_requests_built(monkeypatch) -> list:
    """Grows by one for each DRF ``Request`` made: a lean path makes none."""
    from rest_framework.request import Request

    return instances_counted(monkeypatch, Request)


@pytest.fixture
def refused_clients(team, django_capture_on_commit_callbacks) -> list[APIClient]:
    """Clients of the team refused in each way: a key without the bookings:create scope (403),
    a revoked key, a key that does not exist, no key at all (401 each)."""
    from bookings.auth import hash_key
    from bookings.models import ApiKey
    from bookings.services import api_key_revoke

    no_scope = make_client(team, scopes=[ApiKey.Scope.BOOKINGS_READ])
    revoked = make_client(team)
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_keys=ApiKey.objects.filter(key_hash=hash_key(revoked.secret)))
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer sk_live_" + "0" * 64)
    return [no_scope, revoked, wrong, APIClient()]
