"""The lean path of the hottest reads (``LeanReadMixin``: GET of a booking, the list) answers
exactly as DRF's full path does — the same status, headers and bytes, errors included — and
counts each request against the rate limit once."""

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from bookings.auth import hash_key
from bookings.models import ApiKey
from bookings.services import api_key_revoke
from bookings.viewsets import BookingViewSet
from tests.conftest import make_client
from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db

# Varies per request, whichever path answers it.
_PER_REQUEST = {"X-RateLimit-Remaining", "X-RateLimit-Reset"}


@pytest.fixture
def bookings(event_type, hosts):
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    made = [
        BookingFactory(
            event_type=event_type,
            assigned_to=hosts[i % 3],
            start_time=start + timedelta(hours=i),
            metadata={"n": i, "big": 2**70} if i == 2 else {"n": i},
        )
        for i in range(5)
    ]
    made[1].cancelled_at = start
    made[1].cancelled_by = "host"
    made[1].cancellation_reason = "ill"
    made[1].status = "CANCELLED"
    made[1].save()
    return made


def _answer(client, path: str, **extra) -> tuple[int, dict, bytes]:
    response = client.get(path, HTTP_X_REQUEST_ID="lean-test", **extra)
    headers = {name: value for name, value in response.items() if name not in _PER_REQUEST}
    return response.status_code, headers, response.content


def _both(monkeypatch, client, path: str, **extra):
    lean = _answer(client, path, **extra)
    with monkeypatch.context() as patched:
        patched.setattr(BookingViewSet, "lean_actions", frozenset())
        full = _answer(client, path, **extra)
    return lean, full


def _cases(bookings, other_booking):
    return [
        f"/v1/bookings/{bookings[0].id}",
        f"/v1/bookings/{bookings[1].id}",  # cancelled: the cancellation object
        f"/v1/bookings/{bookings[2].id}",  # an integer beyond 64 bits in metadata
        "/v1/bookings/bkg_00000000000000000000000000",  # no such booking
        "/v1/bookings/not-an-id",
        f"/v1/bookings/{other_booking.id}",  # another team's
        f"/v1/bookings/{bookings[0].id}?expand=1",  # a GET of one object takes no query
        "/v1/bookings",
        "/v1/bookings?limit=2",
        "/v1/bookings?limit=0",
        "/v1/bookings?limit=2&cursor=nonsense",
        "/v1/bookings?status=CANCELLED",
        "/v1/bookings?status=NOPE",
        f"/v1/bookings?assigned_to_id={bookings[0].assigned_to_id}&start_from=2026-12-01",
        "/v1/bookings?unknown=1",
    ]


@pytest.fixture
def other_booking(other_team):
    return BookingFactory(event_type__team=other_team)


def test_lean_and_full_paths_answer_the_same_bytes(api, bookings, other_booking, monkeypatch):
    for path in _cases(bookings, other_booking):
        lean, full = _both(monkeypatch, api, path)
        assert lean == full, path
    # the next page, by the cursor the first gave
    cursor = api.get("/v1/bookings?limit=2").json()["pagination"]["next_cursor"]
    lean, full = _both(monkeypatch, api, f"/v1/bookings?limit=2&cursor={cursor}")
    assert lean == full
    assert lean[0] == 200


@pytest.mark.parametrize(
    "extra",
    [
        {"HTTP_ACCEPT": "application/json"},
        {"HTTP_ACCEPT": "*/*"},
        {"HTTP_ACCEPT": "text/html"},  # 406, from DRF's negotiation
        {"HTTP_ACCEPT": "application/json; indent=4"},
        {"HTTP_ACCEPT": ""},  # no type acceptable: 406, counted once on either path
    ],
    ids=["json", "any", "html", "indent", "empty"],
)
def test_accept_headers_answer_as_the_full_path(api, bookings, monkeypatch, extra):
    for path in (f"/v1/bookings/{bookings[0].id}", "/v1/bookings"):
        lean, full = _both(monkeypatch, api, path, **extra)
        assert lean == full, path


def test_refused_keys_answer_as_the_full_path(
    team, bookings, monkeypatch, django_capture_on_commit_callbacks
):
    path = f"/v1/bookings/{bookings[0].id}"
    no_scope = make_client(team, scopes=[ApiKey.Scope.TEAM_READ])
    revoked = make_client(team)
    with django_capture_on_commit_callbacks(execute=True):  # the cached row is rewritten
        api_key_revoke(api_keys=ApiKey.objects.filter(key_hash=hash_key(revoked.secret)))
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer sk_live_" + "0" * 64)
    malformed = APIClient()
    malformed.credentials(HTTP_AUTHORIZATION="Basic abc")
    anonymous = APIClient()
    statuses = []
    for client in (no_scope, revoked, wrong, malformed, anonymous):
        lean, full = _both(monkeypatch, client, path)
        assert lean == full
        statuses.append(lean[0])
    assert statuses == [403, 401, 401, 401, 401]


def test_over_the_rate_limit_answers_as_the_full_path(
    mid_minute, api, bookings, settings, monkeypatch
):
    settings.API_RATE_LIMIT = 2
    path = f"/v1/bookings/{bookings[0].id}"
    assert [api.get(path).status_code for _ in range(2)] == [200, 200]
    lean, full = _both(monkeypatch, api, path)
    assert lean == full
    assert lean[0] == 429
    assert lean[1]["Retry-After"] == "30"


def test_each_request_is_counted_once_whatever_its_answer(mid_minute, api, bookings):
    paths = [
        f"/v1/bookings/{bookings[0].id}",  # 200
        "/v1/bookings/bkg_00000000000000000000000000",  # 404
        f"/v1/bookings/{bookings[0].id}?x=1",  # 400
        "/v1/bookings",  # 200
        "/v1/bookings?limit=nope",  # 400
    ]
    remaining = [int(api.get(path)["X-RateLimit-Remaining"]) for path in paths]
    assert remaining == list(range(remaining[0], remaining[0] - len(paths), -1))


def test_a_plain_read_does_not_build_drf_requests(api, bookings, drf_requests_built):
    built = drf_requests_built
    assert api.get(f"/v1/bookings/{bookings[0].id}").status_code == 200
    assert api.get("/v1/bookings").status_code == 200
    assert built == []
    assert api.get("/v1/bookings/bkg_00000000000000000000000000").status_code == 404
    assert built == [1]  # an error is answered by the full path
