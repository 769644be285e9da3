"""A NUL in what the admin is sent — a URL's path or query, a form's choice of a row —
is 400 or the form's error, never a 500.

PostgreSQL cannot hold NUL in text: a changelist filter (``?team=%00``), a search
(``?q=%00``), an object's page (``/admin/…/%00/change/``) or a form's choice of a team or a
host raised ``DataError`` out of the query. The URL cases walk ``admin.site``'s registry, so
an admin added later is covered.
"""

import pytest
from django.contrib import admin
from django.urls import reverse

from bookings.models import ApiKey, EventType
from tests.assertions import assert_error
from tests.factories import TeamMemberFactory

pytestmark = pytest.mark.django_db

QUERIES = ["q=%00", "q=bkg_%00", "team=%00", "team__id__exact=%00", "status=%00", "%00=1", "o=%00"]


def _changelists() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]


def test_a_nul_in_an_admin_query_is_400(admin_client):
    admin_client.raise_request_exception = False
    answers = {
        (url, query): admin_client.get(f"{url}?{query}").status_code
        for url in _changelists()
        for query in QUERIES
    }

    assert set(answers.values()) == {400}, {case: s for case, s in answers.items() if s != 400}


@pytest.mark.parametrize("page", ["change/", "history/", "delete/"])
def test_a_nul_in_an_admin_object_path_is_400(admin_client, page):
    admin_client.raise_request_exception = False
    answers = {url: admin_client.get(f"{url}1%00/{page}").status_code for url in _changelists()}

    assert set(answers.values()) == {400}, answers


def test_a_nul_in_the_autocomplete_term_is_400(admin_client):
    admin_client.raise_request_exception = False
    query = "term=%00&app_label=bookings&model_name=eventtype&field_name=hosts"

    response = admin_client.get(f"/admin/autocomplete/?{query}")

    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize("path", ["/v1/bookings/bkg_%00", "/v1/bookings?attendee_email=%00"])
def test_the_api_keeps_its_own_answers_to_a_nul(api, path):
    # An id is 404 (like any unknown id), a filter value 400 naming the parameter.
    response = api.get(path)

    assert response.status_code in (400, 404)
    assert response.json()["error"]["code"] in ("not_found", "validation_error")


def test_a_nul_for_the_team_of_a_new_api_key_changes_nothing(admin_client):
    admin_client.raise_request_exception = False

    response = admin_client.post(
        "/admin/bookings/apikey/add/", {"team": "\x00", "name": "k", "scopes": "\x00"}
    )

    assert response.status_code in (200, 400)  # the form's error (SQLite) or 400 (PostgreSQL)
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("field", ["team", "host_links-0-member"])
def test_a_nul_for_a_row_of_a_new_event_type_changes_nothing(admin_client, team, field):
    admin_client.raise_request_exception = False
    host = TeamMemberFactory(team=team)
    form = {
        "team": team.id,
        "name": "New type",
        "slug": "new-type",
        "duration": 30,
        "buffer_before": 0,
        "buffer_after": 0,
        "minimum_booking_notice": 0,
        "scheduling_type": "SOLO",
        "is_active": "on",
        "host_links-TOTAL_FORMS": 1,
        "host_links-INITIAL_FORMS": 0,
        "host_links-MIN_NUM_FORMS": 0,
        "host_links-MAX_NUM_FORMS": 1000,
        "host_links-0-member": host.id,
    }
    before = EventType.objects.count()

    response = admin_client.post("/admin/bookings/eventtype/add/", {**form, field: "\x00"})

    assert response.status_code in (200, 400)
    assert EventType.objects.count() == before
