"""A request leaves no reference cycle behind: through the WSGI application the servers run
(``bookings_project.wsgi``), everything a request made is freed by reference counting when its
response is closed, so the cyclic garbage collector has nothing to collect. Before, each
request left 34 to 80 objects in cycles (Django's middleware link the request to itself, DRF
the view, its request and its response), and gunicorn's workers paused for 20 to 90 ms every
half second to free them: the open loop's tail (bench/README.md, "The collector's pauses").

Each case runs once to fill what is built lazily and kept (compiled queries, caches), then
again with the collector off; the collection after that must find nothing.
"""

import gc
import itertools
import json
from collections import Counter

import pytest
from django.core import signals
from django.db import close_old_connections
from django.test import RequestFactory

from bookings import serializers
from bookings_project.wsgi import application

from ..bookings.create_helpers import create_body, in_days, post_booking

pytestmark = pytest.mark.django_db


def exchange(
    method: str,
    path: str,
    *,
    raw: bytes = b"",
    content_type: str = "application/json",
    secret: str | None = None,
    **headers,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request through the production WSGI application, as gunicorn makes it: the body
    read to the end, then the response closed. Its status, headers and body."""
    if secret is not None:
        headers["AUTHORIZATION"] = f"Bearer {secret}"
    extra = {f"HTTP_{name.upper()}": value for name, value in headers.items()}
    environ = RequestFactory().generic(method, path, raw, content_type, **extra).environ
    started = []
    # As Django's test client does: the test's transaction must outlive the request's start
    # and end, which close a connection that is not in autocommit.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        response = application(environ, lambda *answer: started.append(answer))
        try:
            body = b"".join(response)
        finally:
            response.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    status, response_headers = started[0][:2]
    return int(status.split()[0]), response_headers, body


def call(method: str, path: str, *, secret: str | None = None, body=None, **headers) -> int:
    raw = b"" if body is None else json.dumps(body).encode()
    return exchange(method, path, raw=raw, secret=secret, **headers)[0]


def cyclic_garbage(request) -> Counter:
    """The objects in reference cycles that the second of two calls of ``request`` left, by
    type (empty: none)."""
    request()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        request()
        gc.collect()
        return Counter(type(found).__qualname__ for found in _ours(gc.garbage))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def _ours(garbage: list) -> list:
    """The garbage less one cycle of Django's own: the SQL compiler's recursive closure
    ``get_select_from_parent`` (a function, its closure and cell), made by each query that
    follows a foreign key with ``select_related``."""
    django_s = set()
    for found in garbage:
        if getattr(found, "__qualname__", "").endswith(
            "get_select.<locals>.get_select_from_parent"
        ):
            django_s |= {id(found), id(found.__closure__), *map(id, found.__closure__)}
    return [found for found in garbage if id(found) not in django_s]


@pytest.fixture
def booked(api, event_type):
    """Bookings made through the API, one per call that changes one."""
    days = itertools.count(2)

    def book() -> str:
        response = post_booking(api, create_body(event_type, in_days(next(days))))
        assert response.status_code == 201
        return response.json()["booking"]["id"]

    return book


def _calls(api, event_type, booked) -> dict:
    secret = api.secret
    one = booked()
    days = itertools.count(40)
    fresh = iter([booked(), booked()])  # a new booking for each of the two calls
    keyed = create_body(event_type, in_days(30))
    member = event_type.host_links.order_by("id").first().member_id
    return {
        # the lean path
        "get": lambda: call("GET", f"/v1/bookings/{one}", secret=secret),
        "list": lambda: call("GET", "/v1/bookings?limit=2", secret=secret),
        "create": lambda: call(
            "POST", "/v1/bookings", secret=secret, body=create_body(event_type, in_days(next(days)))
        ),
        "replay": lambda: call(
            "POST", "/v1/bookings", secret=secret, body=keyed, IDEMPOTENCY_KEY="cycles"
        ),
        # DRF's full path
        "get, DRF's negotiation": lambda: call(
            "GET", f"/v1/bookings/{one}", secret=secret, ACCEPT="application/json; indent=2"
        ),
        "history": lambda: call("GET", f"/v1/bookings/{one}/history", secret=secret),
        "confirm": lambda: call("POST", f"/v1/bookings/{next(fresh)}/confirm", secret=secret),
        "cancel": lambda: call(
            "POST", f"/v1/bookings/{next(fresh)}/cancel", secret=secret, body={"reason": "x"}
        ),
        "patch": lambda: call(
            "PATCH",
            f"/v1/bookings/{next(fresh)}",
            secret=secret,
            body={"attendee": {"email": "new@example.com"}},
        ),
        "reschedule": lambda: call(
            "POST",
            f"/v1/bookings/{next(fresh)}/reschedule",
            secret=secret,
            body={"requested_time": create_body(event_type, in_days(next(days)))["requested_time"]},
        ),
        # errors, from the lean path and the full one
        "404": lambda: call("GET", "/v1/bookings/bkg_01K6SGASMC28C516054B08FED1", secret=secret),
        "400 query": lambda: call("GET", "/v1/bookings?limit=abc", secret=secret),
        "400 body": lambda: call("POST", "/v1/bookings", secret=secret, body={"x": 1}),
        "401": lambda: call("GET", f"/v1/bookings/{one}"),
        "409": lambda: call("POST", f"/v1/bookings/{one}/complete", secret=secret),
        "probe": lambda: call("GET", "/healthz"),
        # the team's own
        "event types": lambda: call("GET", "/v1/event-types", secret=secret),
        "an event type": lambda: call("GET", f"/v1/event-types/{event_type.id}", secret=secret),
        "members": lambda: call("GET", "/v1/team/members", secret=secret),
        "a member": lambda: call("GET", f"/v1/team/members/{member}", secret=secret),
    }


CASES = [
    ("get", 200),
    ("list", 200),
    ("create", 201),
    ("replay", (201, 200)),
    ("get, DRF's negotiation", 200),
    ("history", 200),
    ("confirm", 200),
    ("cancel", 200),
    ("patch", 200),
    ("reschedule", 201),
    ("404", 404),
    ("400 query", 400),
    ("400 body", 400),
    ("401", 401),
    ("409", 409),
    ("probe", 200),
    ("event types", 200),
    ("an event type", 200),
    ("members", 200),
    ("a member", 200),
]


@pytest.mark.parametrize(("case", "status"), CASES, ids=[case for case, _ in CASES])
def test_a_request_leaves_no_reference_cycle(case, status, api, event_type, booked):
    request = _calls(api, event_type, booked)[case]
    statuses = []
    garbage = cyclic_garbage(lambda: statuses.append(request()))
    assert statuses == list(status) if isinstance(status, tuple) else [status, status]
    assert garbage == Counter()


def test_the_same_requests_through_django_s_own_handler_would_leave_cycles(
    api, event_type, booked, monkeypatch
):
    """The check above can fail: with Django's handler (no emptied request), a GET leaves the
    request's cycles behind; with the view's links kept, a DRF response leaves the view's; with
    a validated serializer's fields kept, a body's serializer is left."""
    from django.core.handlers.wsgi import WSGIHandler

    from bookings_project.api import views

    calls = _calls(api, event_type, booked)
    monkeypatch.setattr(
        application, "get_response", lambda request: WSGIHandler.get_response(application, request)
    )
    assert cyclic_garbage(calls["get"])["WSGIRequest"] == 1
    monkeypatch.undo()

    def dispatch(view, request, *args, **kwargs):
        return super(views.AcyclicViewMixin, view).dispatch(request, *args, **kwargs)

    monkeypatch.setattr(views.AcyclicViewMixin, "dispatch", dispatch)
    assert cyclic_garbage(calls["history"])["BookingViewSet"] == 1
    monkeypatch.undo()

    monkeypatch.setattr(serializers, "_fields_unbound", lambda serializer: None)
    assert cyclic_garbage(calls["cancel"])["CancelSerializer"] == 1
    assert cyclic_garbage(calls["event types"])["EventTypeSerializer"] == 1


def test_the_admin_signs_in_and_shows_its_messages_through_the_same_application(db):
    """The emptied request loses nothing the admin needs: the session, the CSRF cookie and a
    message all outlive the response that set them."""
    from http.cookies import SimpleCookie
    from urllib.parse import urlencode

    from django.contrib.auth.models import User

    User.objects.create_superuser("root", "root@example.com", "a long enough password 42")
    cookies = SimpleCookie()

    def browse(method: str, path: str, form: dict | None = None) -> tuple[int, dict, str]:
        jar = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
        status, headers, body = exchange(
            method,
            path,
            raw=urlencode(form or {}).encode(),
            content_type="application/x-www-form-urlencoded",
            COOKIE=jar,
        )
        for name, value in headers:
            if name.lower() == "set-cookie":
                cookies.load(value)
        return status, dict(headers), body.decode()

    status, _, page = browse("GET", "/admin/login/?next=/admin/")
    token = cookies["csrftoken"].value
    assert status == 200
    assert "csrfmiddlewaretoken" in page
    status, headers, _ = browse(
        "POST",
        "/admin/login/?next=/admin/",
        {"csrfmiddlewaretoken": token, "username": "root", "password": "a long enough password 42"},
    )
    assert (status, headers["Location"]) == (302, "/admin/")
    status, _, page = browse("GET", "/admin/")
    assert status == 200
    assert "Log out" in page

    # An action with nothing selected: a message, kept across the redirect.
    form = {"csrfmiddlewaretoken": cookies["csrftoken"].value, "action": "delete_selected"}
    status, _, _ = browse("POST", "/admin/bookings/team/", {**form, "index": "0"})
    assert status == 302
    status, _, page = browse("GET", "/admin/bookings/team/")
    assert status == 200
    assert "Items must be selected in order to perform actions" in page
