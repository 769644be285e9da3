"""Idempotency keys in the admin: read-only, exact searches, live / expired."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bookings.models import IdempotencyKey
from tests.factories import BookingFactory, TeamFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:bookings_idempotencykey_changelist")


def _key(team, key, booking=None, age=timedelta(minutes=5)) -> IdempotencyKey:
    created = timezone.now() - age
    return IdempotencyKey.objects.create(
        team=team,
        key=key,
        fingerprint="f" * 64,
        response_status=201,
        response_body=b'{"success":true,"booking":{}}',
        response_location=f"/v1/bookings/{booking.pk}" if booking else "",
        booking=booking,
        created_at=created,
        expires_at=created + timedelta(hours=24),
    )


@pytest.fixture
def keys(team, other_team, event_type, hosts):
    booking = BookingFactory(event_type=event_type, assigned_to=hosts[0])
    return {
        "live": _key(team, "retry-me-1", booking),
        "expired": _key(team, "retry-me-2", age=timedelta(hours=25)),
        "theirs": _key(other_team, "retry-me-1"),
    }


def _ids(response) -> set[int]:
    return {row.pk for row in response.context["cl"].result_list}


def test_the_list_shows_team_key_status_and_a_link_to_the_booking(admin_client, keys):
    response = admin_client.get(CHANGELIST)

    page = response.content.decode()
    live = keys["live"]
    booking_url = reverse("admin:bookings_booking_change", args=[live.booking_id])
    assert f'<a href="{booking_url}">{live.booking_id}</a>' in page
    assert "Our Team" in page
    assert "Another Team" in page
    assert "retry-me-1" in page
    for column in ("response_status", "created_at", "expires_at"):
        assert f"column-{column}" in page, column


def test_the_list_costs_the_same_for_more_teams(admin_client, keys):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(CHANGELIST).status_code == 200
        return len(captured.captured_queries)

    few = queries()
    for i in range(5):
        _key(TeamFactory(), f"more-{i}")

    assert queries() == few  # the team comes with the row (list_select_related)


@pytest.mark.parametrize(
    ("term", "expected"),
    [("retry-me-1", {"live", "theirs"}), ("retry-me", set()), ("RETRY-ME-1", set())],
)
def test_search_by_exact_key(admin_client, keys, term, expected):
    response = admin_client.get(CHANGELIST, {"q": term})

    assert _ids(response) == {keys[name].pk for name in expected}


def test_search_by_exact_booking_id(admin_client, keys):
    booking_id = keys["live"].booking_id

    assert _ids(admin_client.get(CHANGELIST, {"q": booking_id})) == {keys["live"].pk}
    assert _ids(admin_client.get(CHANGELIST, {"q": booking_id[:-2]})) == set()


def test_search_never_scans_with_like(admin_client, keys):
    with CaptureQueriesContext(connection) as captured:
        admin_client.get(CHANGELIST, {"q": "retry-me-1"})

    searched = [q["sql"] for q in captured.captured_queries if "idempotencykey" in q["sql"]]
    assert searched
    assert not any("LIKE" in sql.upper() for sql in searched), searched


@pytest.mark.parametrize(
    ("expiry", "expected"), [("live", {"live", "theirs"}), ("expired", {"expired"})]
)
def test_filter_live_or_expired(admin_client, keys, expiry, expected):
    response = admin_client.get(CHANGELIST, {"expiry": expiry})

    assert _ids(response) == {keys[name].pk for name in expected}


def test_read_only(admin_client, keys):
    live = keys["live"]
    url = reverse("admin:bookings_idempotencykey_change", args=[live.pk])
    before = IdempotencyKey.objects.filter(pk=live.pk).values().get()

    page = admin_client.get(url)
    post = admin_client.post(url, {"key": "changed", "response_status": 500})
    add = admin_client.get(reverse("admin:bookings_idempotencykey_add"))
    delete = admin_client.post(
        reverse("admin:bookings_idempotencykey_delete", args=[live.pk]), {"post": "yes"}
    )
    listing = admin_client.get(CHANGELIST).content.decode()

    assert page.status_code == 200
    assert '{"success":true,"booking":{}}' in page.content.decode().replace("&quot;", '"')
    assert 'name="_save"' not in page.content.decode()
    assert (post.status_code, add.status_code, delete.status_code) == (403, 403, 403)
    assert 'value="delete_selected"' not in listing
    assert IdempotencyKey.objects.filter(pk=live.pk).values().get() == before
