"""GET /v1/event-types and /v1/event-types/{id}: the shape, team isolation, query counts."""

import pytest

from bookings.ids import new_id
from bookings.models import EventType
from tests.assertions import assert_error, assert_ok
from tests.factories import EventTypeFactory, TeamMemberFactory

pytestmark = pytest.mark.django_db

FIELDS = [
    "id",
    "name",
    "slug",
    "description",
    "duration",
    "buffer_before",
    "buffer_after",
    "minimum_booking_notice",
    "scheduling_type",
    "requires_confirmation",
    "host_ids",
    "is_active",
]


@pytest.fixture
def deep_dive(team, hosts):
    return EventTypeFactory(
        team=team,
        name="Deep dive",
        slug="deep-dive",
        description="An hour on one topic.",
        duration=60,
        buffer_before=5,
        buffer_after=10,
        minimum_booking_notice=60,
        scheduling_type=EventType.SchedulingType.SOLO,
        requires_confirmation=True,
        hosts=[hosts[1]],
    )


def test_get_returns_every_field(api, deep_dive, hosts):
    body = assert_ok(api.get(f"/v1/event-types/{deep_dive.id}"), "event_type")

    assert set(body) == {"success", "event_type"}
    assert list(body["event_type"]) == FIELDS
    assert body["event_type"] == {
        "id": deep_dive.id,
        "name": "Deep dive",
        "slug": "deep-dive",
        "description": "An hour on one topic.",
        "duration": 60,
        "buffer_before": 5,
        "buffer_after": 10,
        "minimum_booking_notice": 60,
        "scheduling_type": "SOLO",
        "requires_confirmation": True,
        "host_ids": [hosts[1].id],
        "is_active": True,
    }


def test_host_ids_are_every_host_in_id_order(api, event_type, hosts):
    data = assert_ok(api.get(f"/v1/event-types/{event_type.id}"), "event_type")["event_type"]

    assert data["host_ids"] == sorted(h.id for h in hosts)
    assert data["scheduling_type"] == "ROUND_ROBIN"


def test_list_returns_the_teams_event_types_active_or_not(api, team, event_type, deep_dive):
    inactive = EventTypeFactory(team=team, is_active=False, hosts=[])

    body = assert_ok(api.get("/v1/event-types"), "event_types")

    assert set(body) == {"success", "event_types"}
    listed = body["event_types"]
    assert [e["id"] for e in listed] == sorted([event_type.id, deep_dive.id, inactive.id])
    assert all(list(e) == FIELDS for e in listed)
    by_id = {e["id"]: e for e in listed}
    assert by_id[inactive.id]["is_active"] is False
    assert by_id[inactive.id]["host_ids"] == []
    assert by_id[deep_dive.id]["requires_confirmation"] is True


def test_list_is_empty_for_a_team_without_event_types(api):
    assert assert_ok(api.get("/v1/event-types"), "event_types")["event_types"] == []


def test_list_hides_other_teams(api, event_type, other_team):
    EventTypeFactory(team=other_team, hosts=[TeamMemberFactory(team=other_team)])

    listed = assert_ok(api.get("/v1/event-types"), "event_types")["event_types"]

    assert [e["id"] for e in listed] == [event_type.id]


def test_another_teams_event_type_is_404_exactly_like_an_unknown_id(api, other_team):
    theirs = EventTypeFactory(team=other_team)

    cross_team = api.get(f"/v1/event-types/{theirs.id}")
    unknown = api.get(f"/v1/event-types/{new_id('evt')}")

    assert_error(cross_team, 404, "not_found", details=set())
    assert cross_team.content == unknown.content


@pytest.mark.parametrize("event_type_id", ["nope", "evt_", new_id("mem"), "evt_" + "0" * 50])
def test_malformed_id_is_404(api, event_type_id):
    assert_error(api.get(f"/v1/event-types/{event_type_id}"), 404, "not_found")


def test_get_takes_two_queries(api, event_type, django_assert_num_queries):
    # The event type, then its hosts' ids (the key and its team are cached).
    with django_assert_num_queries(2):
        response = api.get(f"/v1/event-types/{event_type.id}")
    assert response.status_code == 200


def test_list_takes_two_queries_whatever_the_count(api, team, hosts, django_assert_num_queries):
    for index in range(8):
        EventTypeFactory(team=team, hosts=hosts[: index % 3 + 1])

    with django_assert_num_queries(2):
        response = api.get("/v1/event-types")

    assert len(response.json()["event_types"]) == 8


def test_empty_list_takes_one_query(api, django_assert_num_queries):
    # Nothing found: no hosts to read.
    with django_assert_num_queries(1):
        response = api.get("/v1/event-types")
    assert response.status_code == 200


def test_unknown_query_parameter_is_400(api, event_type):
    from tests.assertions import assert_error

    response = api.get("/v1/event-types?is_active=true")
    assert_error(response, 400, "validation_error", details={"is_active"})
