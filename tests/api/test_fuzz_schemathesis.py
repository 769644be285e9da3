"""Fuzzing every /v1 operation from the API's own OpenAPI document (schemathesis).

The document is fetched from ``/v1/schema`` and every request goes through the WSGI app in
this process, on the test database, with a real key of a team that has hosts, event types and
bookings in the states transitions start from. Requests are generated from the schema (valid
ones) and against it (invalid ones: wrong types, missing fields, values out of range, unknown
methods); ids that have the right shape are often swapped for ids that exist, so creates,
reads and transitions reach the database instead of stopping at a 404.

Every response must: not be a 5xx; have a status the operation documents; match that
status's documented body and headers; be ``application/json``; in a 4xx, be the error
envelope. A request the schema forbids must be refused (4xx), never carried out. The
stateful test follows the document's links (create → get, history, cancel, ...).

``FUZZ_EXAMPLES`` sets the examples per operation (default 25) and the stateful test's scale;
``FUZZ_RANDOM=1`` draws new inputs on each run instead of the same reproducible ones.
"""

import os
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from django.core import signals
from django.core.exceptions import ValidationError
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from bookings.ids import new_id
from bookings.models import Booking
from bookings.validators import parse_aware_datetime
from tests.conftest import make_client
from tests.factories import EventTypeFactory, TeamMemberFactory, booking_build

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("FUZZ_RANDOM") != "1",
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)

# The world the fuzzer's requests meet. Its ids are fixed here so the generator can use them.
MEMBER_IDS = [new_id("mem") for _ in range(3)]
EVENT_TYPE_IDS = [new_id("evt"), new_id("evt")]  # instant, and requires confirmation
BOOKING_IDS = {status: new_id("bkg") for status in ("future", "pending", "past", "cancelled")}
KNOWN_IDS = {
    "booking_id": list(BOOKING_IDS.values()),
    "event_type_id": EVENT_TYPE_IDS,
    "member_id": MEMBER_IDS,
}
_ID_SHAPE = {
    name: re.compile(rf"^{ids[0][:4]}[0-9A-HJKMNP-TV-Z]{{26}}$") for name, ids in KNOWN_IDS.items()
}
_FIRST_SLOT = (datetime.now(UTC) + timedelta(days=2)).replace(
    hour=8, minute=0, second=0, microsecond=0
)
# Free start times: whole hours over a few days (three hosts each).
SLOTS = [
    (_FIRST_SLOT + timedelta(hours=hour)).isoformat().replace("+00:00", "Z")
    for hour in range(0, 72, 3)
]

# Every JSON operation: the document and its HTML page are checked in tests/bookings/test_schema.py.
schema = schemathesis.openapi.from_wsgi("/v1/schema", WSGIHandler()).exclude(
    path=["/v1/schema", "/docs"]
)


def _is_time(value) -> bool:
    try:
        parse_aware_datetime(value)
    except ValidationError:
        return False
    return True


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """A well-formed id: often one that exists."""
    choices = {
        name: st.sampled_from([value, *KNOWN_IDS[name]])
        for name, value in (path_parameters or {}).items()
        if name in KNOWN_IDS and isinstance(value, str) and _ID_SHAPE[name].match(value)
    }
    if not choices:
        return st.just(path_parameters)
    return st.fixed_dictionaries(choices).map(lambda drawn: {**path_parameters, **drawn})


@schema.hook
def flatmap_query(context, query):
    """A cursor is only valid as this API issued it: a made-up one is 400 whatever else the
    query holds, so it is often left out and the filters reach the database."""
    if not isinstance(query, dict) or "cursor" not in query:
        return st.just(query)
    without = {name: value for name, value in query.items() if name != "cursor"}
    return st.sampled_from([query, without])


@schema.hook
def flatmap_body(context, body):
    """In a create or a reschedule, a well-formed event type, host or time: often one that
    exists or is free, so the request gets past the database's checks to the write."""
    if not isinstance(body, dict):
        return st.just(body)
    choices = {}
    if isinstance(body.get("event_type_id"), str) and _ID_SHAPE["event_type_id"].match(
        body["event_type_id"]
    ):
        choices["event_type_id"] = st.sampled_from([body["event_type_id"], *EVENT_TYPE_IDS])
    if isinstance(body.get("assigned_to_id"), str) and _ID_SHAPE["member_id"].match(
        body["assigned_to_id"]
    ):
        choices["assigned_to_id"] = st.sampled_from([body["assigned_to_id"], None, *MEMBER_IDS])
    if isinstance(body.get("requested_time"), str) and _is_time(body["requested_time"]):
        choices["requested_time"] = st.sampled_from(SLOTS)
    if not choices:
        return st.just(body)
    return st.fixed_dictionaries(choices).map(lambda drawn: {**body, **drawn})


# (operation, status) → responses: what the fuzzer reached. ON_CREATED: the successes on a
# booking the run itself created (its id came from a response, through a link).
RESPONSES: Counter = Counter()
ON_CREATED: Counter = Counter()


@schema.hook
def after_call(context, case, response):
    RESPONSES[case.operation.label, response.status_code] += 1
    booking_id = (case.path_parameters or {}).get("booking_id")
    if response.status_code < 300 and booking_id and booking_id not in KNOWN_IDS["booking_id"]:
        ON_CREATED[case.operation.label] += 1


@schema.auth(refresh_interval=None)  # a new key per test: never cached
class ApiKeyAuth:
    """The key of the test's team on every request. Schemathesis knows it is the
    credential, so ``ignored_auth`` can take it away and expect a 401."""

    secret: str | None = None

    def get(self, case, context):
        return self.secret

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def error_envelope(ctx, response, case):
    """Every 4xx is ``{"success": false, "error": {"code", "message", "details"}}``."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict), body
        assert set(body) == {"success", "error"}, body
        assert body["success"] is False, body
        error = body["error"]
        assert set(error) == {"code", "message", "details"}, body
        assert isinstance(error["code"], str), body
        assert isinstance(error["message"], str), body
        assert error["code"], body
        assert isinstance(error["details"], dict), body


@pytest.fixture(autouse=True)
def _in_process_requests():
    """Requests as Django's test client makes them: the test's connection (and transaction)
    survives each request, and the rate limit does not cut the run short."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        with override_settings(API_RATE_LIMIT=1_000_000):
            yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(team):
    """Our team's hosts, event types and bookings, with the ids above, and its key."""
    hosts = [
        TeamMemberFactory(team=team, id=member_id, name=f"Host {i}")
        for i, member_id in enumerate(MEMBER_IDS)
    ]
    instant = EventTypeFactory(team=team, id=EVENT_TYPE_IDS[0], hosts=hosts)
    EventTypeFactory(team=team, id=EVENT_TYPE_IDS[1], hosts=hosts, requires_confirmation=True)
    now = datetime.now(UTC).replace(microsecond=0)
    Booking.objects.bulk_create(
        [
            booking_build(
                id=BOOKING_IDS["future"],
                event_type=instant,
                assigned_to=hosts[0],
                start_time=now + timedelta(days=1),
            ),
            booking_build(
                id=BOOKING_IDS["pending"],
                event_type=instant,
                assigned_to=hosts[1],
                start_time=now + timedelta(days=1),
                status=Booking.Status.PENDING_CONFIRMATION,
            ),
            booking_build(
                id=BOOKING_IDS["past"],
                event_type=instant,
                assigned_to=hosts[2],
                start_time=now - timedelta(hours=2),
            ),
            booking_build(
                id=BOOKING_IDS["cancelled"],
                event_type=instant,
                assigned_to=hosts[0],
                start_time=now + timedelta(days=3),
                status=Booking.Status.CANCELLED,
            ),
        ]
    )
    ApiKeyAuth.secret = make_client(team).secret
    yield
    ApiKeyAuth.secret = None


# Every check schemathesis has, and ours, but one: positive_data_acceptance wants every
# request the schema allows to succeed, and the schema cannot say "an event type of your team",
# "a free slot" or "a cursor this API issued" (those are 400, 404 and 409, all documented).
EXCLUDED_CHECKS = [positive_data_acceptance]


@schema.parametrize()
@HYPOTHESIS
def test_every_operation(case, world):
    case.call_and_validate(excluded_checks=EXCLUDED_CHECKS, additional_checks=[error_envelope])


def test_stateful_links(world):
    """Sequences that follow the schema's links: create → get, history, confirm, cancel,
    reschedule → the new booking → ... Each step is checked as above."""
    base = schema.as_state_machine()

    class Workflow(base):
        # Each scenario starts from the same rows (a replay must meet what the first run met).
        def setup(self):
            self.savepoint = transaction.savepoint()

        def teardown(self):
            transaction.savepoint_rollback(self.savepoint)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                excluded_checks=EXCLUDED_CHECKS,
                additional_checks=[error_envelope],
                transport_kwargs=kwargs,
            )

    RESPONSES.clear()
    ON_CREATED.clear()
    Workflow.run(settings=settings(HYPOTHESIS, max_examples=EXAMPLES, stateful_step_count=10))

    # The links were followed: bookings were created, then read and changed through them.
    assert RESPONSES["POST /v1/bookings", 201], RESPONSES
    assert sum(ON_CREATED.values()), (RESPONSES, ON_CREATED)
