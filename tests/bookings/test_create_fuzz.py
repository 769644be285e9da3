"""Whatever a client sends to POST /v1/bookings, the answer is a 2xx or a 4xx in the envelope."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookings.models import Booking

from .create_helpers import create_body, in_days, post_booking

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
times = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.text(max_size=30),
    json_values,
)
FIELDS = [
    "event_type_id",
    "requested_time",
    "attendee",
    "assigned_to_id",
    "custom_fields",
    "metadata",
]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    field=st.sampled_from(
        [*FIELDS, "attendee.name", "attendee.email", "attendee.phone", "attendee.timezone"]
    ),
    value=st.one_of(json_values, times),
)
def test_any_value_in_any_field_is_answered_without_a_500(api, event_type, field, value):
    body = create_body(event_type, in_days(2))
    if field.startswith("attendee."):
        body["attendee"][field.split(".")[1]] = value
    else:
        body[field] = value

    response = post_booking(api, body)

    assert response.status_code in (201, 400, 409), response.content
    payload = response.json()
    assert payload["success"] is (response.status_code == 201)
    if response.status_code != 201:
        assert set(payload["error"]) == {"code", "message", "details"}
    Booking.objects.all().delete()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=json_values)
def test_any_json_document_is_answered_without_a_500(api, body):
    response = post_booking(api, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "raw",
    [
        b"NaN",
        b'{"metadata": {"x": Infinity}}',
        b"\xff\xfe",
        b'{"a": 1',
        b"",
        b"[" * 10000,
        b'{"metadata": ' + b'{"a": ' * 40 + b"1" + b"}" * 41,
        b"[" * 50000 + b"]" * 50000,
        b'{"custom_fields": {"x": 1e400}}',
        b'{"custom_fields": {"x": -1e400}}',
        b'{"custom_fields": {"a": "x\\u0000"}}',
        b'{"custom_fields": {"x\\u0000": 1}}',
        b'{"custom_fields": {"x": "\\ud800"}}',
        b'{"attendee": {"name": "\\udfff"}}',
    ],
)
def test_bodies_that_are_not_strict_json_are_400(api, raw):
    response = api.post("/v1/bookings", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "requested_time",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00", "9999-12-31T23:59:59Z"],
)
def test_times_at_the_edge_of_the_calendar_are_400(api, event_type, requested_time):
    body = create_body(event_type, in_days(2), requested_time=requested_time)
    response = post_booking(api, body, key="edge")
    assert response.status_code == 400, response.content
    assert "requested_time" in response.json()["error"]["details"]


def test_an_integer_of_5000_digits_is_400_without_python_advice(api):
    raw = b'{"custom_fields": {"x": ' + b"1" * 5000 + b"}}"

    response = api.post("/v1/bookings", raw, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["message"] == (
        "JSON parse error - number out of range (over 4300 digits)."
    )
    assert not Booking.objects.exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b'\xef\xbb\xbf{"a": 1}',
            "JSON parse error - the body starts with a byte order mark (BOM).",
        ),
        (b'{"a": "\xff"}', "JSON parse error - the body is not valid UTF-8."),
    ],
    ids=["bom", "not-utf8"],
)
def test_a_body_that_is_not_plain_utf8_is_400_in_our_words(api, raw, message):
    response = api.post("/v1/bookings", raw, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["message"] == message  # not Python's own text
    assert not Booking.objects.exists()


def test_a_long_bad_time_zone_is_not_echoed_whole(api, event_type):
    zone = "Mars/" + "x" * 200_000
    body = create_body(event_type, in_days(2), attendee={"name": "A", "email": "a@example.com"})
    body["attendee"]["timezone"] = zone

    response = post_booking(api, body)

    assert response.status_code == 400
    assert len(response.content) < 1_000
    assert "is not an IANA time zone name" in response.content.decode()


def test_a_body_that_cannot_be_encoded_is_400_even_with_a_key(api, event_type):
    raw = b'{"event_type_id": "' + event_type.id.encode() + b'", "metadata": {"x": "\\ud800"}}'
    response = api.post(
        "/v1/bookings", raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 400, response.content
    assert not Booking.objects.exists()
