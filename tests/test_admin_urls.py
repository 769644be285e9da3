"""Every admin page's URL with a NUL in its path or its query string: 400, never a 500.

PostgreSQL cannot hold NUL in text: a changelist filter (``?team=%00``), a search
(``?q=%00``) or an object's page (``/admin/…/%00/change/``) raised ``DataError`` out of the
query. Walks ``admin.site``'s registry, so an admin added later is covered.
"""

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.assertions import assert_error

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
