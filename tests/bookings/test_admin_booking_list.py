"""The booking list in the admin: cheap at any size (no whole-table count, fixed queries)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bookings.admin import EstimatedCountPaginator
from bookings.models import Booking
from tests.factories import TeamMemberFactory, booking_build

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:bookings_booking_changelist"


def _bookings(event_type, count: int, offset: int = 0) -> None:
    hosts = [TeamMemberFactory(team=event_type.team) for _ in range(count)]
    start = datetime(2027, 3, 1, 9, tzinfo=UTC)
    Booking.objects.bulk_create(
        booking_build(
            event_type=event_type,
            assigned_to=host,
            start_time=start + timedelta(hours=offset + i),
        )
        for i, host in enumerate(hosts)
    )


def _changelist_queries(client, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse(CHANGELIST), params or {})
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_booking_changelist_queries_do_not_grow_with_rows(
    admin_client, event_type, django_assert_max_num_queries
):
    _bookings(event_type, 3)
    few = _changelist_queries(admin_client)
    _bookings(event_type, 40, offset=100)

    with django_assert_max_num_queries(8):
        response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 43
    assert _changelist_queries(admin_client) == few


def test_booking_changelist_never_counts_more_than_the_limit(admin_client, event_type):
    _bookings(event_type, 3)

    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse(CHANGELIST), {"status": "SCHEDULED"})

    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1, counts
    # SELECT COUNT(*) FROM (SELECT … LIMIT 10001): at most count_limit + 1 rows read.
    assert f"LIMIT {EstimatedCountPaginator.count_limit + 1}" in counts[0].upper(), counts
    assert response.context["cl"].result_count == 3


@pytest.mark.postgres
def test_booking_changelist_estimates_a_big_unfiltered_table(admin_client, event_type, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "count_limit", 10)
    _bookings(event_type, 30)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE bookings_booking")

    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse(CHANGELIST))
    filtered = admin_client.get(reverse(CHANGELIST), {"q": "nobody"})

    assert response.status_code == 200
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts == [], counts
    assert response.context["cl"].result_count == 30  # the fresh estimate
    assert response.context["cl"].paginator.is_capped
    assert "More than 10 bookings" in response.content.decode()
    assert filtered.context["cl"].result_count == 0  # filtered: counted exactly


def test_no_page_past_the_count_limit_is_offered(admin_client, event_type, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "count_limit", 10)
    monkeypatch.setattr("bookings.admin.booking.BookingAdmin.list_per_page", 5)
    _bookings(event_type, 30)

    last = admin_client.get(reverse(CHANGELIST), {"status": "SCHEDULED", "p": 2})
    beyond = admin_client.get(reverse(CHANGELIST), {"status": "SCHEDULED", "p": 3})

    assert last.status_code == 200
    assert last.context["cl"].paginator.num_pages == 2
    assert len(last.context["cl"].result_list) == 5
    assert "More than 10 bookings" in last.content.decode()
    # Django's answer to a page that does not exist: back to the list with ?e=1, never a 500.
    assert beyond.status_code == 302


@pytest.mark.parametrize(
    "lookup",
    ["attendee_name__regex", "attendee_email__contains", "cancellation_reason__icontains"],
)
def test_the_list_takes_only_its_own_filters(admin_client, event_type, lookup):
    _bookings(event_type, 2)

    response = admin_client.get(reverse(CHANGELIST), {lookup: "a"})

    # Django's answer to a lookup the admin does not allow (DisallowedModelAdminLookup).
    assert response.status_code == 400


@pytest.mark.parametrize(
    "changelist",
    [
        CHANGELIST,
        "admin:notifications_emailoutbox_changelist",
        "admin:bookings_idempotencykey_changelist",
    ],
)
def test_big_lists_never_count_per_filter_choice(admin_client, event_type, changelist):
    _bookings(event_type, 2)

    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse(changelist), {"_facets": "1"})

    assert response.status_code == 200
    assert "Show counts" not in response.content.decode()
    assert not [q for q in captured.captured_queries if "FILTER (WHERE" in q["sql"].upper()]


# Column 0 is the action checkbox, then the list_display: 3 is the start.
@pytest.mark.parametrize("order", ["1", "2", "6.-7", "-5", "1.2.4.5.6.7"])
def test_the_list_sorts_only_by_its_start_whatever_the_url_says(admin_client, event_type, order):
    _bookings(event_type, 3)

    response = admin_client.get(reverse(CHANGELIST), {"o": order})

    # Django drew no link for these columns, but ordered by any ?o= named: here they are
    # ignored, and the list keeps its own order (the start, newest first).
    assert response.status_code == 200
    assert response.context["cl"].get_ordering(
        response.wsgi_request, response.context["cl"].root_queryset
    ) == ["-start_time", "-id"]


def test_the_list_sorts_by_its_start_when_asked(admin_client, event_type):
    _bookings(event_type, 3)

    response = admin_client.get(reverse(CHANGELIST), {"o": "3"})  # the start column

    ordering = response.context["cl"].get_ordering(
        response.wsgi_request, response.context["cl"].root_queryset
    )
    assert ordering[0] == "start_time"


@pytest.mark.parametrize(
    ("changelist", "lookup"),
    [
        ("admin:notifications_emailoutbox_changelist", "to_email__regex"),
        ("admin:notifications_emailoutbox_changelist", "last_error__icontains"),
        ("admin:notifications_emailoutbox_changelist", "attempts__gt"),
        ("admin:bookings_idempotencykey_changelist", "key__regex"),
        ("admin:bookings_idempotencykey_changelist", "response_body__isnull"),
    ],
)
def test_the_other_big_lists_take_only_their_own_filters(admin_client, changelist, lookup):
    response = admin_client.get(reverse(changelist), {lookup: "a"})

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("changelist", "params"),
    [
        ("admin:notifications_emailoutbox_changelist", {"status__exact": "sent"}),
        ("admin:notifications_emailoutbox_changelist", {"kind__exact": "confirmation"}),
        ("admin:bookings_idempotencykey_changelist", {"expiry": "expired"}),
    ],
)
def test_the_other_big_lists_keep_their_filters(admin_client, changelist, params):
    assert admin_client.get(reverse(changelist), params).status_code == 200


@pytest.mark.parametrize(
    ("changelist", "order", "expected"),
    [
        ("admin:notifications_emailoutbox_changelist", "6", ["-id"]),  # attempts: ignored
        ("admin:notifications_emailoutbox_changelist", "-4.5", ["-id"]),
        ("admin:notifications_emailoutbox_changelist", "1", ["id"]),  # the id: its index
        ("admin:bookings_idempotencykey_changelist", "2", ["-id"]),
    ],
)
def test_the_other_big_lists_sort_only_by_their_index(admin_client, changelist, order, expected):
    response = admin_client.get(reverse(changelist), {"o": order})

    cl = response.context["cl"]
    assert cl.get_ordering(response.wsgi_request, cl.root_queryset)[:1] == expected
