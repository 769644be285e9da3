"""Every answer under /v1, for every route and every method, is JSON: the error envelope for
an error. The Django test client enforces CSRF here (``enforce_csrf_checks``), as a browser
or curl meets it: an API path is never CSRF-checked and never session-authenticated."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from bookings.ids import new_id
from tests.assertions import assert_error
from tests.bookings.create_helpers import create_body, in_days
from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
UNKNOWN_PATHS = [
    "/v1",
    "/v1/",
    "/v1/nothing",
    "/v1/bookings/",
    "/v1/bookings/{booking}/unknown",
    "/v1/bookings/{booking}/confirm/more",
    "/v1/event-types/{event_type}/hosts",
    "/v1/team",
    "/v1/team/members/",
    "/v1/schema/extra",
]


def _v1_routes(patterns=None, prefix: str = "") -> list[tuple[str, str, object]]:
    """(route, name, callback) of every named route whose path starts with v1."""
    routes = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            routes += _v1_routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern) and entry.name and route.lstrip("^").startswith("v1"):
            routes.append((route, entry.name, entry.callback))
    return routes


def _allowed(callback) -> set[str]:
    """The methods a route answers with something other than 405."""
    actions = getattr(callback, "actions", None)  # a viewset route: method → action
    if actions is not None:
        methods = {method.upper() for method in actions}
    else:
        view = getattr(callback, "cls", None) or callback.view_class
        methods = {m.upper() for m in view.http_method_names if hasattr(view, m)}
    methods.discard("OPTIONS")  # no metadata documents: 405 in the envelope
    if "GET" in methods:
        methods.add("HEAD")
    return methods


@pytest.fixture
def sample_ids(team, event_type, hosts):
    booking = BookingFactory(team=team, event_type=event_type, assigned_to=hosts[0])
    return {
        "booking_id": booking.id,
        "event_type_id": event_type.id,
        "member_id": hosts[0].id,
    }


def _paths(sample_ids) -> list[tuple[str, set[str]]]:
    paths = []
    for route, name, callback in _v1_routes():
        kwargs_names = _route_kwargs(route)
        unknown = set(kwargs_names) - set(sample_ids)
        assert not unknown, f"no sample id for {unknown} in route {route}: add one"
        path = reverse(name, kwargs={k: sample_ids[k] for k in kwargs_names})
        paths.append((path, _allowed(callback)))
    return paths


_ROUTE_KWARG = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>")


def _route_kwargs(route: str) -> list[str]:
    """The keyword arguments of a route: ``<str:booking_id>`` or ``(?P<booking_id>…)``."""
    return [path_kwarg or regex_kwarg for path_kwarg, regex_kwarg in _ROUTE_KWARG.findall(route)]


def _call(client: Client, method: str, path: str, **headers):
    return client.generic(method, path, data=b"{}", content_type="application/json", **headers)


def _assert_json(response, method: str) -> None:
    content_type = response["Content-Type"]
    assert content_type.startswith("application/json") or (
        response.status_code == 200 and "openapi+json" in content_type
    ), (method, response.status_code, content_type, response.content[:200])
    assert response.status_code < 500, (method, response.status_code, response.content)


def test_the_walk_covers_every_resource(sample_ids):
    paths = {path for path, _ in _paths(sample_ids)}

    assert "/v1/bookings" in paths
    assert f"/v1/bookings/{sample_ids['booking_id']}" in paths
    assert "/v1/event-types" in paths
    assert "/v1/team/members" in paths
    assert "/v1/schema" in paths


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no-key"])
def test_every_route_and_method_answers_json(api, sample_ids, method, with_key):
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api.secret}"} if with_key else {}

    for path, allowed in _paths(sample_ids):
        response = _call(client, method, path, **headers)

        _assert_json(response, method)
        if method not in allowed and (with_key or path == "/v1/schema"):
            if method == "HEAD":
                assert response.status_code == 405, (path, response.status_code)
            else:
                assert_error(response, 405, "method_not_allowed")
            # Allow lists exactly what the route answers: never OPTIONS, which is 405 too.
            assert set(response["Allow"].split(", ")) == allowed, (path, response["Allow"])
        elif response.status_code >= 400 and method != "HEAD":
            assert_error(response, response.status_code, response.json()["error"]["code"])
            assert response.json()["error"]["code"] != "forbidden", (path, method)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no-key"])
def test_unknown_paths_are_404_envelope_for_every_method(api, sample_ids, method, with_key):
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api.secret}"} if with_key else {}

    for template in UNKNOWN_PATHS:
        path = template.format(
            booking=sample_ids["booking_id"], event_type=sample_ids["event_type_id"]
        )
        response = _call(client, method, path, **headers)

        _assert_json(response, method)
        assert response.status_code == 404, (path, method, response.status_code)
        if method != "HEAD":
            assert_error(response, 404, "not_found")


def test_a_write_with_a_key_needs_no_csrf_token_even_beside_a_session(api, event_type):
    """A browser logged into the admin carries a session cookie: the API ignores it, and a
    key-authenticated write is not CSRF-checked."""
    get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.login(username="staff", password="pw")

    created = client.post(
        "/v1/bookings",
        create_body(event_type, in_days(2)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.secret}",
    )
    without_key = client.get("/v1/bookings")

    assert created.status_code == 201, created.content
    assert_error(without_key, 401, "unauthorized")


def test_a_session_alone_does_not_authenticate_a_write(db, event_type):
    get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.login(username="staff", password="pw")

    response = client.post(
        "/v1/bookings", create_body(event_type, in_days(2)), content_type="application/json"
    )

    assert_error(response, 401, "unauthorized")


def test_an_admin_csrf_refusal_is_still_djangos_page(db):
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "x"})

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


def test_unknown_id_lookups_stay_404_not_405(api):
    response = api.get(f"/v1/bookings/{new_id('bkg')}")

    assert_error(response, 404, "not_found")
