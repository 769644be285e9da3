"""GET /v1/team/members and /v1/team/members/{id}: is_active filter, isolation, queries."""

import pytest

from bookings.ids import new_id
from tests.assertions import assert_error, assert_ok
from tests.factories import TeamMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def members(team, hosts):
    inactive = TeamMemberFactory(
        team=team, name="Former", email="former@example.com", timezone="Asia/Tokyo", is_active=False
    )
    return [*hosts, inactive]


def test_get_returns_the_member(api, members):
    member = members[-1]

    body = assert_ok(api.get(f"/v1/team/members/{member.id}"), "member")

    assert set(body) == {"success", "member"}
    assert body["member"] == {
        "id": member.id,
        "name": "Former",
        "email": "former@example.com",
        "timezone": "Asia/Tokyo",
        "is_active": False,
    }


def test_list_returns_all_members_active_or_not_in_id_order(api, members):
    body = assert_ok(api.get("/v1/team/members"), "members")

    assert set(body) == {"success", "members"}
    assert [m["id"] for m in body["members"]] == sorted(m.id for m in members)
    assert all(list(m) == ["id", "name", "email", "timezone", "is_active"] for m in body["members"])


def test_is_active_true(api, members):
    listed = assert_ok(api.get("/v1/team/members?is_active=true"), "members")["members"]

    assert [m["id"] for m in listed] == sorted(m.id for m in members[:3])
    assert all(m["is_active"] is True for m in listed)


def test_is_active_false(api, members):
    listed = assert_ok(api.get("/v1/team/members?is_active=false"), "members")["members"]

    assert [m["id"] for m in listed] == [members[-1].id]


@pytest.mark.parametrize("value", ["", "yes", "1", "True", "FALSE", "maybe"])
def test_bad_is_active_is_400(api, members, value):
    response = api.get("/v1/team/members", {"is_active": value})

    error = assert_error(response, 400, "validation_error", details={"is_active"})
    assert error["details"]["is_active"] == ["Must be true or false."]


def test_repeated_is_active_is_400(api, members):
    response = api.get("/v1/team/members?is_active=true&is_active=false")

    assert_error(response, 400, "validation_error", details={"is_active"})


def test_unknown_parameter_is_400(api, members):
    response = api.get("/v1/team/members", {"active": "true", "limit": "5"})

    assert_error(response, 400, "validation_error", details={"active", "limit"})


def test_list_hides_other_teams(api, members, other_team):
    TeamMemberFactory(team=other_team)

    listed = assert_ok(api.get("/v1/team/members"), "members")["members"]

    assert {m["id"] for m in listed} == {m.id for m in members}


def test_another_teams_member_is_404_exactly_like_an_unknown_id(api, other_team):
    theirs = TeamMemberFactory(team=other_team)

    cross_team = api.get(f"/v1/team/members/{theirs.id}")
    unknown = api.get(f"/v1/team/members/{new_id('mem')}")

    assert_error(cross_team, 404, "not_found", details=set())
    assert cross_team.content == unknown.content


@pytest.mark.parametrize("member_id", ["nope", "mem_", new_id("evt")])
def test_malformed_id_is_404(api, member_id):
    assert_error(api.get(f"/v1/team/members/{member_id}"), 404, "not_found")


def test_get_takes_one_query(api, members, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = api.get(f"/v1/team/members/{members[0].id}")
    assert response.status_code == 200


@pytest.mark.parametrize("query", ["", "?is_active=true", "?is_active=false"])
def test_list_takes_one_query(api, members, query, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = api.get(f"/v1/team/members{query}")
    assert response.json()["members"]


def test_bad_filter_takes_no_query(api, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = api.get("/v1/team/members?is_active=maybe")
    assert response.status_code == 400
