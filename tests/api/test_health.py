"""/healthz (liveness, no I/O) and /readyz (database, cache, broker; 503 naming what is down)."""

import os
from unittest import mock

import pytest
from django.db.utils import OperationalError
from django.test import Client, override_settings

from tests.assertions import assert_error

HEALTH = "bookings_project.api.health"

BROKEN_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
    }
}


def test_healthz_is_200_without_touching_the_database(django_assert_num_queries, db):
    with django_assert_num_queries(0):
        response = Client().get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == {"success": True, "status": "ok"}


def test_healthz_needs_no_database_at_all():
    # No db fixture: pytest-django refuses any query, so a probe that queried would fail.
    response = Client().get("/healthz")

    assert response.status_code == 200


@override_settings(CACHES=BROKEN_CACHE)
def test_healthz_stays_up_when_the_cache_is_down():
    assert Client().get("/healthz").status_code == 200


def test_readyz_is_200_when_everything_is_up(db):
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body["success"] is True
    assert body["status"] == "ready"
    assert body["checks"] == ["database", "cache", "broker"]


@override_settings(CACHES=BROKEN_CACHE)
def test_readyz_is_503_naming_the_cache_when_it_is_down(db):
    response = Client().get("/readyz")

    error = assert_error(response, 503, "not_ready", details={"down"})
    assert error["details"]["down"] == ["cache"]
    assert "cache" in error["message"]
    assert "database" not in error["message"]
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["X-Request-Id"]


def test_readyz_is_503_naming_the_database_when_it_is_down(db):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    with mock.patch(f"{HEALTH}.connection.cursor", broken_cursor):
        response = Client().get("/readyz")

    error = assert_error(response, 503, "not_ready")
    assert error["details"]["down"] == ["database"]


def test_readyz_is_503_naming_the_broker_when_it_is_down(db):
    with mock.patch(
        "bookings_project.api.health._check_broker", side_effect=ConnectionError("refused")
    ):
        response = Client().get("/readyz")

    error = assert_error(response, 503, "not_ready")
    assert error["details"]["down"] == ["broker"]
    assert "broker" in error["message"]


@override_settings(CACHES=BROKEN_CACHE)
def test_readyz_names_everything_that_is_down(db):
    with mock.patch(
        "bookings_project.api.health._check_broker", side_effect=ConnectionError("refused")
    ):
        response = Client().get("/readyz")

    assert assert_error(response, 503, "not_ready")["details"]["down"] == ["cache", "broker"]


@pytest.mark.redis
def test_readyz_is_200_with_a_real_redis_cache(db):
    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/12")
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    with override_settings(CACHES=caches):
        response = Client().get("/readyz")

    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/docs", "/docs/redoc"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_probes_and_docs_answer_other_methods_with_the_405_envelope(db, path, method):
    # With CSRF checked, as a server checks it: a POST without a cookie was Django's HTML
    # "CSRF verification failed" page, not the 405.
    response = getattr(Client(enforce_csrf_checks=True), method)(path)

    assert_error(response, 405, "method_not_allowed", details=set())
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_head(db, path):
    assert Client().head(path).status_code == 200
