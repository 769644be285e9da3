"""GET /v1/bookings: every filter, and every bad value of every parameter is a 400."""

from datetime import UTC, datetime, timedelta

import pytest

from bookings.ids import new_id
from bookings.models import Booking
from tests.assertions import assert_error, assert_ok
from tests.factories import (
    BookingFactory,
    EventTypeFactory,
    booking_build,
)

pytestmark = pytest.mark.django_db

S = Booking.Status
DAY = datetime(2026, 12, 1, tzinfo=UTC)


def ids(response) -> list[str]:
    return [booking["id"] for booking in assert_ok(response, "bookings")["bookings"]]


@pytest.fixture
def second_event_type(team, hosts):
    return EventTypeFactory(team=team, hosts=hosts[:1], slug="second")


@pytest.fixture
def catalogue(event_type, second_event_type, hosts):
    """Named bookings across statuses, hosts, event types, attendees and times."""
    specs = {
        # name: (event type, host, status, start, email)
        "nov30_late": (event_type, 0, S.SCHEDULED, -timedelta(minutes=1), "Ada@Example.com"),
        "dec1_midnight": (event_type, 1, S.PENDING_CONFIRMATION, timedelta(0), "bob@example.com"),
        "dec1_noon": (second_event_type, 0, S.COMPLETED, timedelta(hours=12), "ada@example.com"),
        "dec1_last": (
            event_type,
            2,
            S.CANCELLED,
            timedelta(hours=23, minutes=59),
            "cy@example.com",
        ),
        "dec2_midnight": (event_type, 0, S.RESCHEDULED, timedelta(days=1), "ADA@EXAMPLE.COM"),
        "dec2_noon": (
            second_event_type,
            1,
            S.NO_SHOW,
            timedelta(days=1, hours=12),
            "d@example.com",
        ),
        "dec3_draft": (event_type, None, S.DRAFT, timedelta(days=2), "eve@example.com"),
    }
    built = {
        name: booking_build(
            event_type=evt,
            assigned_to=None if host is None else hosts[host],
            status=status,
            start_time=DAY + start,
            attendee_email=email,
        )
        for name, (evt, host, status, start, email) in specs.items()
    }
    Booking.objects.bulk_create(built.values())
    return {name: booking.id for name, booking in built.items()}


def names(catalogue, *wanted) -> list[str]:
    return [catalogue[name] for name in wanted]


ALL_IN_ORDER = [
    "nov30_late",
    "dec1_midnight",
    "dec1_noon",
    "dec1_last",
    "dec2_midnight",
    "dec2_noon",
    "dec3_draft",
]


def test_no_filter_lists_every_booking_of_the_team_in_start_time_order(api, catalogue, other_team):
    BookingFactory(event_type=EventTypeFactory(team=other_team), start_time=DAY)

    response = api.get("/v1/bookings")

    body = assert_ok(response, "bookings")
    assert set(body) == {"success", "bookings", "pagination"}
    assert ids(response) == names(catalogue, *ALL_IN_ORDER)
    assert body["pagination"] == {"next_cursor": None, "has_more": False}


def test_empty_list(api):
    body = assert_ok(api.get("/v1/bookings"), "bookings")

    assert body["bookings"] == []
    assert body["pagination"] == {"next_cursor": None, "has_more": False}


def test_status_single(api, catalogue):
    assert ids(api.get("/v1/bookings", {"status": "COMPLETED"})) == names(catalogue, "dec1_noon")


def test_status_comma_separated(api, catalogue):
    response = api.get("/v1/bookings", {"status": "CANCELLED,SCHEDULED,DRAFT"})

    assert ids(response) == names(catalogue, "nov30_late", "dec1_last", "dec3_draft")


def test_status_comma_separated_tolerates_spaces_and_repeats(api, catalogue):
    response = api.get("/v1/bookings", {"status": "NO_SHOW, RESCHEDULED,NO_SHOW"})

    assert ids(response) == names(catalogue, "dec2_midnight", "dec2_noon")


@pytest.mark.parametrize("status", [s.value for s in Booking.Status])
def test_every_status_value_filters(api, catalogue, status):
    expected = list(
        Booking.objects.filter(status=status)
        .order_by("start_time", "id")
        .values_list("id", flat=True)
    )
    assert len(expected) == 1
    assert ids(api.get("/v1/bookings", {"status": status})) == expected


def test_event_type_id(api, catalogue, second_event_type):
    response = api.get("/v1/bookings", {"event_type_id": second_event_type.id})

    assert ids(response) == names(catalogue, "dec1_noon", "dec2_noon")


def test_event_type_id_of_another_team_or_unknown_matches_nothing(api, catalogue, other_team):
    theirs = EventTypeFactory(team=other_team)
    BookingFactory(event_type=theirs)

    assert ids(api.get("/v1/bookings", {"event_type_id": theirs.id})) == []
    assert ids(api.get("/v1/bookings", {"event_type_id": new_id("evt")})) == []


def test_assigned_to_id(api, catalogue, hosts):
    response = api.get("/v1/bookings", {"assigned_to_id": hosts[0].id})

    assert ids(response) == names(catalogue, "nov30_late", "dec1_noon", "dec2_midnight")


def test_attendee_email_is_case_insensitive(api, catalogue):
    expected = names(catalogue, "nov30_late", "dec1_noon", "dec2_midnight")

    assert ids(api.get("/v1/bookings", {"attendee_email": "ada@example.com"})) == expected
    assert ids(api.get("/v1/bookings", {"attendee_email": "aDa@ExAmPlE.CoM"})) == expected


def test_attendee_email_matches_whole_address_only(api, catalogue):
    assert ids(api.get("/v1/bookings", {"attendee_email": "da@example.com"})) == []


def test_start_date_as_date_is_inclusive_from_midnight_utc(api, catalogue):
    response = api.get("/v1/bookings", {"start_date": "2026-12-01"})

    assert ids(response) == names(catalogue, *ALL_IN_ORDER[1:])


def test_end_date_as_date_includes_the_whole_day(api, catalogue):
    response = api.get("/v1/bookings", {"end_date": "2026-12-01"})

    assert ids(response) == names(
        catalogue, "nov30_late", "dec1_midnight", "dec1_noon", "dec1_last"
    )


def test_same_date_for_start_and_end_is_that_whole_day(api, catalogue):
    response = api.get("/v1/bookings", {"start_date": "2026-12-01", "end_date": "2026-12-01"})

    assert ids(response) == names(catalogue, "dec1_midnight", "dec1_noon", "dec1_last")


def test_start_date_as_time_is_inclusive(api, catalogue):
    response = api.get("/v1/bookings", {"start_date": "2026-12-01T12:00:00Z"})

    assert ids(response) == names(catalogue, *ALL_IN_ORDER[2:])


def test_end_date_as_time_is_exclusive(api, catalogue):
    response = api.get("/v1/bookings", {"end_date": "2026-12-01T12:00:00Z"})

    assert ids(response) == names(catalogue, "nov30_late", "dec1_midnight")


def test_times_with_an_offset_are_converted_to_utc(api, catalogue):
    # 13:00+01:00 is 12:00Z: dec1_noon is at the lower bound (kept); 2026-12-02T13:00+01:00
    # is 12:00Z the next day, the exclusive upper bound (dec2_noon dropped).
    response = api.get(
        "/v1/bookings",
        {"start_date": "2026-12-01T13:00:00+01:00", "end_date": "2026-12-02T13:00:00+01:00"},
    )

    assert ids(response) == names(catalogue, "dec1_noon", "dec1_last", "dec2_midnight")


def test_fractional_seconds_and_negative_offsets(api, catalogue):
    response = api.get(
        "/v1/bookings",
        {"start_date": "2026-11-30T18:59:00.000-05:00", "end_date": "2026-11-30T19:00:00.5-05:00"},
    )

    assert ids(response) == names(catalogue, "nov30_late", "dec1_midnight")


def test_combined_filters(api, catalogue, event_type, hosts):
    response = api.get(
        "/v1/bookings",
        {
            "status": "SCHEDULED,RESCHEDULED,CANCELLED",
            "event_type_id": event_type.id,
            "assigned_to_id": hosts[0].id,
            "attendee_email": "ADA@example.com",
            "start_date": "2026-11-30",
            "end_date": "2026-12-02",
        },
    )

    assert ids(response) == names(catalogue, "nov30_late", "dec2_midnight")


def test_combined_filters_that_exclude_each_other(api, catalogue, second_event_type):
    response = api.get(
        "/v1/bookings", {"status": "SCHEDULED", "event_type_id": second_event_type.id}
    )

    assert ids(response) == []


def test_filters_with_limit(api, catalogue):
    body = assert_ok(
        api.get("/v1/bookings", {"start_date": "2026-12-01", "limit": "2"}), "bookings"
    )

    assert [b["id"] for b in body["bookings"]] == names(catalogue, "dec1_midnight", "dec1_noon")
    assert body["pagination"]["has_more"] is True


# --- Bad values: a 400 naming the parameter, never ignored ------------------------------------

VALID_EVT = "evt_01JD0000000000000000000000"
VALID_MEM = "mem_01JD0000000000000000000000"

BAD_VALUES = [
    ("status", "BOGUS"),
    ("status", ""),
    ("status", "scheduled"),
    ("status", "SCHEDULED,"),
    ("status", ",SCHEDULED"),
    ("status", "SCHEDULED,bogus"),
    ("status", "SCHEDULED;CANCELLED"),
    ("status", " "),
    ("event_type_id", ""),
    ("event_type_id", "abc"),
    ("event_type_id", VALID_MEM),
    ("event_type_id", "evt_123"),
    ("event_type_id", "evt_01JD000000000000000000000u"),  # lower case: not Crockford
    ("event_type_id", "evt_01JD00000000000000000000000"),  # 27 characters
    ("event_type_id", "bkg_01JD0000000000000000000000"),
    ("assigned_to_id", ""),
    ("assigned_to_id", "abc"),
    ("assigned_to_id", VALID_EVT),
    ("assigned_to_id", "mem_01JD00000000000000000000I"),  # I is not in Crockford's alphabet
    ("assigned_to_id", "mem_01JD00000000000000000000"),  # 24 characters
    ("attendee_email", ""),
    ("attendee_email", "not-an-email"),
    ("attendee_email", "ada@"),
    ("attendee_email", "@example.com"),
    ("attendee_email", "ada example@example.com"),
    ("start_date", ""),
    ("start_date", "garbage"),
    ("start_date", "2026-13-01"),
    ("start_date", "2026-02-30"),
    ("start_date", "2026-12-01T25:00:00Z"),
    ("start_date", "2026-12-01T10:00:00"),  # naive
    ("start_date", "2026-12-01 10:00:00"),  # naive
    ("start_date", "1733011200"),  # a Unix time is not ISO 8601
    ("start_date", "tomorrow"),
    ("start_date", "20261201"),  # ISO 8601 basic format: not RFC 3339
    ("start_date", "2026-W48-1"),  # an ISO week date
    ("start_date", "2026-12-01T10Z"),  # no minutes
    ("start_date", "2026-12-01T10:00:00+0200"),  # offset without its colon
    ("start_date", "2026-12-01T10:00:00 02:00"),  # an unencoded '+' arrives as a space
    ("end_date", ""),
    ("end_date", "garbage"),
    ("end_date", "2026-12-32"),
    ("end_date", "2026-12-01T10:00:00"),  # naive
    ("end_date", "12/01/2026"),
    ("limit", "0"),
    ("limit", "101"),
    ("limit", "-1"),
    ("limit", "abc"),
    ("limit", "1.5"),
    ("limit", ""),
    ("limit", "1e2"),
    ("limit", " 5"),
    ("limit", "+5"),
    ("limit", "\u0665"),  # an Arabic-Indic five: a digit to Python, not to us
    ("limit", "99999999999999999999999"),
    ("cursor", ""),
    ("cursor", "   "),
]


@pytest.mark.parametrize(("parameter", "value"), BAD_VALUES)
def test_bad_value_is_400_naming_the_parameter(api, catalogue, parameter, value):
    response = api.get("/v1/bookings", {parameter: value})

    error = assert_error(response, 400, "validation_error", details={parameter})
    messages = error["details"][parameter]
    assert isinstance(messages, list)
    assert messages
    assert all(isinstance(m, str) for m in messages)


def test_naive_time_message_asks_for_an_offset(api):
    response = api.get("/v1/bookings", {"start_date": "2026-12-01T10:00:00"})

    error = assert_error(response, 400, "validation_error", details={"start_date"})
    assert "offset" in error["details"]["start_date"][0]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-12-02", "2026-12-01"),
        ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z"),
        ("2026-12-01T10:00:00Z", "2026-12-01T11:00:00+02:00"),
        ("2026-12-02T00:00:00Z", "2026-12-01"),  # the bare end date ends at 12-02T00:00Z
    ],
)
def test_end_date_not_after_start_date_is_400_on_end_date(api, start, end):
    response = api.get("/v1/bookings", {"start_date": start, "end_date": end})

    assert_error(response, 400, "validation_error", details={"end_date"})


@pytest.mark.parametrize("parameter", ["foo", "page", "offset", "sort", "Status", "start_time"])
def test_unknown_parameter_is_400(api, parameter):
    response = api.get("/v1/bookings", {parameter: "1"})

    error = assert_error(response, 400, "validation_error", details={parameter})
    assert error["details"][parameter] == ["Unknown parameter."]


@pytest.mark.parametrize(
    ("parameter", "values"),
    [
        ("status", ["SCHEDULED", "CANCELLED"]),
        ("status", ["SCHEDULED", "SCHEDULED"]),
        ("limit", ["10", "20"]),
        ("event_type_id", [VALID_EVT, VALID_EVT]),
        ("assigned_to_id", [VALID_MEM, VALID_MEM]),
        ("attendee_email", ["a@example.com", "b@example.com"]),
        ("start_date", ["2026-12-01", "2026-12-02"]),
        ("end_date", ["2026-12-01", "2026-12-02"]),
        ("cursor", ["x", "y"]),
    ],
)
def test_repeated_parameter_is_400(api, parameter, values):
    response = api.get("/v1/bookings", {parameter: values})

    assert_error(response, 400, "validation_error", details={parameter})


def test_every_bad_parameter_is_reported_at_once(api):
    response = api.get(
        "/v1/bookings",
        {
            "status": "nope",
            "event_type_id": "x",
            "assigned_to_id": "y",
            "attendee_email": "z",
            "start_date": "w",
            "end_date": "v",
            "limit": "0",
            "bogus": "1",
        },
    )

    assert_error(
        response,
        400,
        "validation_error",
        details={
            "status",
            "event_type_id",
            "assigned_to_id",
            "attendee_email",
            "start_date",
            "end_date",
            "limit",
            "bogus",
        },
    )


def test_bad_value_beside_a_good_cursor_is_still_400(api, catalogue):
    first = assert_ok(api.get("/v1/bookings", {"limit": "1"}), "bookings")
    cursor = first["pagination"]["next_cursor"]

    response = api.get("/v1/bookings", {"cursor": cursor, "status": "nope"})

    assert_error(response, 400, "validation_error", details={"status"})


@pytest.mark.parametrize("limit", ["1", "50", "100"])
def test_limits_at_the_bounds_are_accepted(api, limit):
    assert api.get("/v1/bookings", {"limit": limit}).status_code == 200


def test_list_takes_one_query_the_page(api, catalogue, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = api.get(
            "/v1/bookings", {"status": "SCHEDULED,COMPLETED", "attendee_email": "ada@example.com"}
        )
    assert len(ids(response)) == 2


def test_rejected_filters_touch_nothing(api, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = api.get("/v1/bookings", {"status": "nope"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "end_date=9999-12-31",
        "start_date=0001-01-01T00:00:00%2B01:00",
        "end_date=9999-12-31T23:59:59-01:00",
    ],
)
def test_dates_at_the_edge_of_the_calendar_are_400(api, query):
    from tests.assertions import assert_error

    response = api.get(f"/v1/bookings?{query}")
    assert_error(response, 400, "validation_error")
