"""The API's structure: viewsets on a router, the keyset pagination class, one parser per rule
(bodies and query strings agree), typed selectors the admin and commands can call, and a
schema that offers the two key headers as alternatives."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.urls import resolve
from rest_framework.test import APIClient

from bookings import selectors
from bookings.models import Booking
from bookings.pagination import KeysetCursorPagination
from bookings.viewsets import BookingViewSet, EventTypeViewSet, TeamMemberViewSet
from tests.assertions import assert_error, assert_ok
from tests.factories import BookingFactory

from .create_helpers import create_body, in_days, iso, post_booking

pytestmark = pytest.mark.django_db


# --- Viewsets on a router ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "viewset", "action"),
    [
        ("/v1/bookings", BookingViewSet, {"get": "list", "post": "create"}),
        (
            "/v1/bookings/bkg_01JD0000000000000000000000",
            BookingViewSet,
            {"get": "retrieve", "patch": "partial_update"},
        ),
        ("/v1/bookings/bkg_01JD0000000000000000000000/history", BookingViewSet, {"get": "history"}),
        *(
            (f"/v1/bookings/bkg_01JD0000000000000000000000/{path}", BookingViewSet, {"post": name})
            for path, name in [
                ("confirm", "confirm"),
                ("complete", "complete"),
                ("no-show", "no_show"),
                ("cancel", "cancel"),
                ("reschedule", "reschedule"),
            ]
        ),
        ("/v1/event-types", EventTypeViewSet, {"get": "list"}),
        ("/v1/event-types/evt_01JD0000000000000000000000", EventTypeViewSet, {"get": "retrieve"}),
        ("/v1/team/members", TeamMemberViewSet, {"get": "list"}),
        ("/v1/team/members/mem_01JD0000000000000000000000", TeamMemberViewSet, {"get": "retrieve"}),
    ],
)
def test_every_resource_route_is_a_viewset_action(path, viewset, action):
    callback = resolve(path).func

    assert callback.cls is viewset
    assert {m: a for m, a in callback.actions.items() if m != "head"} == action


def test_the_booking_list_pages_with_the_keyset_pagination_class():
    assert BookingViewSet.pagination_class is KeysetCursorPagination


# --- One parser per rule: the body and the query string agree --------------------------------

TIMES_REFUSED_EVERYWHERE = [
    "2026-W48-1T10:00:00Z",  # an ISO week date
    "20261201T100000Z",  # the basic format
    "2026-12-01T10:00:00+0200",  # an offset without its colon
    "2026-12-01T10Z",  # no minutes
    "1733011200",  # a Unix time
    "2026-12-01T10:00:00",  # naive
    "2026-02-30T10:00:00Z",  # no such day
    "\u0662\u0660\u0662\u0669-10-03T10:00:00Z",  # Arabic-Indic digits
    "\uff12\uff10\uff12\uff19-10-03T10:00:00Z",  # fullwidth digits
    "\uff12\uff10\uff12\uff19-10-03",  # fullwidth digits, a bare date
]


@pytest.mark.parametrize("value", TIMES_REFUSED_EVERYWHERE)
def test_a_time_the_list_refuses_the_create_refuses_too(api, event_type, value):
    listed = api.get("/v1/bookings", {"start_date": value})
    created = post_booking(api, create_body(event_type, in_days(2), requested_time=value))

    assert_error(listed, 400, "validation_error", details={"start_date"})
    assert_error(created, 400, "validation_error", details={"requested_time"})
    assert not Booking.objects.exists()


def test_a_time_both_accept_means_the_same_instant(api, event_type):
    start = in_days(3).replace(hour=10)
    with_offset = start.astimezone(UTC).replace(tzinfo=None).isoformat() + "+00:00"
    created = assert_ok(
        post_booking(api, create_body(event_type, start, requested_time=with_offset)),
        "booking",
        status=201,
    )
    listed = assert_ok(api.get("/v1/bookings", {"start_date": with_offset}), "bookings")

    assert [b["id"] for b in listed["bookings"]] == [created["booking"]["id"]]
    assert created["booking"]["start_time"] == iso(start)


@pytest.mark.parametrize("value", ["evt_123", "mem_01JD0000000000000000000000", "evt_" + "u" * 26])
def test_an_id_the_list_refuses_the_create_refuses_too(api, event_type, value):
    listed = api.get("/v1/bookings", {"event_type_id": value})
    created = post_booking(api, create_body(event_type, in_days(2), event_type_id=value))

    assert_error(listed, 400, "validation_error", details={"event_type_id"})
    assert_error(created, 400, "validation_error", details={"event_type_id"})


@pytest.mark.parametrize(
    ("phone", "stored"), [("+999 1234 5678", "+99912345678"), ("+0 123 4567", "+01234567")]
)
def test_the_contracts_rule_decides_not_the_country_code(api, event_type, phone, stored):
    """``+`` then 7 to 15 digits is the contract's whole rule: a calling code no country uses
    yet is still within it."""
    body = create_body(
        event_type, in_days(2), attendee={"name": "A", "email": "a@example.com", "phone": phone}
    )

    created = assert_ok(post_booking(api, body), "booking", status=201)

    assert created["booking"]["attendee"]["phone"] == stored


@pytest.mark.parametrize("phone", ["+\u0664\u0664 20 7183 8750", "+\uff14\uff14 20 7183 8750"])
def test_a_phone_in_other_digits_is_400(api, event_type, phone):
    body = create_body(
        event_type, in_days(2), attendee={"name": "A", "email": "a@example.com", "phone": phone}
    )

    error = assert_error(post_booking(api, body), 400, "validation_error", details={"attendee"})
    assert "phone" in error["details"]["attendee"]
    assert not Booking.objects.exists()


@pytest.mark.parametrize("zone", ["localtime", "Factory"])
def test_a_host_zone_alias_is_not_an_iana_time_zone(api, event_type, zone):
    body = create_body(
        event_type, in_days(2), attendee={"name": "A", "email": "a@example.com", "timezone": zone}
    )

    error = assert_error(post_booking(api, body), 400, "validation_error", details={"attendee"})
    assert "timezone" in error["details"]["attendee"]


# --- Query parameters: never ignored, on any action --------------------------------------------


@pytest.mark.parametrize("format_", ["json", "api", "xml"])
def test_format_is_an_unknown_parameter_not_a_renderer_switch(api, format_):
    response = api.get("/v1/bookings", {"format": format_})

    error = assert_error(response, 400, "validation_error", details={"format"})
    assert error["details"]["format"] == ["Unknown parameter."]


@pytest.mark.parametrize("query", ["?foo=1", "?format=xml", "?format=json"])
def test_a_create_with_a_query_parameter_is_400_and_books_nothing(api, event_type, query):
    response = api.post("/v1/bookings" + query, create_body(event_type, in_days(2)), format="json")

    assert_error(response, 400, "validation_error")
    assert not Booking.objects.exists()


def test_a_retrieve_with_a_query_parameter_is_400(api, team, event_type, hosts):
    booking = BookingFactory(team=team, event_type=event_type, assigned_to=hosts[0])

    for path in [
        f"/v1/bookings/{booking.id}",
        f"/v1/event-types/{event_type.id}",
        f"/v1/team/members/{hosts[0].id}",
    ]:
        error = assert_error(api.get(path, {"foo": "1"}), 400, "validation_error")
        assert error["details"] == {"foo": ["Unknown parameter."]}


def test_a_repeated_parameter_message_speaks_of_statuses_only_for_status(api):
    members = api.get("/v1/team/members?is_active=true&is_active=false")
    bookings = api.get("/v1/bookings?status=SCHEDULED&status=CANCELLED")

    assert assert_error(members, 400, "validation_error")["details"]["is_active"] == [
        "Give this parameter once."
    ]
    assert (
        "comma-separated" in assert_error(bookings, 400, "validation_error")["details"]["status"][0]
    )


def test_a_phone_keeps_the_digits_as_written(api, event_type):
    """phonenumbers would format "+44 (0)20 …" as +4420…; the contract returns + and the
    digits the attendee gave."""
    body = create_body(
        event_type,
        in_days(2),
        attendee={"name": "A", "email": "a@example.com", "phone": "+44 (0)20 7183 8750"},
    )

    created = assert_ok(post_booking(api, body), "booking", status=201)

    assert created["booking"]["attendee"]["phone"] == "+4402071838750"


# --- Typed selectors: callable without a query string ----------------------------------------


def test_booking_list_selector_takes_typed_filters(team, event_type, hosts, other_team):
    day = datetime(2030, 3, 4, 9, tzinfo=UTC)
    early = BookingFactory(
        team=team, event_type=event_type, assigned_to=hosts[0], start_time=day,
        end_time=day + timedelta(minutes=30), attendee_email="Ada@Example.com",
    )  # fmt: skip
    BookingFactory(
        team=team, event_type=event_type, assigned_to=hosts[1], start_time=day + timedelta(days=1),
        end_time=day + timedelta(days=1, minutes=30), status=Booking.Status.CANCELLED,
        cancelled_by="api", cancelled_at=day,
    )  # fmt: skip

    found = selectors.booking_list(
        team=team,
        statuses=[Booking.Status.SCHEDULED],
        attendee_email="ada@example.COM",
        start_from=day,
        start_before=day + timedelta(days=2),
    )

    assert list(found) == [early]
    assert list(selectors.booking_list(team=other_team)) == []
    assert selectors.booking_list(team=team).count() == 2


def test_member_list_selector_takes_a_typed_flag(team, hosts):
    hosts[0].is_active = False
    hosts[0].save()

    assert list(selectors.member_list(team=team, is_active=False)) == [hosts[0]]
    assert len(selectors.member_list(team=team, is_active=True)) == 2
    assert len(selectors.member_list(team=team)) == 3


# --- The schema: either key header --------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    out = StringIO()
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", stdout=out, stderr=StringIO())
    return yaml.safe_load(out.getvalue())


# Described in the document, with no key (security: []): tests/bookings/test_schema.py.
PUBLIC_PATHS = {"/v1/schema", "/docs", "/healthz", "/readyz"}


def test_every_keyed_operation_offers_the_two_headers_as_alternatives(schema):
    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if path not in PUBLIC_PATHS
    ]

    assert operations
    for path, method, operation in operations:
        assert operation["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}], (path, method)


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_either_header_alone_is_enough(api, header):
    value = f"Bearer {api.secret}" if header == "HTTP_AUTHORIZATION" else api.secret

    response = APIClient().get("/v1/bookings", **{header: value})

    assert_ok(response, "bookings")


def test_the_idempotency_key_header_is_described_as_the_server_checks_it(schema):
    [header] = [
        p for p in schema["paths"]["/v1/bookings"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    ]  # fmt: skip

    assert header["in"] == "header"
    assert header["schema"]["minLength"] == 1
    assert header["schema"]["maxLength"] == 255
    assert "pattern" in header["schema"]


def test_every_keyed_operation_documents_503(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if path not in PUBLIC_PATHS:
                assert "503" in operation["responses"], (path, method)


def test_the_list_documents_its_paginator_parameters(schema):
    names = [p["name"] for p in schema["paths"]["/v1/bookings"]["get"]["parameters"]]

    assert names.count("limit") == 1
    assert names.count("cursor") == 1
    assert {"status", "event_type_id", "assigned_to_id", "attendee_email"} <= set(names)
