"""On PostgreSQL a create writes its booking, history and email in one statement
(``bookings.db.insert_with_rows``), outside any transaction: all or nothing, and nothing at
all when the host is taken."""

import os
import tempfile

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone
from psycopg import pq

from bookings.db import insert_with_rows
from bookings.models import Booking, BookingHistory, IdempotencyKey
from bookings.routing import OVERLAP_CONSTRAINT
from notifications.models import EmailOutbox
from tests.factories import booking_build

from .create_helpers import create_body, in_days, post_booking

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _rows(booking: Booking) -> list:
    now = timezone.now()
    return [
        BookingHistory(
            booking=booking, at=now, action="created", to_status="DRAFT", actor_type="system"
        ),
        EmailOutbox(
            booking=booking,
            kind="confirmation",
            event_key=f"{booking.id}:created",
            to_email=booking.attendee_email,
            next_attempt_at=now,
        ),
    ]


def _traced(request):
    """``request()``'s response, and what went over the wire to PostgreSQL meanwhile (libpq's
    trace of this thread's connection, which must be open already)."""
    raw = connection.connection
    fd, path = tempfile.mkstemp()
    try:
        raw.pgconn.trace(fd)
        raw.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            response = request()
        finally:
            raw.pgconn.untrace()
        with open(path, "rb") as trace:
            return response, trace.read()
    finally:
        os.unlink(path)


def test_a_create_outside_a_transaction_sends_no_begin_or_savepoint(api, event_type):
    post_booking(api, create_body(event_type, in_days(2, hour=9)))  # opens the connection
    response, sent = _traced(
        lambda: post_booking(api, create_body(event_type, in_days(2, hour=10)))
    )
    assert response.status_code == 201, response.content
    for word in (b"BEGIN", b"SAVEPOINT", b"COMMIT"):
        assert word not in sent
    booking = Booking.objects.get(pk=response.json()["booking"]["id"])
    assert [h.action for h in BookingHistory.objects.filter(booking=booking).order_by("id")] == [
        "created",
        "routed",
    ]
    assert EmailOutbox.objects.filter(booking=booking, event_key=f"{booking.id}:created").count()


def test_a_row_refused_leaves_nothing_behind(event_type, hosts):
    booking = booking_build(event_type=event_type, assigned_to=hosts[0], start_time=in_days(3))
    rows = _rows(booking)
    other = booking_build(event_type=event_type, assigned_to=hosts[1], start_time=in_days(4))
    other.save(force_insert=True)
    EmailOutbox.objects.create(  # the email's event key is taken: its insert fails
        booking=other,
        kind="confirmation",
        event_key=rows[1].event_key,
        to_email="x@example.com",
        next_attempt_at=timezone.now(),
    )
    with pytest.raises(IntegrityError):
        insert_with_rows(booking, rows, using="default", on_conflict=OVERLAP_CONSTRAINT)
    assert not Booking.objects.filter(pk=booking.pk).exists()
    assert not BookingHistory.objects.filter(booking_id=booking.pk).exists()


def test_an_overlap_inserts_nothing_and_says_so(event_type, hosts):
    first = booking_build(event_type=event_type, assigned_to=hosts[0], start_time=in_days(3))
    assert insert_with_rows(first, _rows(first), using="default", on_conflict=OVERLAP_CONSTRAINT)
    second = booking_build(event_type=event_type, assigned_to=hosts[0], start_time=in_days(3))
    rows = _rows(second)

    assert not insert_with_rows(second, rows, using="default", on_conflict=OVERLAP_CONSTRAINT)
    assert not Booking.objects.filter(pk=second.pk).exists()
    assert not BookingHistory.objects.filter(booking_id=second.pk).exists()
    assert not EmailOutbox.objects.filter(booking_id=second.pk).exists()
    assert all(row.pk is None for row in rows)


def test_inserted_rows_get_their_keys_and_values(event_type, hosts):
    booking = booking_build(
        event_type=event_type,
        assigned_to=hosts[0],
        start_time=in_days(3),
        metadata={"a": [1, "é"]},
    )
    rows = _rows(booking)
    assert insert_with_rows(booking, rows, using="default", on_conflict=OVERLAP_CONSTRAINT)
    history, email = rows
    assert BookingHistory.objects.get(pk=history.pk).action == "created"
    stored = EmailOutbox.objects.get(pk=email.pk)
    assert (stored.booking_id, stored.to_email, stored.status) == (
        booking.id,
        booking.attendee_email,
        EmailOutbox.Status.PENDING,
    )
    assert Booking.objects.get(pk=booking.pk).metadata == {"a": [1, "é"]}
    assert not booking._state.adding
    assert not email._state.adding


def test_each_shape_is_one_statement_text_psycopg_converts_once(event_type, hosts):
    from psycopg import _queries

    _queries._query2pg.cache_clear()
    sent = []

    def record(execute, sql, params, many, context):
        sent.append((sql, len(params)))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        for day in (3, 4, 5):
            booking = booking_build(
                event_type=event_type, assigned_to=hosts[0], start_time=in_days(day)
            )
            assert insert_with_rows(
                booking, _rows(booking), using="default", on_conflict=OVERLAP_CONSTRAINT
            )
    assert len({sql for sql, _ in sent}) == 1  # the same text: prepared by the server
    # psycopg caches the conversion of statements of up to 50 parameters: one miss, then hits
    assert sent[0][1] <= _queries.MAX_CACHED_STATEMENT_PARAMS
    info = _queries._query2pg.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    # the rows refer to the booking through the main insert, not a parameter of their own
    assert 'main."id"' in sent[0][0]
    assert set(
        BookingHistory.objects.filter(booking__start_time__gte=in_days(3)).values_list(
            "booking_id", flat=True
        )
    ) == set(
        EmailOutbox.objects.filter(booking__start_time__gte=in_days(3)).values_list(
            "booking_id", flat=True
        )
    )


def test_a_create_with_a_key_writes_the_key_in_the_same_one_statement(api, event_type):
    """The Idempotency-Key holding the response is one more row of the create's insert: no
    transaction of its own (it took BEGIN, a savepoint pair, the key's insert, its update with
    the response and COMMIT)."""
    post_booking(api, create_body(event_type, in_days(2, hour=9)))  # opens the connection
    response, sent = _traced(
        lambda: post_booking(api, create_body(event_type, in_days(2, hour=10)), key="k1")
    )
    assert response.status_code == 201, response.content
    for word in (b"BEGIN", b"SAVEPOINT", b"COMMIT", b'UPDATE "bookings_idempotencykey"'):
        assert word not in sent
    # One statement: the booking, its two history entries, its email and the key.
    assert sent.count(b"INSERT INTO") == 5
    assert sent.count(b"WITH main AS (INSERT INTO") == 1
    assert (
        sent.count(b'INSERT INTO "bookings_idempotencykey"') == 1
    )  # booking, its two history entries, email, key
    key = IdempotencyKey.objects.get(key="k1")
    assert key.booking_id == response.json()["booking"]["id"]
    assert (key.response_status, bytes(key.response_body)) == (201, response.content)
    assert key.response_location == response["Location"]
