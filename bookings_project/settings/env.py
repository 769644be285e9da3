"""Strict parsing of the environment.

Every setting read from the environment goes through these helpers. A value that does not
parse stops start-up with ``ImproperlyConfigured`` naming the variable, instead of silently
falling back to a default (``DEBUG=flase`` must not mean "off").
"""

import os
from collections.abc import Callable
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

_UNSET = object()


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _fail(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name}={value!r} is invalid: {expected}.")


def env_str(name: str, default: Any = _UNSET) -> str:
    value = _raw(name)
    if value is None:
        if default is _UNSET:
            raise ImproperlyConfigured(f"Environment variable {name} is required.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _fail(name, value, "expected one of true/false, 1/0, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise _fail(name, value, "expected a whole number") from None
    if minimum is not None and number < minimum:
        raise _fail(name, value, f"expected a number of at least {minimum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items):
        raise _fail(name, value, "expected a comma-separated list without empty items")
    return items


def _url(name: str, parse: Callable[[str], dict], schemes: set[str]) -> dict | None:
    value = _raw(name)
    if value is None:
        return None
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in schemes:
        raise _fail(name, value, f"expected a URL with scheme {' / '.join(sorted(schemes))}")
    try:
        return parse(value)
    except Exception as exc:  # environ raises assorted errors for malformed URLs
        raise _fail(name, value, str(exc) or "malformed URL") from None


# Django's PostgreSQL backend with a health check that needs no round trip (its base.py).
POSTGRESQL_ENGINE = "bookings_project.postgresql"


def env_database(name: str) -> dict | None:
    config = _url(
        name,
        environ.Env.db_url_config,
        {"postgres", "postgresql", "pgsql", "psql", "sqlite"},
    )
    if config is not None and config["ENGINE"] == "django.db.backends.postgresql":
        config["ENGINE"] = POSTGRESQL_ENGINE
    return config


def env_cache(name: str) -> dict | None:
    return _url(
        name,
        environ.Env.cache_url_config,
        {"redis", "rediss", "locmemcache", "dummycache"},
    )


def env_email(name: str) -> dict | None:
    return _url(
        name,
        environ.Env.email_url_config,
        {"smtp", "smtps", "smtp+tls", "smtp+ssl", "consolemail", "filemail", "memorymail"},
    )


def env_broker(name: str) -> str | None:
    value = _raw(name)
    if value is None:
        return None
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in {"redis", "rediss", "memory"}:
        raise _fail(name, value, "expected a redis:// (or memory://) URL")
    return value
