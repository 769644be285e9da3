"""The error envelope of each kind, and X-Request-Id on every response."""

import json
import re

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import Client, override_settings
from rest_framework.test import APIClient

from bookings.ids import new_id
from bookings.models import Booking
from bookings_project.api.errors import suspicious_request_error
from notifications.models import EmailOutbox
from tests.assertions import assert_error
from tests.factories import BookingFactory

from ..bookings.create_helpers import create_body, in_days
from .urls_errors import LEAK

pytestmark = pytest.mark.django_db

MAX_BODY = 256 * 1024
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


# --- 404 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1",
        "/v1/",
        "/v1/nope",
        "/v1/bookings/",
        "/v1/bookings/x/y/z",
        "/v1/booking",
        "/v1/event-types/",
        "/v1/team",
        "/v1/team/members/",
        "/v1/schema/extra",
        "/v2/bookings",
        "/nope",
    ],
)
@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no-key"])
def test_unknown_path_is_404_envelope(api, path, with_key):
    client = api if with_key else APIClient()

    response = client.get(path)

    assert_error(response, 404, "not_found", details=set())
    assert response["X-Request-Id"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unknown_v1_path_is_404_for_every_method(api, method):
    response = getattr(api, method)("/v1/nope", {"a": 1}, format="json")

    assert_error(response, 404, "not_found")


def test_not_found_bodies_are_identical_for_every_resource_kind(api):
    bodies = [
        api.get(f"/v1/bookings/{new_id('bkg')}").json(),
        api.get(f"/v1/event-types/{new_id('evt')}").json(),
        api.get(f"/v1/team/members/{new_id('mem')}").json(),
    ]

    assert all(body["error"]["code"] == "not_found" for body in bodies)
    assert all(body["error"]["details"] == {} for body in bodies)


# --- 405 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", "/v1/bookings/{booking}", "GET"),
        ("put", "/v1/bookings/{booking}", "GET"),
        ("post", "/v1/event-types", "GET"),
        ("delete", "/v1/event-types/{event_type}", "GET"),
        ("post", "/v1/team/members", "GET"),
        ("patch", "/v1/team/members/{member}", "GET"),
        ("put", "/v1/bookings", "GET"),
        ("delete", "/v1/bookings", "GET"),
    ],
)
def test_wrong_method_is_405_envelope(api, event_type, hosts, method, path, allowed):
    booking = Booking.objects.create(
        event_type=event_type,
        team=event_type.team,
        assigned_to=hosts[0],
        status=Booking.Status.SCHEDULED,
        start_time="2026-12-01T10:00:00Z",
        end_time="2026-12-01T10:30:00Z",
        blocked_start="2026-12-01T10:00:00Z",
        blocked_end="2026-12-01T10:30:00Z",
        attendee_name="A",
        attendee_email="a@example.com",
        ical_uid="uid-405@bookings",
    )
    url = path.format(booking=booking.id, event_type=event_type.id, member=hosts[0].id)

    response = getattr(api, method)(url, {}, format="json")

    error = assert_error(response, 405, "method_not_allowed", details=set())
    assert method.upper() in error["message"]
    assert allowed in response["Allow"]
    assert response["X-Request-Id"]
    assert Booking.objects.get(pk=booking.pk).status == Booking.Status.SCHEDULED


# --- 413 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/bookings", "/v1/event-types", "/v1/nope", "/healthz"])
@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no-key"])
def test_body_over_256_kib_is_413_envelope(api, path, with_key):
    client = api if with_key else APIClient()
    body = b'{"a": "' + b"x" * (MAX_BODY - 8) + b'"}'
    assert len(body) == MAX_BODY + 1

    response = client.post(path, body, content_type="application/json")

    error = assert_error(response, 413, "payload_too_large", details={"max_bytes"})
    assert error["details"]["max_bytes"] == MAX_BODY
    assert "256 KiB" in error["message"]
    assert response["X-Request-Id"]
    assert not Booking.objects.exists()


def test_body_of_exactly_256_kib_is_not_413(api):
    body = b'{"a": "' + b"x" * (MAX_BODY - 9) + b'"}'
    assert len(body) == MAX_BODY

    response = api.post("/v1/event-types", body, content_type="application/json")

    # Past the size check: the view answers (this one only reads).
    assert_error(response, 405, "method_not_allowed")


def test_unparseable_content_length_is_400_envelope(api):
    response = api.generic(
        "POST", "/v1/bookings", b"{}", content_type="application/json", CONTENT_LENGTH="lots"
    )

    assert_error(response, 400, "bad_request")
    assert response["X-Request-Id"]


# --- 415 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", "hello"),
        ("application/x-www-form-urlencoded", "event_type_id=evt_x"),
        ("application/xml", "<booking/>"),
        ("multipart/form-data; boundary=XX", "--XX--"),
    ],
)
def test_non_json_write_is_415_envelope(api, event_type, content_type, body):
    response = api.generic("POST", "/v1/bookings", body, content_type=content_type)

    error = assert_error(response, 415, "unsupported_media_type", details=set())
    assert content_type.split(";")[0] in error["message"]
    assert response["X-Request-Id"]
    assert not Booking.objects.exists()


# A valid create, declared as something other than JSON in UTF-8: each would have been parsed
# (DRF matched a body's type as a range; Django decoded with the declared charset).
@pytest.mark.parametrize(
    "content_type",
    [
        "*/*",
        "application/*",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/json; charset=utf-8-sig",
        "application/json; charset=bogus",
    ],
)
def test_json_declared_as_a_range_or_another_charset_is_415(api, event_type, content_type):
    body = json.dumps(
        create_body(event_type, in_days(2), attendee={"name": "José", "email": "j@example.com"})
    )

    response = api.generic("POST", "/v1/bookings", body.encode(), content_type=content_type)

    error = assert_error(response, 415, "unsupported_media_type", details=set())
    assert content_type in error["message"]
    assert not Booking.objects.exists()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf8"',
        "Application/JSON",
        "application/json; version=1",
    ],
)
def test_json_in_utf8_is_read_however_its_type_is_spelt(api, event_type, content_type):
    body = create_body(event_type, in_days(2), attendee={"name": "José", "email": "j@example.com"})

    response = api.generic(
        "POST",
        "/v1/bookings",
        json.dumps(body, ensure_ascii=False).encode(),
        content_type=content_type,
    )

    assert response.status_code == 201, response.content
    assert Booking.objects.get().attendee_name == "José"


# --- 500 ---------------------------------------------------------------------------------------


@pytest.mark.urls("tests.api.urls_errors")
@pytest.mark.parametrize("path", ["/test/boom-api", "/test/boom-django"])
def test_unexpected_error_is_500_envelope_without_a_trace(path):
    client = Client(raise_request_exception=False, HTTP_X_REQUEST_ID="trace-me-500")

    response = client.get(path)

    error = assert_error(response, 500, "internal_error", details=set())
    content = response.content.decode()
    assert LEAK not in content
    assert "Traceback" not in content
    assert "RuntimeError" not in content
    assert "urls_errors" not in content
    assert error["message"] == "Something went wrong on our side."
    assert response["X-Request-Id"] == "trace-me-500"


@pytest.mark.urls("tests.api.urls_errors")
@pytest.mark.parametrize("sqlstate", ["40P01", "55P03", "40001", "53300"])
def test_database_unavailable_is_503_with_retry_after_not_500(sqlstate):
    """A deadlock, lock timeout, serialization failure or too many clients: the database
    cannot serve right now, which is the client's cue to retry, not a 500. (A database that
    cannot be reached at all: tests/api/test_database_errors.py.)"""
    response = Client(raise_request_exception=False).get(f"/test/contention/{sqlstate}")

    assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == "1"


# --- X-Request-Id ------------------------------------------------------------------------------


def test_request_id_is_echoed_on_every_response(api, event_type):
    header = {"HTTP_X_REQUEST_ID": "req-abc_123.XYZ"}
    big = b"{" + b" " * MAX_BODY + b"}"
    responses = [
        (200, api.get("/v1/event-types", **header)),
        (200, APIClient().get("/healthz", **header)),
        (200, APIClient().get("/v1/schema", **header)),
        (400, api.get("/v1/bookings", {"limit": "0"}, **header)),
        (401, APIClient().get("/v1/bookings", **header)),
        (404, api.get(f"/v1/bookings/{new_id('bkg')}", **header)),
        (404, APIClient().get("/v1/nope", **header)),
        (404, APIClient().get("/nope", **header)),
        (405, api.delete("/v1/event-types", **header)),
        (413, api.post("/v1/bookings", big, content_type="application/json", **header)),
        (415, api.generic("POST", "/v1/bookings", "x", content_type="text/plain", **header)),
    ]

    for status, response in responses:
        assert response.status_code == status, response.content
        assert response["X-Request-Id"] == "req-abc_123.XYZ", status


@pytest.mark.parametrize(
    ("path", "status"),
    [("/v1/bookings", 200), ("/v1/nope", 404), ("/nope", 404), ("/healthz", 200)],
)
def test_request_id_is_generated_when_absent(api, path, status):
    first = api.get(path)
    second = api.get(path)

    assert first.status_code == status
    assert GENERATED_ID.match(first["X-Request-Id"])
    assert GENERATED_ID.match(second["X-Request-Id"])
    assert first["X-Request-Id"] != second["X-Request-Id"]


def test_request_id_is_generated_on_401():
    response = APIClient().get("/v1/bookings")

    assert response.status_code == 401
    assert GENERATED_ID.match(response["X-Request-Id"])


@pytest.mark.parametrize(
    "supplied",
    ["has space", "x" * 201, "tab\there", "quote\"'ok-but-space here", "caf\u00e9"],
    ids=["space", "too-long", "tab", "mixed", "non-ascii"],
)
def test_an_unsafe_request_id_is_replaced(api, supplied):
    response = api.get("/v1/bookings", HTTP_X_REQUEST_ID=supplied)

    assert response.status_code == 200
    assert GENERATED_ID.match(response["X-Request-Id"])


def test_a_request_id_of_200_characters_is_kept(api):
    supplied = "r" * 200

    assert api.get("/v1/bookings", HTTP_X_REQUEST_ID=supplied)["X-Request-Id"] == supplied


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/v1/nope", b""),
        ("get", "/nope", b""),
        ("post", "/v1/bookings", b"x" * (MAX_BODY + 1)),
        ("post", "/healthz", b""),
    ],
    ids=["unknown-v1-path", "unknown-path", "413", "probe-405"],
)
def test_errors_outside_drf_declare_utf8_json_like_the_api(api, method, path, body):
    response = getattr(api, method)(path, body, content_type="application/json")

    assert response.status_code >= 400
    assert response["Content-Type"] == "application/json; charset=utf-8"


def test_api_errors_declare_utf8_json(api):
    for response in (APIClient().get("/v1/bookings"), api.get("/v1/bookings?limit=0")):
        assert response["Content-Type"] == "application/json; charset=utf-8"


def test_error_responses_are_json(api):
    for response in (
        APIClient().get("/v1/bookings"),
        api.get("/v1/nope"),
        APIClient().get("/nope"),
        api.delete("/v1/bookings"),
    ):
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["success"] is False


@pytest.mark.parametrize("path", ["/v1/bookings", "/v1/event-types", "/v1/team/members"])
def test_options_is_405_in_the_envelope(api, path):
    from tests.assertions import assert_error

    assert_error(api.options(path), 405, "method_not_allowed")


# --- HTML never answers under /v1 ------------------------------------------------------------


@override_settings(DEBUG=True, ALLOWED_HOSTS=["testserver"])
def test_a_disallowed_host_under_v1_is_the_envelope_even_with_debug(api):
    response = api.get("/v1/bookings", HTTP_HOST="evil.example")

    assert_error(response, 400, "bad_request")
    assert response["X-Request-Id"]


@override_settings(DEBUG=True, ALLOWED_HOSTS=["testserver"])
def test_outside_v1_django_keeps_its_own_pages(db):
    response = Client().get("/admin/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/cancel", ""], ids=["cancel", "patch"])
def test_a_chunked_body_is_411_not_read_as_empty(api, team, event_type, hosts, path):
    # A chunked body has no Content-Length; Django would read it as empty and cancel with the
    # defaults, or answer a PATCH 200 with nothing changed.
    booking = BookingFactory(team=team, event_type=event_type, assigned_to=hosts[0])
    before = Booking.objects.values().get(pk=booking.pk)

    response = api.generic(
        "PATCH" if path == "" else "POST",
        f"/v1/bookings/{booking.id}{path}",
        b"",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
    )

    assert_error(response, 411, "length_required")
    assert Booking.objects.values().get(pk=booking.pk) == before
    assert not booking.history.exists()
    assert not EmailOutbox.objects.exists()


@pytest.mark.parametrize("length", ["-1", "+10", " 10", "1e3", "10 "])
def test_a_malformed_content_length_is_400_bad_request(api, length):
    response = api.generic(
        "POST", "/v1/bookings", b"{}", content_type="application/json", CONTENT_LENGTH=length
    )

    assert_error(response, 400, "bad_request")
    assert not Booking.objects.exists()


def test_a_body_django_finds_too_big_while_a_view_reads_it_is_413():
    # The body-size middleware refuses first; this is the handler's answer should Django's own
    # limit (DATA_UPLOAD_MAX_MEMORY_SIZE) be met inside a view.
    refusal = suspicious_request_error(RequestDataTooBig())

    assert (refusal.status_code, refusal.default_code) == (413, "payload_too_large")
