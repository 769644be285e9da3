"""Finding a booking in the admin: the columns support reads, each filter and the exact search
return exactly the matching bookings, and a value that names nothing says so."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.urls import reverse

from bookings.models import Booking
from tests.factories import EventTypeFactory, TeamFactory, TeamMemberFactory, booking_build

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:bookings_booking_changelist")


@pytest.fixture
def world(db):
    """Two teams; ours has two event types and two hosts. Bookings on known days."""
    ours, theirs = TeamFactory(name="Ours", slug="ours"), TeamFactory(name="Theirs", slug="theirs")
    ada = TeamMemberFactory(team=ours, name="Ada Host")
    bob = TeamMemberFactory(team=ours, name="Bob Host")
    intro = EventTypeFactory(team=ours, name="Intro", hosts=[ada, bob])
    deep = EventTypeFactory(team=ours, name="Deep", hosts=[ada])
    eve = TeamMemberFactory(team=theirs, name="Eve Host")
    other = EventTypeFactory(team=theirs, name="Other", hosts=[eve])

    def at(day, hour, **fields):
        return datetime(2027, 5, day, hour, tzinfo=UTC), fields

    specs = {
        "a": (intro, ada, *at(3, 9, attendee_name="Élise Martin", attendee_email="elise@x.io")),
        "b": (intro, bob, *at(3, 23, status=Booking.Status.CANCELLED)),
        "c": (deep, ada, *at(4, 0, status=Booking.Status.PENDING_CONFIRMATION)),
        "d": (intro, ada, *at(5, 10, attendee_email="Elise@X.io")),
        "e": (other, eve, *at(3, 12, attendee_name="élise martin")),
    }
    made = {}
    for key, (event_type, host, start, fields) in specs.items():
        made[key] = booking_build(
            event_type=event_type, assigned_to=host, start_time=start, **fields
        )
    Booking.objects.bulk_create(made.values())
    return {"bookings": made, "ours": ours, "intro": intro, "ada": ada, "eve": eve}


def _found(client, **params) -> set[str]:
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return {booking.pk for booking in response.context["cl"].result_list}


def _ids(world, *keys) -> set[str]:
    return {world["bookings"][key].pk for key in keys}


def test_the_list_shows_what_support_reads(admin_client, world):
    booking = world["bookings"]["a"]

    html = admin_client.get(CHANGELIST, {"q": booking.pk}).content.decode()

    assert '<span class="booking-status booking-status--scheduled">SCHEDULED</span>' in html
    assert "2027-05-03 09:00 UTC" in html
    assert "Élise Martin" in html
    assert "elise@x.io" in html
    assert "Intro" in html
    assert "Ada Host" in html
    assert "Ours" in html


def test_status_filter(admin_client, world):
    assert _found(admin_client, status="CANCELLED") == _ids(world, "b")
    assert _found(admin_client, status="PENDING_CONFIRMATION") == _ids(world, "c")


def test_team_filter_by_id_or_slug(admin_client, world):
    assert _found(admin_client, team=world["ours"].pk) == _ids(world, "a", "b", "c", "d")
    assert _found(admin_client, team="theirs") == _ids(world, "e")


def test_event_type_and_host_filters(admin_client, world):
    assert _found(admin_client, event_type=world["intro"].pk) == _ids(world, "a", "b", "d")
    assert _found(admin_client, host=world["ada"].pk) == _ids(world, "a", "c", "d")
    assert _found(admin_client, host=world["eve"].pk) == _ids(world, "e")
    both = _found(admin_client, event_type=world["intro"].pk, host=world["ada"].pk)
    assert both == _ids(world, "a", "d")


def test_a_chosen_team_offers_its_event_types_and_hosts(admin_client, world):
    html = admin_client.get(CHANGELIST, {"team": "ours"}).content.decode()

    assert f"event_type={world['intro'].pk}" in html
    assert f"host={world['ada'].pk}" in html
    assert f"host={world['eve'].pk}" not in html  # another team's host


def test_start_dates_are_inclusive_days_in_utc(admin_client, world):
    assert _found(admin_client, start_from="2027-05-03", start_to="2027-05-03") == _ids(
        world, "a", "b", "e"
    )
    assert _found(admin_client, start_from="2027-05-04") == _ids(world, "c", "d")
    assert _found(admin_client, start_to="2027-05-04") == _ids(world, "a", "b", "c", "e")


@pytest.mark.parametrize(
    "params",
    [
        {"status": "LOST"},
        {"team": "nobody"},
        {"event_type": "evt_01ARZ3NDEKTSV4RRFFQ69G5FAV"},
        {"host": "team_01ARZ3NDEKTSV4RRFFQ69G5FAV"},
        {"start_from": "03/05/2027"},
    ],
)
def test_a_value_naming_nothing_says_so_and_shows_no_rows(admin_client, world, params):
    response = admin_client.get(CHANGELIST, params)

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert len(list(response.context["messages"])) == 1


def test_search_by_exact_id(admin_client, world):
    booking = world["bookings"]["c"]

    assert _found(admin_client, q=f"  {booking.pk} ") == {booking.pk}


def test_search_by_email_in_any_case_across_teams(admin_client, world):
    assert _found(admin_client, q="ELISE@x.IO") == _ids(world, "a", "d")
    assert _found(admin_client, q="elise@x") == set()  # exact, not a prefix


def test_search_by_whole_name_in_any_case(admin_client, world):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite's lower() folds ASCII only: 'É' stays")
    assert _found(admin_client, q="ÉLISE MARTIN") == _ids(world, "a", "e")


def test_search_by_name_is_whole_not_partial(admin_client, world):
    assert _found(admin_client, q="Martin") == set()
    assert _found(admin_client, q="%") == set()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("params", "index", "ordered"),
    [
        ({}, "booking_start", True),
        ({"q": "elise@x.io"}, "booking_email_lower", False),
        ({"q": "Élise Martin"}, "booking_name_lower", False),
    ],
)
def test_each_way_of_finding_has_its_index(admin_client, world, params, index, ordered):
    """With sequential scans (and, for a list read in its index's order, sorts) priced out,
    the list's query uses the index made for it: the index exists and fits the query's shape.
    A few rows, as here, would be scanned and sorted anyway."""
    response = admin_client.get(CHANGELIST, params)
    queryset = response.context["cl"].get_queryset(response.wsgi_request)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if ordered:
            cursor.execute("SET LOCAL enable_sort = off")
        sql, sql_params = queryset[:50].query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", sql_params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert index in plan, plan


@pytest.mark.postgres
def test_the_status_filter_has_its_index():
    # Which of two fitting indexes a tiny table's plan takes is the planner's call; the index
    # that serves status + newest first at a million rows (bench/admin_pages.py) must exist.
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'booking_status_start'")
        [(definition,)] = cursor.fetchall()

    assert definition.endswith("(status, start_time, id)"), definition
