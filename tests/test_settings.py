"""Settings are read strictly from the environment: a bad value stops start-up, naming it."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from bookings_project.settings import env
from bookings_project.settings.env import POSTGRESQL_ENGINE

ROOT = Path(__file__).resolve().parent.parent
GOOD_SECRET = "s3cr3t-" + "abcdefghij" * 6
PROBE = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.API_RATE_LIMIT, s.ALLOWED_HOSTS, s.DATABASES['default']['ENGINE'], "
    "s.CACHES['default']['BACKEND'], s.EMAIL_BACKEND, s.DATABASES['default'].get('CONN_MAX_AGE'), "
    "s.CACHES['default'].get('LOCATION'), sep='|')"
)
# Variables this project reads: removed from the child's environment unless a case sets them.
OURS = (
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "EMAIL_URL",
    "DEFAULT_FROM_EMAIL",
    "API_RATE_LIMIT",
    "DATABASE_CONN_MAX_AGE",
    "EMAIL_RELAY_GRACE_SECONDS",
    "DATABASE_CONNECT_TIMEOUT",
    "DATABASE_PREPARED_STATEMENTS",
    "DJANGO_SETTINGS_MODULE",
    "EMAIL_TIMEOUT_SECONDS",
    "EMAIL_SEND_LEASE_SECONDS",
)

PRODUCTION = {
    "SECRET_KEY": GOOD_SECRET,
    "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
    "ALLOWED_HOSTS": "bookings.example",
    "CACHE_URL": "redis://127.0.0.1:6379/1",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_URL": "smtp://mail.example:25",
}

# name: (settings module, environment, the variable the failure must name or None for success)
START_UPS = {
    "debug-maybe": ("test", {"DEBUG": "maybe"}, "DEBUG"),
    "debug-flase": ("local", {"DEBUG": "flase"}, "DEBUG"),
    "rate-limit-abc": ("test", {"API_RATE_LIMIT": "abc"}, "API_RATE_LIMIT"),
    "rate-limit-zero": ("test", {"API_RATE_LIMIT": "0"}, "API_RATE_LIMIT"),
    "rate-limit-float": ("test", {"API_RATE_LIMIT": "10.5"}, "API_RATE_LIMIT"),
    "database-mysql": ("test", {"DATABASE_URL": "mysql://u:p@db/x"}, "DATABASE_URL"),
    "database-garbage": ("test", {"DATABASE_URL": "not a url"}, "DATABASE_URL"),
    "allowed-hosts-empty-item": (
        "test",
        {"ALLOWED_HOSTS": "a.example,,b.example"},
        "ALLOWED_HOSTS",
    ),
    "cache-memcached": ("test", {"CACHE_URL": "memcache://127.0.0.1:11211"}, "CACHE_URL"),
    "email-bogus": ("test", {"EMAIL_URL": "pigeon://coop"}, "EMAIL_URL"),
    "broker-amqp": ("test", {"CELERY_BROKER_URL": "amqp://guest@localhost//"}, "CELERY_BROKER_URL"),
    "relay-grace-abc": ("test", {"EMAIL_RELAY_GRACE_SECONDS": "1m"}, "EMAIL_RELAY_GRACE_SECONDS"),
    "conn-max-age": (
        "test",
        {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "DATABASE_CONN_MAX_AGE": "-1"},
        "DATABASE_CONN_MAX_AGE",
    ),
    "connect-timeout-below-libpq-minimum": (
        "test",
        {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "DATABASE_CONNECT_TIMEOUT": "1"},
        "DATABASE_CONNECT_TIMEOUT",
    ),
    "email-timeout-zero": ("test", {"EMAIL_TIMEOUT_SECONDS": "0"}, "EMAIL_TIMEOUT_SECONDS"),
    "email-timeout-float": ("test", {"EMAIL_TIMEOUT_SECONDS": "1.5"}, "EMAIL_TIMEOUT_SECONDS"),
    "email-lease-abc": ("test", {"EMAIL_SEND_LEASE_SECONDS": "5m"}, "EMAIL_SEND_LEASE_SECONDS"),
    # A lease a send can outlast would hand a live send to a second worker.
    "email-lease-under-the-timeouts": (
        "test",
        {"EMAIL_TIMEOUT_SECONDS": "10", "EMAIL_SEND_LEASE_SECONDS": "80"},
        "EMAIL_SEND_LEASE_SECONDS",
    ),
    "email-grace-negative": (
        "test",
        {"EMAIL_RELAY_GRACE_SECONDS": "-1"},
        "EMAIL_RELAY_GRACE_SECONDS",
    ),
    "production-no-secret": (
        "production",
        {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x"},
        "SECRET_KEY",
    ),
    "production-short-secret": (
        "production",
        {"SECRET_KEY": "short", "DATABASE_URL": "postgres://u@127.0.0.1:5432/x"},
        "SECRET_KEY",
    ),
    "production-sqlite": ("production", {"SECRET_KEY": GOOD_SECRET}, "DATABASE_URL"),
    "production-no-allowed-hosts": (
        "production",
        {**PRODUCTION, "ALLOWED_HOSTS": ""},
        "ALLOWED_HOSTS",
    ),
    "production-memory-cache": ("production", {**PRODUCTION, "CACHE_URL": ""}, "CACHE_URL"),
    "production-no-broker": (
        "production",
        {**PRODUCTION, "CELERY_BROKER_URL": ""},
        "CELERY_BROKER_URL",
    ),
    "production-console-email": (
        "production",
        {**PRODUCTION, "EMAIL_URL": "consolemail://"},
        "EMAIL_URL",
    ),
    "production-good": ("production", PRODUCTION, None),
    "local-broker-only": ("local", {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/4"}, None),
    "local-broker-and-memory-cache": (
        "local",
        {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/4", "CACHE_URL": "locmemcache://"},
        None,
    ),
    "good-values": (
        "local",
        {
            "DEBUG": "no",
            "API_RATE_LIMIT": "7",
            "ALLOWED_HOSTS": "api.example, admin.example",
            "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/x",
            "CACHE_URL": "redis://127.0.0.1:6379/1",
            "EMAIL_URL": "smtp://mail.example:25",
            "SECRET_KEY": GOOD_SECRET,
        },
        None,
    ),
}


def _start(module: str, environment: dict, probe: str = PROBE) -> subprocess.CompletedProcess:
    child_env = {k: v for k, v in os.environ.items() if k not in OURS}
    child_env.update(environment)
    child_env["DJANGO_SETTINGS_MODULE"] = f"bookings_project.settings.{module}"
    child_env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def start_ups() -> dict[str, subprocess.CompletedProcess]:
    """Every start-up case, run side by side (each is a fresh interpreter importing Django)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            name: pool.submit(_start, module, environment)
            for name, (module, environment, _) in START_UPS.items()
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", [name for name, spec in START_UPS.items() if spec[2] is not None])
def test_a_bad_value_stops_start_up_naming_the_variable(start_ups, case):
    variable = START_UPS[case][2]
    result = start_ups[case]

    assert result.returncode != 0, result.stdout
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured:"), result.stderr
    assert f"Environment variable {variable}" in last_line, last_line


def test_good_values_are_parsed(start_ups):
    result = start_ups["good-values"]

    assert result.returncode == 0, result.stderr
    debug, rate, hosts, database, cache, email, conn_max_age, _ = result.stdout.strip().split("|")
    assert debug == "False"
    # The development server makes a thread per request: no connection outlives its request.
    assert conn_max_age == "0"
    assert rate == "7"
    assert hosts == "['api.example', 'admin.example']"
    assert database == POSTGRESQL_ENGINE
    assert cache == "django.core.cache.backends.redis.RedisCache"
    assert email == "django.core.mail.backends.smtp.EmailBackend"


def test_production_starts_with_every_required_variable(start_ups):
    result = start_ups["production-good"]

    assert result.returncode == 0, result.stderr
    debug, _, hosts, database, cache, email, conn_max_age, _ = result.stdout.strip().split("|")
    assert (debug, hosts) == ("False", "['bookings.example']")
    # gunicorn's long-lived workers keep their connection between requests.
    assert conn_max_age == "60"
    assert database == POSTGRESQL_ENGINE
    assert cache == "django.core.cache.backends.redis.RedisCache"
    assert email == "django.core.mail.backends.smtp.EmailBackend"


def test_make_run_with_a_redis_broker_counts_in_that_redis_too(start_ups):
    # CELERY_BROKER_URL alone switches `make run` to Redis: the cache (rate limit, key cache)
    # follows it, unless CACHE_URL says otherwise.
    result = start_ups["local-broker-only"]
    assert result.returncode == 0, result.stderr
    *_, cache, _, _, location = result.stdout.strip().split("|")
    assert (cache, location) == (
        "django.core.cache.backends.redis.RedisCache",
        "redis://127.0.0.1:6379/4",
    )

    result = start_ups["local-broker-and-memory-cache"]
    assert result.returncode == 0, result.stderr
    *_, cache, _, _, _ = result.stdout.strip().split("|")
    assert cache == "django.core.cache.backends.locmem.LocMemCache"


def test_the_outbox_timings_default_to_production_values():
    from django.conf import settings

    from notifications.services import LEASE, relay_grace

    assert settings.EMAIL_TIMEOUT == 10
    assert (LEASE.total_seconds(), relay_grace().total_seconds()) == (300, 60)


def test_the_outbox_timings_are_read_from_the_environment():
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "from notifications.services import LEASE, relay_grace; "
        "print(s.EMAIL_TIMEOUT, LEASE.total_seconds(), relay_grace().total_seconds())"
    )
    environment = {
        "EMAIL_TIMEOUT_SECONDS": "1",
        "EMAIL_SEND_LEASE_SECONDS": "9",
        "EMAIL_RELAY_GRACE_SECONDS": "0",
    }

    result = _start("test", environment, probe)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "9.0", "0.0"]


# --- The helpers, directly ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
    ],
)
def test_env_bool_accepts(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)

    assert env.env_bool("SOME_FLAG", default=not expected) is expected


@pytest.mark.parametrize("raw", ["maybe", "flase", "2", "y", "t", "enabled"])
def test_env_bool_refuses(monkeypatch, raw):
    monkeypatch.setenv("SOME_FLAG", raw)

    with pytest.raises(ImproperlyConfigured, match=r"SOME_FLAG"):
        env.env_bool("SOME_FLAG", default=False)


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_unset_or_blank_means_the_default(monkeypatch, raw):
    if raw is None:
        monkeypatch.delenv("SOME_FLAG", raising=False)
    else:
        monkeypatch.setenv("SOME_FLAG", raw)

    assert env.env_bool("SOME_FLAG", default=True) is True
    assert env.env_int("SOME_FLAG", 42) == 42
    assert env.env_list("SOME_FLAG", ["a"]) == ["a"]
    assert env.env_str("SOME_FLAG", default="d") == "d"
    assert env.env_database("SOME_FLAG") is None


def test_env_str_required(monkeypatch):
    monkeypatch.delenv("SOME_SECRET", raising=False)

    with pytest.raises(ImproperlyConfigured, match="SOME_SECRET is required"):
        env.env_str("SOME_SECRET")


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "", "ten"])
def test_env_int_refuses(monkeypatch, raw):
    monkeypatch.setenv("API_RATE_LIMIT", raw)

    if raw == "":
        assert env.env_int("API_RATE_LIMIT", 1000, minimum=1) == 1000
        return
    with pytest.raises(ImproperlyConfigured, match="API_RATE_LIMIT"):
        env.env_int("API_RATE_LIMIT", 1000, minimum=1)


def test_env_int_minimum(monkeypatch):
    monkeypatch.setenv("API_RATE_LIMIT", "0")
    with pytest.raises(ImproperlyConfigured, match=r"API_RATE_LIMIT.*at least 1"):
        env.env_int("API_RATE_LIMIT", 1000, minimum=1)

    monkeypatch.setenv("API_RATE_LIMIT", " 250 ")
    assert env.env_int("API_RATE_LIMIT", 1000, minimum=1) == 250


def test_env_list(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", "a.example, b.example")
    assert env.env_list("ALLOWED_HOSTS", []) == ["a.example", "b.example"]

    monkeypatch.setenv("ALLOWED_HOSTS", "a.example,")
    with pytest.raises(ImproperlyConfigured, match="ALLOWED_HOSTS"):
        env.env_list("ALLOWED_HOSTS", [])


@pytest.mark.parametrize(
    ("helper", "name", "raw"),
    [
        ("env_database", "DATABASE_URL", "mysql://u:p@db/x"),
        ("env_database", "DATABASE_URL", "oracle://db"),
        ("env_database", "DATABASE_URL", "127.0.0.1:5432"),
        ("env_cache", "CACHE_URL", "memcache://127.0.0.1"),
        ("env_cache", "CACHE_URL", "redis:/nope"),
        ("env_email", "EMAIL_URL", "sendgrid://key"),
        ("env_broker", "CELERY_BROKER_URL", "amqp://localhost"),
        ("env_broker", "CELERY_BROKER_URL", "localhost:6379"),
    ],
)
def test_url_helpers_refuse_other_schemes(monkeypatch, helper, name, raw):
    monkeypatch.setenv(name, raw)

    with pytest.raises(ImproperlyConfigured, match=name) as excinfo:
        getattr(env, helper)(name)
    assert "scheme" in str(excinfo.value) or "URL" in str(excinfo.value)


def test_url_helpers_parse_good_urls(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://user:pw@db.example:5433/bookings")
    monkeypatch.setenv("CACHE_URL", "redis://127.0.0.1:6379/1")
    monkeypatch.setenv("EMAIL_URL", "smtp://mail.example:2525")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/2")

    database = env.env_database("DATABASE_URL")
    assert database["ENGINE"] == POSTGRESQL_ENGINE
    assert (database["NAME"], database["HOST"], database["PORT"]) == (
        "bookings",
        "db.example",
        5433,
    )
    assert env.env_cache("CACHE_URL")["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    email = env.env_email("EMAIL_URL")
    assert (email["EMAIL_HOST"], email["EMAIL_PORT"]) == ("mail.example", 2525)
    assert env.env_broker("CELERY_BROKER_URL") == "redis://127.0.0.1:6379/2"


def test_atomic_requests_are_off():
    from django.conf import settings

    assert settings.DATABASES["default"].get("ATOMIC_REQUESTS", False) is False


@pytest.mark.parametrize(
    ("value", "threshold"), [(None, "5"), ("true", "5"), ("false", "None"), ("off", "None")]
)
def test_prepared_statements_can_be_turned_off(value, threshold):
    # On by default (values bound on the server, a statement prepared from its fifth use); off
    # for a pooler that cannot keep prepared statements. A malformed value stops start-up.
    environment = {"DATABASE_URL": "postgres://u:p@127.0.0.1:5432/x"}
    if value is not None:
        environment["DATABASE_PREPARED_STATEMENTS"] = value
    probe = (
        "import django; django.setup(); from django.conf import settings; "
        "o = settings.DATABASES['default']['OPTIONS']; "
        "print(o['server_side_binding'], o['prepare_threshold'])"
    )
    result = _start("local", environment, probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", threshold]


def test_a_malformed_prepared_statements_value_stops_start_up():
    environment = {
        "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/x",
        "DATABASE_PREPARED_STATEMENTS": "maybe",
    }
    result = _start("local", environment, "import django; django.setup()")
    assert result.returncode != 0
    assert "DATABASE_PREPARED_STATEMENTS" in result.stderr.strip().splitlines()[-1]
