"""A create is answered on the lean path (``LeanReadMixin.lean_writes``): no DRF ``Request``,
content negotiation or ``Response``, and exactly what the full path answers — status, headers
and bytes for every refusal, the same shape for a booking made — counted once, writing
nothing when it refuses."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bookings.models import Booking, BookingHistory
from bookings.viewsets import BookingViewSet
from tests.factories import BookingFactory

from ..bookings.create_helpers import create_body, in_days

pytestmark = pytest.mark.django_db

_PER_REQUEST = {"X-RateLimit-Remaining", "X-RateLimit-Reset"}


def _post(client, body, key: str | None = None, **extra):
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    extra.setdefault("content_type", "application/json")
    return client.generic("POST", "/v1/bookings", raw, HTTP_X_REQUEST_ID="lean-create", **extra)


def _answer(response) -> tuple[int, dict, bytes]:
    headers = {name: value for name, value in response.items() if name not in _PER_REQUEST}
    return response.status_code, headers, response.content


def _both(monkeypatch, client, body, key=None, **extra):
    lean = _answer(_post(client, body, key, **extra))
    with monkeypatch.context() as patched:
        patched.setattr(BookingViewSet, "lean_writes", frozenset())
        full = _answer(_post(client, body, key, **extra))
    return lean, full


def test_a_create_builds_no_drf_request_and_costs_its_three_queries(
    api, event_type, drf_requests_built
):
    with CaptureQueriesContext(connection) as captured:
        response = _post(api, create_body(event_type, in_days(2)))
    assert response.status_code == 201, response.content
    assert drf_requests_built == []
    # As on the full path (test_booking_create.py): the event type, the free hosts, the one
    # insert, and a savepoint pair around it here (the test's transaction); SQLite: 9.
    assert len(captured.captured_queries) == (5 if connection.vendor == "postgresql" else 9)
    booking = Booking.objects.get()
    assert response["Location"] == f"/v1/bookings/{booking.id}"
    assert response.json()["booking"]["id"] == booking.id
    assert BookingHistory.objects.filter(booking=booking).count() == 2


def test_a_booking_made_on_either_path_is_answered_alike(api, event_type, monkeypatch):
    lean, full = _both(monkeypatch, api, create_body(event_type, in_days(2)))
    bookings = {b.id: b for b in Booking.objects.all()}
    assert len(bookings) == 2
    for status, headers, content in (lean, full):
        body = json.loads(content)
        assert status == 201
        assert headers["Location"] == f"/v1/bookings/{body['booking']['id']}"
        assert body["booking"]["id"] in bookings
    (_, lean_headers, lean_body), (_, full_headers, full_body) = lean, full
    assert lean_headers.keys() == full_headers.keys()
    assert {k: v for k, v in lean_headers.items() if k != "Location"} == {
        k: v for k, v in full_headers.items() if k != "Location"
    }
    different = {"id", "assigned_to_id", "created_at", "updated_at"}  # a booking each
    lean_booking, full_booking = json.loads(lean_body)["booking"], json.loads(full_body)["booking"]
    assert lean_booking.keys() == full_booking.keys()
    assert {k: v for k, v in lean_booking.items() if k not in different} == {
        k: v for k, v in full_booking.items() if k not in different
    }


def test_every_refusal_is_the_full_paths_and_writes_nothing(api, event_type, hosts, monkeypatch):
    start = in_days(3)
    for host in hosts:  # every host busy at ``start``: 409
        BookingFactory(event_type=event_type, assigned_to=host, start_time=start)
    before = Booking.objects.count()
    body = create_body(event_type, in_days(4))
    cases = [
        (create_body(event_type, start), {}),  # no free host: 409
        ({**body, "event_type_id": "evt_" + "0" * 26}, {}),  # not the team's: 400
        ({**body, "attendee": {"name": "Ada"}}, {}),  # no email: 400
        ({**body, "attendee": {**body["attendee"], "email": "not an address"}}, {}),
        ({**body, "requested_time": "2027-01-01T10:00:00"}, {}),  # no offset
        ({**body, "colour": "blue"}, {}),  # an unknown field
        ([body], {}),  # not an object
        (b'{"event_type_id": ', {}),  # not JSON: 400 from the parser
        (b'{"a": "\\u0000"}', {}),  # NUL: 400 from the parser
        (b"", {}),  # no body
        (body, {"QUERY_STRING": "x=1"}),  # a query string: 400
        (body, {"HTTP_ACCEPT": "text/html"}),  # 406
        (body, {"HTTP_IDEMPOTENCY_KEY": "x" * 300}),  # a key too long: 400
        (body, {"content_type": "text/plain"}),  # 415 (the full path's case)
    ]
    statuses = []
    for raw, extra in cases:
        lean, full = _both(monkeypatch, api, raw, **extra)
        assert lean == full, (raw, extra)
        statuses.append(lean[0])
    assert statuses == [409, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 406, 400, 415]
    assert Booking.objects.count() == before


def test_refused_keys_are_answered_as_on_the_full_path(event_type, monkeypatch, refused_clients):
    body = create_body(event_type, in_days(2))
    statuses = []
    for client in refused_clients:
        lean, full = _both(monkeypatch, client, body)
        assert lean == full
        statuses.append(lean[0])
    assert statuses == [403, 401, 401, 401]
    assert not Booking.objects.exists()


def test_over_the_rate_limit_a_create_is_refused_alike(
    mid_minute, api, event_type, settings, monkeypatch
):
    assert _post(api, create_body(event_type, in_days(2))).status_code == 201
    settings.API_RATE_LIMIT = 1
    lean, full = _both(monkeypatch, api, create_body(event_type, in_days(3)))
    assert lean == full
    assert lean[0] == 429
    assert lean[1]["Retry-After"] == "30"
    assert Booking.objects.count() == 1


def test_each_create_is_counted_once(mid_minute, api, event_type):
    bodies = [
        create_body(event_type, in_days(2)),
        {"x": 1},
        b"{",
        create_body(event_type, in_days(3)),
    ]
    remaining = [int(_post(api, body)["X-RateLimit-Remaining"]) for body in bodies]
    assert remaining == list(range(remaining[0], remaining[0] - len(bodies), -1))
    assert Booking.objects.count() == 2


def test_a_keyed_create_and_its_replay_on_the_lean_path(api, event_type, drf_requests_built):
    body = create_body(event_type, in_days(2))
    first = _post(api, body, "lean-key")
    again = _post(api, body, "lean-key")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content[:-1] + b',"idempotent_replay":true}'
    assert drf_requests_built == []
    assert Booking.objects.count() == 1
