"""The project's PostgreSQL backend (``bookings_project/postgresql``): a health check without a
round trip that still notices a closed connection, timestamps parsed by psycopg's C loader with
the values Django's own loader gives, and statements prepared on the server once repeated."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections
from django.db.backends.postgresql.psycopg_any import BaseTzLoader

from bookings_project.postgresql.base import _C_TIMESTAMPTZ, UtcTimestamptzLoader

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def own_connection():
    """A second connection to the test database, as a gunicorn worker holds one."""
    wrapper = connections.create_connection("default")
    wrapper.connect()
    yield wrapper
    wrapper.close()


def _until(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _backend_pid(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_an_open_connection_is_usable_without_a_query(own_connection):
    sent = []
    with own_connection.execute_wrapper(lambda execute, *args: sent.append(args) or execute(*args)):
        assert own_connection.is_usable()
    assert sent == []  # no SELECT 1


def test_a_connection_the_server_closed_is_not_usable(own_connection):
    pid = _backend_pid(own_connection)
    assert own_connection.is_usable()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    assert _until(lambda: not own_connection.is_usable())


def test_the_next_request_reconnects_after_the_server_closed_the_connection(own_connection):
    # What Django does at a request's first query (CONN_HEALTH_CHECKS): the dead connection is
    # replaced, and the query runs, with no error for the request.
    own_connection.settings_dict["CONN_HEALTH_CHECKS"] = True
    pid = _backend_pid(own_connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    assert _until(lambda: not own_connection.is_usable())
    own_connection.health_check_done = False
    assert _backend_pid(own_connection) != pid


def test_a_failed_transaction_is_not_usable(own_connection):
    own_connection.set_autocommit(False)
    with own_connection.cursor() as cursor, pytest.raises(Exception, match="division by zero"):
        cursor.execute("SELECT 1 / 0")
    assert not own_connection.is_usable()
    own_connection.rollback()
    assert own_connection.is_usable()


def test_timestamps_are_read_by_the_c_loader_with_djangos_values(own_connection):
    stamps = [
        datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, 1, tzinfo=UTC),
    ]
    sql = "SELECT " + ", ".join(["%s::timestamptz"] * len(stamps))
    with own_connection.cursor() as cursor:
        cursor.execute(sql, stamps)
        loaded = cursor.fetchone()
        loader = cursor.cursor.adapters.get_loader(1184, 0)
    assert loader is UtcTimestamptzLoader
    # Each value goes straight to the C loader's method, with no Python call of ours between.
    instance = UtcTimestamptzLoader(1184, own_connection.connection)
    assert type(instance.load.__self__) is _C_TIMESTAMPTZ
    assert list(loaded) == stamps
    assert all(value.tzinfo is UTC for value in loaded)

    class DjangoLoader(BaseTzLoader):  # what Django registers for a UTC connection
        timezone = UTC

    with own_connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("timestamptz", DjangoLoader)
        cursor.execute(sql, stamps)
        assert cursor.fetchone() == loaded


def test_timestamps_in_another_session_time_zone_keep_their_instant(own_connection):
    moment = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
    with own_connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'America/New_York'")
        cursor.execute("SELECT %s::timestamptz", [moment])
        (value,) = cursor.fetchone()
        cursor.execute("SET TIME ZONE 'UTC'")
    assert value == moment
    assert value.utcoffset() == timedelta(hours=-4)


def test_a_repeated_statement_is_prepared_on_the_server(own_connection):
    sql = "SELECT %s::text || 'prepared-check'"
    with own_connection.cursor() as cursor:
        for n in range(8):
            cursor.execute(sql, [str(n)])
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%prepared-check%"],
        )
        assert cursor.fetchone()[0] == 1
