"""The request id on every log line of a request, and of the tasks the request enqueues.

The worker's side, with a real worker over Redis, is in tests/notifications/test_email_worker.py.
"""

import logging

import pytest
from django.core import mail
from django.test import Client, RequestFactory
from django.utils import timezone

from bookings.ids import new_id
from bookings_project.api.middleware import RequestIdMiddleware
from bookings_project.api.request_id import RequestIdFilter, current_request_id
from bookings_project.celery import request_id_to_headers
from bookings_project.settings import base
from notifications.models import EmailOutbox
from notifications.tasks import send_email_task
from tests.bookings.create_helpers import create_body, in_days, post_booking
from tests.factories import BookingFactory

from .test_errors import GENERATED_ID

pytestmark = pytest.mark.django_db


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def records():
    """Every record from INFO up, seen by a handler with the filter, as LOGGING installs it."""
    handler = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler.records
    root.removeHandler(handler)
    root.setLevel(level)


def _sent(records):
    return [r for r in records if r.getMessage().startswith("Sent email ")]


def test_logging_shows_the_request_id_on_every_handler():
    config = base.LOGGING

    assert "[%(request_id)s]" in config["formatters"]["plain"]["format"]
    assert config["filters"]["request_id"]["()"].endswith("request_id.RequestIdFilter")
    for name, handler in config["handlers"].items():
        assert "request_id" in handler.get("filters", []), name
        assert handler["formatter"] == "plain", name


def test_a_request_s_log_lines_carry_its_id(api, records):
    path = f"/v1/bookings/{new_id('bkg')}"

    response = api.get(path, HTTP_X_REQUEST_ID="trace-abc")

    assert response.status_code == 404
    not_found = [r for r in records if r.name == "django.request"]
    # Django logs a 4xx after the middleware returns; the middleware logs it first, once.
    assert [(r.getMessage(), r.request_id) for r in not_found] == [
        (f"Not Found: {path}", "trace-abc")
    ]


@pytest.mark.urls("tests.api.urls_errors")
@pytest.mark.parametrize("path", ["/test/boom-api", "/test/boom-django"])
def test_a_500_logs_its_trace_with_the_request_id(path, records):
    client = Client(raise_request_exception=False, HTTP_X_REQUEST_ID="trace-500")

    assert client.get(path).status_code == 500

    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert errors
    assert any(r.exc_info for r in errors)
    assert {r.request_id for r in errors} == {"trace-500"}


def test_a_line_outside_any_request_shows_a_dash(records):
    logging.getLogger("tests.outside").warning("Not in a request")

    assert [r.request_id for r in records] == ["-"]


def test_the_id_does_not_leak_into_the_next_request(api, records):
    first = api.get(f"/v1/bookings/{new_id('bkg')}", HTTP_X_REQUEST_ID="trace-abc")
    assert current_request_id.get() is None
    second = api.get(f"/v1/bookings/{new_id('bkg')}")

    assert first["X-Request-Id"] == "trace-abc"
    assert GENERATED_ID.match(second["X-Request-Id"])
    assert [r.request_id for r in records if r.name == "django.request"] == [
        "trace-abc",
        second["X-Request-Id"],
    ]
    assert current_request_id.get() is None


def test_the_id_is_reset_when_the_view_raises():
    seen = []

    def failing_view(request):
        seen.append(current_request_id.get())
        raise RuntimeError("boom")

    request = RequestFactory().get("/anything", HTTP_X_REQUEST_ID="trace-raise")
    with pytest.raises(RuntimeError):
        RequestIdMiddleware(failing_view)(request)

    assert seen == ["trace-raise"]
    assert current_request_id.get() is None


# --- Tasks -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # real commits: the email task runs inside the request
def test_the_email_task_of_a_request_logs_its_id_in_eager_mode(api, event_type, records):
    response = post_booking(
        api, create_body(event_type, in_days(2)), HTTP_X_REQUEST_ID="trace-eager"
    )

    assert response.status_code == 201, response.content
    assert len(mail.outbox) == 1
    booking_id = response.json()["booking"]["id"]
    [line] = _sent(records)
    assert line.name == "notifications.services"
    assert line.request_id == "trace-eager"
    assert f"to booking {booking_id}" in line.getMessage()
    assert current_request_id.get() is None


def test_publishing_adds_the_id_to_the_headers_only_when_there_is_one():
    empty = {}
    request_id_to_headers(headers=empty)
    token = current_request_id.set("trace-publish")
    try:
        headers = {"task": "notifications.tasks.send_email_task"}
        request_id_to_headers(headers=headers)
    finally:
        current_request_id.reset(token)

    assert empty == {}
    assert headers == {"task": "notifications.tasks.send_email_task", "request_id": "trace-publish"}


def test_a_task_runs_under_the_id_in_its_headers_then_resets_it(event_type, hosts, records):
    booking = BookingFactory(event_type=event_type, assigned_to=hosts[0])
    row = EmailOutbox.objects.create(
        booking=booking,
        kind="confirmation",
        event_key="k",
        to_email=booking.attendee_email,
        next_attempt_at=timezone.now(),
    )

    send_email_task.apply(kwargs={"outbox_id": row.pk}, headers={"request_id": "trace-task"})

    assert [r.request_id for r in _sent(records)] == ["trace-task"]
    assert current_request_id.get() is None
