"""The admin: every page opens, lists stay cheap, API keys are shown once and stored hashed."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from rest_framework.test import APIClient

from bookings.auth import hash_key
from bookings.models import ApiKey, BookingHistory, IdempotencyKey
from bookings.services import api_key_create
from tests.factories import (
    BookingFactory,
    EventTypeFactory,
    TeamFactory,
    TeamMemberFactory,
)

pytestmark = pytest.mark.django_db


def _registered() -> list[type]:
    admin.autodiscover()
    return sorted(admin.site._registry, key=lambda model: model._meta.label)


REGISTERED = _registered()


def _label(model) -> str:
    return model._meta.label


@pytest.fixture
def world(admin_user):
    """At least one row of every model the admin shows."""
    team = TeamFactory()
    host = TeamMemberFactory(team=team)
    event_type = EventTypeFactory(team=team, hosts=[host])
    booking = BookingFactory(event_type=event_type, assigned_to=host)
    BookingHistory.objects.create(
        booking=booking,
        action=BookingHistory.Action.CREATED,
        to_status="SCHEDULED",
        actor_type=BookingHistory.ActorType.SYSTEM,
        changes={"status": [None, "SCHEDULED"]},
    )
    api_key_create(team=team, name="world")
    now = timezone.now()
    IdempotencyKey.objects.create(
        team=team,
        key="world-key",
        fingerprint="0" * 64,
        response_status=201,
        response_body=b'{"success":true}',
        booking=booking,
        created_at=now,
        expires_at=now + timedelta(hours=24),
    )
    Group.objects.create(name="Staff")
    if "notifications.EmailOutbox" in {_label(m) for m in REGISTERED}:
        from notifications.services import email_queue

        email_queue(booking=booking, kind="confirmation", event_key=f"admin-test:{booking.id}")
    return {"booking": booking, "team": team}


def _url(model, name: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=args)


@pytest.mark.parametrize("model", REGISTERED, ids=_label)
def test_changelist_opens(admin_client, world, model):
    response = admin_client.get(_url(model, "changelist"))

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


@pytest.mark.parametrize("model", REGISTERED, ids=_label)
def test_change_page_opens(admin_client, world, model):
    instance = model._default_manager.order_by("pk").first()
    assert instance is not None, f"the world fixture makes no {_label(model)}"

    response = admin_client.get(_url(model, "change", instance.pk))

    assert response.status_code == 200
    assert escape(str(instance)) in response.content.decode()


@pytest.mark.parametrize("model", REGISTERED, ids=_label)
def test_changelist_search_opens(admin_client, world, model):
    if not admin.site._registry[model].search_fields:
        pytest.skip("no search box")

    response = admin_client.get(_url(model, "changelist"), {"q": "x"})

    assert response.status_code == 200


def test_adding_an_api_key_shows_the_secret_once_and_stores_its_hash(admin_client, team):
    response = admin_client.post(
        reverse("admin:bookings_apikey_add"),
        {"team": team.pk, "name": "From the admin", "scopes": ["bookings:read"], "is_test": "on"},
        follow=True,
    )

    assert response.status_code == 200
    key = ApiKey.objects.get()
    assert key.name == "From the admin"
    assert key.scopes == ["bookings:read"]
    assert key.is_test is True
    shown = [str(m) for m in get_messages(response.wsgi_request)] or [
        str(m) for m in response.context["messages"]
    ]
    secrets_shown = [word for text in shown for word in text.split() if word.startswith("sk_")]
    assert len(secrets_shown) == 1, shown
    secret = secrets_shown[0]
    assert secret.startswith("sk_test_")
    # Stored only as its hash.
    assert key.key_hash == hash_key(secret)
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    assert all(secret not in str(value) for value in row.values())
    # The key works, with the scopes chosen.
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/v1/bookings").status_code == 200
    assert client.get("/v1/team/members").status_code == 403
    # Never shown again.
    again = admin_client.get(reverse("admin:bookings_apikey_change", args=[key.pk]))
    assert secret not in again.content.decode()
    assert key.prefix in again.content.decode()


def test_adding_an_api_key_needs_a_known_scope(admin_client, team):
    response = admin_client.post(
        reverse("admin:bookings_apikey_add"),
        {"team": team.pk, "name": "bad", "scopes": ["bookings:delete"]},
    )

    assert response.status_code == 200  # the form again, with its error
    assert response.context["adminform"].form.errors["scopes"]
    assert not ApiKey.objects.exists()


def test_revoke_action_makes_the_key_401(admin_client, team, django_capture_on_commit_callbacks):
    key, secret = api_key_create(team=team)
    client = APIClient(HTTP_X_API_KEY=secret)
    assert client.get("/v1/bookings").status_code == 200  # the key is cached now

    with django_capture_on_commit_callbacks(execute=True):  # the admin's request commits
        response = admin_client.post(
            reverse("admin:bookings_apikey_changelist"),
            {"action": "revoke", "_selected_action": [key.pk]},
            follow=True,
        )

    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client.get("/v1/bookings").status_code == 401


def test_revoking_again_keeps_the_first_revocation_time(admin_client, team):
    key, _ = api_key_create(team=team)
    first = timezone.now() - timedelta(days=3)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=first)

    admin_client.post(
        reverse("admin:bookings_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )

    key.refresh_from_db()
    assert key.revoked_at == first


def test_the_admin_is_for_staff_only(client, world):
    User.objects.create_user("someone", password="pw-someone-123")
    client.login(username="someone", password="pw-someone-123")

    response = client.get(reverse("admin:bookings_booking_changelist"))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
