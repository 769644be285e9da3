"""Staff edit event types and their hosts in the admin, within the rules routing relies on."""

import pytest

from bookings.models import EventType, EventTypeHost
from tests.factories import EventTypeFactory, TeamMemberFactory

from .create_helpers import create_body, in_days, post_booking

pytestmark = pytest.mark.django_db


def _form(team, members, scheduling_type="ROUND_ROBIN", slug="new-type") -> dict:
    data = {
        "team": team.id,
        "name": "New type",
        "slug": slug,
        "description": "",
        "duration": 30,
        "buffer_before": 0,
        "buffer_after": 0,
        "minimum_booking_notice": 0,
        "scheduling_type": scheduling_type,
        "is_active": "on",
        "host_links-TOTAL_FORMS": len(members),
        "host_links-INITIAL_FORMS": 0,
        "host_links-MIN_NUM_FORMS": 0,
        "host_links-MAX_NUM_FORMS": 1000,
    }
    for index, member in enumerate(members):
        data[f"host_links-{index}-member"] = member.id
    return data


def test_staff_add_an_event_type_with_hosts(admin_client, team, hosts):
    response = admin_client.post("/admin/bookings/eventtype/add/", _form(team, hosts))
    assert response.status_code == 302, response.content.decode()[:2000]
    event_type = EventType.objects.get(slug="new-type")
    assert list(event_type.host_links.values_list("member_id", flat=True)) == [h.id for h in hosts]


def test_a_host_from_another_team_is_refused(admin_client, team, hosts, other_team):
    stranger = TeamMemberFactory(team=other_team)
    response = admin_client.post(
        "/admin/bookings/eventtype/add/", _form(team, [hosts[0], stranger])
    )
    assert response.status_code == 200
    assert "Not members of this event type" in response.content.decode()
    assert not EventType.objects.filter(slug="new-type").exists()


@pytest.mark.parametrize("count", [0, 2])
def test_a_solo_event_type_has_exactly_one_host(admin_client, team, hosts, count):
    response = admin_client.post(
        "/admin/bookings/eventtype/add/", _form(team, hosts[:count], scheduling_type="SOLO")
    )
    assert response.status_code == 200
    assert "exactly one host" in response.content.decode()
    assert not EventType.objects.filter(slug="new-type").exists()


def test_team_cannot_be_changed_on_a_member_or_an_event_type(admin_client, event_type, hosts):
    for url in (
        f"/admin/bookings/teammember/{hosts[0].pk}/change/",
        f"/admin/bookings/eventtype/{event_type.pk}/change/",
    ):
        page = admin_client.get(url).content.decode()
        assert 'name="team"' not in page, url


def test_a_solo_event_type_with_an_inactive_host_takes_no_booking(api, team, hosts):
    """Its one host is the first one added; inactive, nobody else steps in."""
    event_type = EventTypeFactory(team=team, scheduling_type="SOLO", hosts=hosts[:2])
    hosts[0].is_active = False
    hosts[0].save()
    response = post_booking(api, create_body(event_type, in_days(2)))
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "slot_unavailable"


def test_a_host_linked_from_another_team_is_never_assigned(api, team, hosts, other_team):
    event_type = EventTypeFactory(team=team, hosts=hosts[:1])
    EventTypeHost.objects.create(event_type=event_type, member=TeamMemberFactory(team=other_team))
    start = in_days(2)
    first = post_booking(api, create_body(event_type, start))
    assert first.json()["booking"]["assigned_to_id"] == hosts[0].id
    second = post_booking(api, create_body(event_type, start))
    assert second.status_code == 409, second.content


def test_host_ids_are_in_the_order_hosts_were_added(api, team, hosts):
    reversed_hosts = list(reversed(hosts))
    event_type = EventTypeFactory(team=team, scheduling_type="SOLO", hosts=reversed_hosts[:1])
    EventTypeHost.objects.create(event_type=event_type, member=reversed_hosts[1])
    body = api.get(f"/v1/event-types/{event_type.id}").json()
    assert body["event_type"]["host_ids"] == [reversed_hosts[0].id, reversed_hosts[1].id]
    booking = post_booking(api, create_body(event_type, in_days(2))).json()["booking"]
    assert booking["assigned_to_id"] == reversed_hosts[0].id


def test_a_solo_event_type_cannot_lose_its_host(admin_client, team, hosts):
    event_type = EventTypeFactory(team=team, scheduling_type="SOLO", hosts=hosts[:1])
    link = event_type.host_links.get()
    data = _form(team, [], scheduling_type="SOLO", slug=event_type.slug)
    data.update(
        {
            "host_links-TOTAL_FORMS": 1,
            "host_links-INITIAL_FORMS": 1,
            "host_links-0-id": link.pk,
            "host_links-0-event_type": event_type.pk,
            "host_links-0-member": hosts[0].pk,
            "host_links-0-DELETE": "on",
            "name": "Renamed",
        }
    )

    response = admin_client.post(f"/admin/bookings/eventtype/{event_type.pk}/change/", data)

    assert response.status_code == 200
    assert "A SOLO event type has exactly one host." in response.content.decode()
    event_type.refresh_from_db()
    assert event_type.name != "Renamed"
    assert list(event_type.host_links.values_list("member_id", flat=True)) == [hosts[0].id]


def test_hosts_are_picked_with_an_autocomplete(admin_client, team, hosts):
    page = admin_client.get("/admin/bookings/eventtype/add/").content.decode()
    assert 'data-ajax--url="/admin/autocomplete/"' in page
    assert 'name="host_links-__prefix__-member"' in page

    response = admin_client.get(
        "/admin/autocomplete/",
        {
            "app_label": "bookings",
            "model_name": "eventtypehost",
            "field_name": "member",
            "term": hosts[1].email,
        },
    )

    assert response.status_code == 200
    assert [result["id"] for result in response.json()["results"]] == [hosts[1].id]


def _change_form(event_type, **changes) -> dict:
    data = {
        "name": event_type.name,
        "slug": event_type.slug,
        "description": event_type.description,
        "duration": event_type.duration,
        "buffer_before": event_type.buffer_before,
        "buffer_after": event_type.buffer_after,
        "minimum_booking_notice": event_type.minimum_booking_notice,
        "scheduling_type": event_type.scheduling_type,
        "is_active": "on",
        "host_links-TOTAL_FORMS": 0,
        "host_links-INITIAL_FORMS": 0,
        "host_links-MIN_NUM_FORMS": 0,
        "host_links-MAX_NUM_FORMS": 1000,
        **changes,
    }
    return data


def test_a_slug_taken_in_the_team_is_a_form_error_on_the_change_form(admin_client, team):
    taken = EventTypeFactory(team=team, slug="intro-call")
    edited = EventTypeFactory(team=team, slug="office-hours")

    response = admin_client.post(
        f"/admin/bookings/eventtype/{edited.pk}/change/", _change_form(edited, slug=taken.slug)
    )

    assert response.status_code == 200  # the form again, not a 500
    assert "already exists" in response.content.decode()
    edited.refresh_from_db()
    assert edited.slug == "office-hours"


def test_a_slug_taken_in_another_team_is_free(admin_client, team, other_team):
    EventTypeFactory(team=other_team, slug="intro-call")
    edited = EventTypeFactory(team=team, slug="office-hours")

    response = admin_client.post(
        f"/admin/bookings/eventtype/{edited.pk}/change/", _change_form(edited, slug="intro-call")
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    edited.refresh_from_db()
    assert edited.slug == "intro-call"


@pytest.mark.parametrize("email", ["ada@acme.example", "ADA@acme.example"])
def test_an_email_taken_in_the_team_is_a_form_error_on_the_change_form(admin_client, team, email):
    TeamMemberFactory(team=team, email="ada@acme.example")
    edited = TeamMemberFactory(team=team, email="grace@acme.example")

    response = admin_client.post(
        f"/admin/bookings/teammember/{edited.pk}/change/",
        {"name": edited.name, "email": email, "timezone": edited.timezone, "is_active": "on"},
    )

    assert response.status_code == 200  # the form again, not a 500
    assert "A member of this team already has this email address." in response.content.decode()
    edited.refresh_from_db()
    assert edited.email == "grace@acme.example"
