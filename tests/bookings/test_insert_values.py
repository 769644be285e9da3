"""A create's one statement (``bookings.db.insert_with_rows``) takes each value as ``save``
would prepare it: the values passed as they are (``_passed_as_is``) are exactly what the
field's own steps give, for every field of the rows a create writes and values of any type."""

import warnings
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from bookings.db import _insert_steps, _insert_values, _inserted_fields, _passed_as_is
from bookings.models import Booking, BookingHistory
from notifications.models import EmailOutbox

MODELS = [Booking, BookingHistory, EmailOutbox]
_FIELDS = [(model, field) for model in MODELS for field in _inserted_fields(model())]

values = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),  # naive
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.just(timezone(timedelta(hours=5, minutes=30))),
    ),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _saved(field, obj):
    """What ``save`` makes of the value: the field's own steps."""
    return field.get_db_prep_save(field.pre_save(obj, add=True), connection)


def _comparable(value):
    return type(value), getattr(value, "obj", value)  # psycopg's Jsonb wraps its object


def test_what_is_passed_as_is_and_what_is_not():
    kinds = {(model.__name__, field.attname): _passed_as_is(field) for model, field in _FIELDS}
    assert kinds[("Booking", "id")] is str
    assert kinds[("Booking", "team_id")] is str  # a foreign key: its target's, an id
    assert kinds[("Booking", "start_time")] is datetime
    assert kinds[("Booking", "ical_sequence")] is None  # psycopg's Int4, for the column
    assert kinds[("Booking", "metadata")] is None  # JSON: psycopg's Jsonb
    assert kinds[("EmailOutbox", "created_at")] is None  # auto_now_add: pre_save sets it


@pytest.mark.django_db
@settings(max_examples=300, deadline=None)
@given(st.data())
def test_each_value_is_what_the_fields_own_steps_give(data):
    model, field = data.draw(st.sampled_from(_FIELDS), label="field")
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return  # pre_save reads the clock: both would differ by the time between
    value = data.draw(values, label="value")
    obj = model()
    setattr(obj, field.attname, value)
    [step] = _insert_steps([field], connection)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a naive datetime's RuntimeWarning, both ways
        try:
            expected = _saved(field, obj)
        except Exception as exc:  # whatever the field refuses, both refuse
            with pytest.raises(type(exc)):
                _insert_values(obj, [step], connection)
            return
        [got] = _insert_values(obj, [step], connection)
    assert _comparable(got) == _comparable(expected)
    if connection.vendor == "postgresql" and step[2] is not None and value is not None:
        assert (got is value) == (
            type(value) is step[2] and (step[2] is not datetime or value.tzinfo is not None)
        )


@pytest.mark.django_db
def test_a_whole_booking_row_matches_field_by_field():
    now = datetime(2027, 3, 1, 9, tzinfo=UTC)
    booking = Booking(
        id="bkg_01J0000000000000000000000",
        team_id="team_x",
        event_type_id="evt_x",
        assigned_to_id="mem_x",
        status="SCHEDULED",
        start_time=now,
        end_time=now + timedelta(minutes=30),
        blocked_start=now,
        blocked_end=now + timedelta(minutes=30),
        attendee_name="Ada",
        attendee_email="ada@example.com",
        custom_fields={"a": 1},
        metadata={},
        ical_uid="u@bookings",
        created_at=now,
        updated_at=now,
    )
    fields = _inserted_fields(booking)
    got = _insert_values(booking, _insert_steps(fields, connection), connection)
    expected = [_saved(field, booking) for field in fields]
    assert [_comparable(v) for v in got] == [_comparable(v) for v in expected]
