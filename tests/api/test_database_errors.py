"""A database that cannot be reached is 503 ``service_unavailable`` with ``Retry-After``,
wherever the error is raised: in an API view, in authentication (a key the cache has not
seen), in a plain Django view under /v1 (the envelope) or the admin (a plain page). Never a
500. The whole outage, for real: tests/api/test_postgres_restart.py."""

import socket
import sqlite3
import time

import psycopg
import psycopg.errors
import pytest
from django.core.cache import cache
from django.db import OperationalError, connection, connections
from django.test import Client
from rest_framework.test import APIClient

from bookings.services import api_key_create
from bookings_project.api.errors import (
    DATABASE_UNAVAILABLE_RETRY_AFTER,
    is_database_unreachable,
)
from tests.assertions import assert_error

from .urls_errors import database_down_error

RETRY_AFTER = str(DATABASE_UNAVAILABLE_RETRY_AFTER)
DOWN_KINDS = ["refused", "57P01", "57P02", "57P03", "08006", "closed"]
MESSAGE = "The database is unavailable; retry shortly."


def _django_error(cause: Exception) -> OperationalError:
    error = OperationalError(str(cause))
    error.__cause__ = cause
    return error


@pytest.mark.parametrize("kind", DOWN_KINDS)
def test_unreachable_database_is_recognised(kind):
    assert is_database_unreachable(database_down_error(kind))


@pytest.mark.parametrize(
    "cause",
    [
        psycopg.errors.LockNotAvailable("lock timeout"),
        psycopg.errors.DeadlockDetected("deadlock"),
        psycopg.errors.SerializationFailure("serialization"),
        psycopg.errors.TooManyConnections("too many clients"),
        psycopg.errors.QueryCanceled("statement timeout"),
        sqlite3.OperationalError("database is locked"),
    ],
)
def test_a_busy_database_is_not_unreachable(cause):
    """The database is there but refused this once: 503 too, with a shorter Retry-After
    (tests/api/test_errors.py)."""
    assert not is_database_unreachable(_django_error(cause))


def test_other_errors_are_not_unreachable():
    assert not is_database_unreachable(RuntimeError("boom"))
    assert not is_database_unreachable(None)


@pytest.mark.urls("tests.api.urls_errors")
@pytest.mark.parametrize("kind", DOWN_KINDS)
@pytest.mark.parametrize("path", ["/test/database-down-api", "/v1/test/database-down"])
def test_unreachable_database_is_the_503_envelope_in_and_out_of_drf(path, kind):
    """Through the API's exception handler (a DRF view) and through Django's handler500 (a
    plain view under /v1, as an error raised in a middleware would be)."""
    response = Client(raise_request_exception=False).get(f"{path}/{kind}")

    error = assert_error(response, 503, "service_unavailable", details=set())
    assert error["message"] == MESSAGE
    assert response["Retry-After"] == RETRY_AFTER


@pytest.mark.urls("tests.api.urls_errors")
@pytest.mark.parametrize("kind", ["refused", "closed"])
def test_unreachable_database_outside_the_api_is_a_plain_503_page(kind):
    """The admin's pages: HTML, no trace, no JSON."""
    response = Client(raise_request_exception=False).get(f"/test/database-down/{kind}")

    assert response.status_code == 503
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Retry-After"] == RETRY_AFTER
    content = response.content.decode()
    assert "Service unavailable" in content
    assert MESSAGE in content
    assert "Traceback" not in content
    assert "psycopg" not in content


@pytest.mark.urls("tests.api.urls_errors")
def test_other_errors_in_a_plain_view_are_still_500():
    response = Client(raise_request_exception=False).get("/test/boom-django")

    assert_error(response, 500, "internal_error")
    assert "Retry-After" not in response


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_authentication_with_the_database_down_is_503_then_recovers(team, monkeypatch):
    """A key the cache has not seen is read from the database by authentication, before any
    view code. With PostgreSQL refusing connections: the 503 envelope. Once it accepts them
    again the next request succeeds, with nothing reset by hand."""
    _, secret = api_key_create(team=team)
    cache.clear()  # the key was cached when its creation committed: a miss now
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    def refused(*args, **kwargs):
        raise psycopg.OperationalError(
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            "Connection refused"
        )

    connection.close()  # the next query connects, and is refused
    with monkeypatch.context() as patched:
        patched.setattr(psycopg, "connect", refused)
        response = client.get("/v1/event-types")

    error = assert_error(response, 503, "service_unavailable", details=set())
    assert error["message"] == MESSAGE
    assert response["Retry-After"] == RETRY_AFTER
    assert connection.connection is None  # nothing half-open kept

    assert client.get("/v1/event-types").status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db
def test_connect_timeout_bounds_a_database_that_does_not_answer(settings):
    """A host that takes the TCP connection but never answers (a hung server, a black hole):
    the connection attempt gives up after ``DATABASE_CONNECT_TIMEOUT`` seconds, as an error
    the API answers with 503, instead of holding the worker until gunicorn kills it."""
    assert settings.DATABASES["default"]["OPTIONS"]["connect_timeout"] == 3  # the default

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever answers
        port = silent.getsockname()[1]
        settings_dict = {
            **connection.settings_dict,
            "PORT": port,
            "OPTIONS": {**connection.settings_dict["OPTIONS"], "connect_timeout": 2},
        }
        black_hole = type(connections["default"])(settings_dict, alias="black_hole")
        started = time.monotonic()
        with pytest.raises(OperationalError) as raised:
            black_hole.ensure_connection()
        elapsed = time.monotonic() - started

    assert 1.5 <= elapsed < 6, elapsed
    assert is_database_unreachable(raised.value)
